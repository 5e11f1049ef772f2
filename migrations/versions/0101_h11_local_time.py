"""local-time delivery: sends.not_before

Revision ID: h11_2
Revises: h11_1
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h11_2"
down_revision = "h11_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sends") as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch_op:
        batch_op.drop_column("not_before")
