"""language reload signals and knowledge-base queries with feedback

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reload_signals",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reload_signals")),
    )
    op.create_table(
        "knowledge_queries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("entry_id", sa.String(length=100), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_knowledge_queries_resident_id_residents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_queries")),
    )
    with op.batch_alter_table("knowledge_queries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_knowledge_queries_decision_created", ["decision", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_knowledge_queries_entry_id"), ["entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("knowledge_queries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_queries_entry_id"))
        batch_op.drop_index("ix_knowledge_queries_decision_created")
    op.drop_table("knowledge_queries")
    op.drop_table("reload_signals")
