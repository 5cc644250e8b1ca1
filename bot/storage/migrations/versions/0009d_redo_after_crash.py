"""inbound keys that can be redone after a crash; effects found again by the message's key

``inbound_keys.inbound`` keeps a pending message so that another process can redo it when its
handler's process died (``attempts`` counts such recoveries), and a partial index serves the
maintenance loop's look-up of pending keys whose heartbeat stopped. ``tickets.source_key`` and
``bookings.request_key`` name the message that made them, so a redone message finds its ticket
or booking instead of making a second one.

Revision ID: 0009d
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009d"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status IN ('processing', 'deferred', 'recovering')"


def upgrade() -> None:
    with op.batch_alter_table("inbound_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inbound", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.create_index(
        "ix_inbound_keys_pending",
        "inbound_keys",
        ["status", "updated_at"],
        unique=False,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_key", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint("uq_tickets_source_key", ["source_key"])
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_key", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("request_key")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint("uq_tickets_source_key", type_="unique")
        batch_op.drop_column("source_key")
    op.drop_index("ix_inbound_keys_pending", table_name="inbound_keys")
    with op.batch_alter_table("inbound_keys", schema=None) as batch_op:
        batch_op.drop_column("attempts")
        batch_op.drop_column("inbound")
