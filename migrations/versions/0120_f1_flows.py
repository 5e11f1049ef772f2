"""flows: definitions and their versions, entries (one contact's journey), the hidden per-step
campaigns, contact events; campaigns.kind ("campaign" | "flow_step")

Revision ID: f1_1
Revises: h21w_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f1_1"
down_revision = "h21w_1"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="campaign"))
    op.create_table(
        "flows",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trigger_kind", sa.String(40), nullable=False),
        sa.Column("trigger_event", sa.String(100), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("activated_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_flows"),
        sa.UniqueConstraint("name", name="uq_flows_name"),
    )
    op.create_index("ix_flows_trigger_kind", "flows", ["trigger_kind"])
    op.create_index("ix_flows_trigger_event", "flows", ["trigger_event"])
    op.create_index("ix_flows_state", "flows", ["state"])
    op.create_table(
        "flow_versions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "flow_id",
            BigId,
            sa.ForeignKey("flows.id", ondelete="CASCADE", name="fk_flow_versions_flow_id_flows"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_versions"),
        sa.UniqueConstraint("flow_id", "version", name="uq_flow_versions_flow_id"),
    )
    op.create_table(
        "flow_entries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "flow_id",
            BigId,
            sa.ForeignKey("flows.id", ondelete="CASCADE", name="fk_flow_entries_flow_id_flows"),
            nullable=False,
        ),
        sa.Column(
            "contact_id",
            BigId,
            sa.ForeignKey("contacts.id", ondelete="CASCADE", name="fk_flow_entries_contact_id_contacts"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("trigger_key", sa.String(420), nullable=False),
        sa.Column("entered_at", When, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("next_due_at", When, nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("exit_reason", sa.String(300), nullable=False),
        sa.Column("finished_at", When, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_send_id", BigId, nullable=True),
        sa.Column("properties", JSONType, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_entries"),
        sa.UniqueConstraint("flow_id", "contact_id", "trigger_key", name="uq_flow_entries_flow_id"),
    )
    op.create_index("ix_flow_entries_contact_id", "flow_entries", ["contact_id"])
    op.create_index("ix_flow_entries_due", "flow_entries", ["state", "next_due_at"])
    op.create_index("ix_flow_entries_flow_contact", "flow_entries", ["flow_id", "contact_id"])
    op.create_table(
        "flow_step_campaigns",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "flow_id",
            BigId,
            sa.ForeignKey("flows.id", ondelete="CASCADE", name="fk_flow_step_campaigns_flow_id_flows"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column(
            "campaign_id",
            BigId,
            sa.ForeignKey(
                "campaigns.id", ondelete="CASCADE", name="fk_flow_step_campaigns_campaign_id_campaigns"
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_step_campaigns"),
        sa.UniqueConstraint(
            "flow_id", "version", "step_id", "generation", name="uq_flow_step_campaigns_flow_id"
        ),
    )
    op.create_index("ix_flow_step_campaigns_campaign_id", "flow_step_campaigns", ["campaign_id"])
    op.create_table(
        "contact_events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "contact_id",
            BigId,
            sa.ForeignKey("contacts.id", ondelete="CASCADE", name="fk_contact_events_contact_id_contacts"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("properties", JSONType, nullable=False),
        sa.Column("occurred_at", When, nullable=False),
        sa.Column("recorded_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contact_events"),
        sa.UniqueConstraint("key", name="uq_contact_events_key"),
    )
    op.create_index("ix_contact_events_contact_name", "contact_events", ["contact_id", "name", "occurred_at"])


def downgrade() -> None:
    op.drop_table("contact_events")
    op.drop_table("flow_step_campaigns")
    op.drop_table("flow_entries")
    op.drop_table("flow_versions")
    op.drop_table("flows")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("kind")
