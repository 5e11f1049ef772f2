"""frequency caps and quiet hours: sends.claimed_at and an index to count a contact's recent sends

Revision ID: fc_1
Revises: f1_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fc_1"
down_revision = "f1_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sends") as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_sends_contact_state_sent", ["contact_id", "state", "sent_at"])


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch_op:
        batch_op.drop_index("ix_sends_contact_state_sent")
        batch_op.drop_column("claimed_at")
