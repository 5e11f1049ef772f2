"""ids kept in plain (non-foreign-key) columns are bigint like the ids they hold

Revision ID: h10b_1
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h10b_1"
down_revision = "h14_3"
branch_labels = None
depends_on = None

COLUMNS = {
    "events": ("campaign_id", "contact_id", "rollout_id", "link_id", "item_id"),
    "arm_metrics": ("rollout_id",),
    "rollouts": ("previous_model_version_id",),
    "shadow_renders": ("rollout_id",),
    "sends": ("rollout_id", "model_version_id"),
    "webhook_deliveries": ("rollout_id",),
}


def _alter(to: sa.types.TypeEngine, from_: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # SQLite integers are 64-bit already, and the models map BigId to INTEGER there
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=to, existing_type=from_, existing_nullable=True)


def upgrade() -> None:
    _alter(sa.BigInteger(), sa.Integer())


def downgrade() -> None:
    _alter(sa.Integer(), sa.BigInteger())
