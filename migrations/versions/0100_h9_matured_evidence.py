"""Matured evidence: send-time cohorts on arm_metrics, the rollout's plan kind, workspace settings.

Revision ID: h9_1
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "h9_1"
down_revision = "h11_2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("arm_metrics", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "cohort",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.text("'1970-01-01 00:00:00'"),
            )
        )
        batch_op.drop_constraint("uq_arm_metrics_campaign_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_arm_metrics_campaign_id",
            ["campaign_id", "stage_index", "arm", "segment", "metric", "cohort"],
        )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan", sa.String(length=10), nullable=False, server_default="staged"))
    op.create_table(
        "workspace_settings",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("value", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_workspace_settings")),
    )


def downgrade() -> None:
    op.drop_table("workspace_settings")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_column("plan")
    with op.batch_alter_table("arm_metrics", schema=None) as batch_op:
        batch_op.drop_constraint("uq_arm_metrics_campaign_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_arm_metrics_campaign_id", ["campaign_id", "stage_index", "arm", "segment", "metric"]
        )
        batch_op.drop_column("cohort")
