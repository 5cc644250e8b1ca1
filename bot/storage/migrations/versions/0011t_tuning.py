"""tuning loop: published versions of the language data, the shared draft, review decisions

Revision ID: 0011t
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011t"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tuning_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("overlay", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tuning_versions")),
    )
    op.create_table(
        "tuning_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=True),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("draft_base", sa.Integer(), nullable=True),
        sa.Column("draft_updated_by", sa.String(length=64), nullable=True),
        sa.Column("draft_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tuning_state")),
    )
    op.create_table(
        "tuning_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tuning_reviews")),
        sa.UniqueConstraint("kind", "text", name="uq_tuning_reviews_kind_text"),
    )


def downgrade() -> None:
    op.drop_table("tuning_reviews")
    op.drop_table("tuning_state")
    op.drop_table("tuning_versions")
