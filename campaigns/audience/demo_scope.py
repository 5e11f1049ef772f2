"""The demo kept apart from real work: its contacts and its campaigns are the ones at DEMO_DOMAIN.

The domain is under `.test` (RFC 2606): no mail to it can be delivered anywhere. A campaign whose
sender is at that domain is a demo campaign: the planner gives it only demo contacts
(`demo_contacts_only`), the sending path never hands its messages to `SMTP_URL`
(campaigns.sending.demo_transport), and simulated recipients act only on demo contacts. A real
campaign is untouched by any of this.
"""

from __future__ import annotations

import sqlalchemy as sa

from models import Contact

DEMO_DOMAIN = "demo.mailramp.test"
DEMO_SENDER = f"shop@{DEMO_DOMAIN}"


def is_demo_address(email: str) -> bool:
    return email.strip().lower().rpartition("@")[2] == DEMO_DOMAIN


def is_demo_campaign(from_email: str) -> bool:
    """Campaigns sent from the demo's domain are the demo's (the story's, or one copied from it)."""
    return is_demo_address(from_email)


def demo_contacts_only() -> sa.ColumnElement[bool]:
    """The condition on `Contact` that keeps the demo's own contacts and nobody else."""
    return Contact.email.like(f"%@{DEMO_DOMAIN}")
