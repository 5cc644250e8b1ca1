"""messages: drop the index on dedup_key

Nothing looks a message up by its inbound key alone (the one query that uses the key also names
the resident, which ``ix_messages_resident_created`` serves), while every message writes two rows
into this table on the hot path: an index of random keys cost about a quarter of SQLite's own work
per message (docs/benchmarks.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_dedup_key"))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_dedup_key"), ["dedup_key"], unique=False)
