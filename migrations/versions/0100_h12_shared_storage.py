"""shared storage: blobs (model artifacts, uploads), the shared secret, wave scoring state

Revision ID: h12_1
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h12_1"
down_revision = "h9_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_blobs")),
    )
    op.create_table(
        "blob_chunks",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key"], ["blobs.key"], name=op.f("fk_blob_chunks_key_blobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key", "seq", name=op.f("pk_blob_chunks")),
    )
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_secrets")),
    )
    with op.batch_alter_table("waves") as batch:
        batch.add_column(sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("scoring_error", sa.Text(), nullable=False, server_default=""))
    # waves planned before this revision were scored (or fell back) the old way: do not hold them
    op.execute("UPDATE waves SET scored_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("waves") as batch:
        batch.drop_column("scoring_error")
        batch.drop_column("scored_at")
    op.drop_table("instance_secrets")
    op.drop_table("blob_chunks")
    op.drop_table("blobs")
