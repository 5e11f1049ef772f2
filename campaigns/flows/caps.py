"""Frequency caps and quiet hours when a flow's send step comes due (the workspace's sending rules,
campaigns.sending.caps; read with campaigns.sending.cap_claims.decide, one query per batch).

- **defer** (the contact is in their quiet hours): no ledger row yet; the journey waits at the send
  step until the quiet hours end (`next_due_at`), so the waits after it count from when the step is
  actually sent and a series keeps its spacing.
- **skip** (a cap is reached): the step's ledger row is written `skipped` with the reason
  ("frequency cap: 2 in 24 h"), visible in the step's report, and the journey moves on to its next
  step as if the step had been sent (a capped reminder is dropped, not postponed: the next step's
  wait still applies).
- **send**: the row is written `queued`. The batch check of the send path
  (`cap_claims.hold_batch`, exact across workers) judges it again when it goes out: a campaign sent
  to the contact in between still counts.

With no rule on, this costs one read of the rules per scheduler transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.orm import Session

from campaigns.sending.cap_claims import decide, load_rules
from campaigns.sending.caps import SEND, SendingRules, Verdict


class Rules:
    """The sending rules, read once per scheduler transaction."""

    def __init__(self) -> None:
        self._rules: SendingRules | None = None

    def verdicts(self, session: Session, contact_ids: Collection[int], now: datetime) -> dict[int, Verdict]:
        """Contact id -> verdict for a flow send; `send` for every contact when no rule is on."""
        if self._rules is None:
            self._rules = load_rules(session)
        if not self._rules.active:
            return {c: SEND for c in contact_ids}
        found = decide(session, contact_ids, "flow", now, self._rules)
        return {c: found.get(c, SEND) for c in contact_ids}
