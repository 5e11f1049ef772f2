"""folded results: outcomes of sends removed by retention or erasure, per campaign and arm

Revision ID: h14_3
Revises: h14_2
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h14_3"
down_revision = "h14_2"
branch_labels = None
depends_on = None

COUNTS = (
    "planned", "sent", "failed", "skipped", "pending", "bounces", "opens", "machine_opens", "clicks",
    "bot_clicks", "conversions", "unsubscribes", "complaints",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "folded_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("arm", sa.String(length=12), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS],
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_folded_results_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_folded_results")),
        sa.UniqueConstraint("campaign_id", "arm", name=op.f("uq_folded_results_campaign_id")),
    )


def downgrade() -> None:
    op.drop_table("folded_results")
