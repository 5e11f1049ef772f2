"""flow_segment_members: who was in a segment_joined flow's segment at the last check, and how many
times they joined (leaving and joining again is a new join)

Revision ID: f4_1
Revises: fc_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f4_1"
down_revision = "fc_1"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flow_segment_members",
        sa.Column(
            "flow_id",
            BigId,
            sa.ForeignKey("flows.id", ondelete="CASCADE", name="fk_flow_segment_members_flow_id_flows"),
            nullable=False,
        ),
        sa.Column(
            "contact_id",
            BigId,
            sa.ForeignKey(
                "contacts.id", ondelete="CASCADE", name="fk_flow_segment_members_contact_id_contacts"
            ),
            nullable=False,
        ),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("joins", sa.Integer(), nullable=False),
        sa.Column("changed_at", When, nullable=False),
        sa.PrimaryKeyConstraint("flow_id", "contact_id", name="pk_flow_segment_members"),
    )
    op.create_index("ix_flow_segment_members_contact_id", "flow_segment_members", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_flow_segment_members_contact_id", table_name="flow_segment_members")
    op.drop_table("flow_segment_members")
