"""dashboard (issue 16): when a ticket was first responded to and a handoff picked up, and indexes
for the period queries

``tickets.responded_at`` (staff's first accept, start, answer or reject; filled here from the
timeline) and ``handoff_requests.claimed_at`` (the first claim) keep the dashboard's response and
pick-up times to one table each. The indexes serve its range scans by time: handoffs, the points
ledger, coupons redeemed and verified, check-ins, and inbound messages (partial, covering: the
counts by day, intent and resident read the index only).

Revision ID: 0011d
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011d"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("handoff_requests", "ix_handoff_requests_created_at", ["created_at"]),
    ("points_ledger", "ix_points_ledger_dashboard", ["created_at", "reason", "amount"]),
    ("issued_coupons", "ix_issued_coupons_issued_at", ["issued_at"]),
    ("issued_coupons", "ix_issued_coupons_used_at", ["used_at"]),
    ("check_ins", "ix_check_ins_checked_in_at", ["checked_in_at"]),
)


def upgrade() -> None:
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE tickets SET responded_at = (SELECT min(e.at) FROM ticket_events e WHERE e.ticket_id = tickets.id"
        " AND e.action IN ('accept', 'start', 'answer', 'reject'))"
    )
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_index(
        "ix_messages_inbound", "messages", ["created_at", "intent", "resident_id"], unique=False,
        sqlite_where=sa.text("direction = 'in'"), postgresql_where=sa.text("direction = 'in'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_inbound", table_name="messages")
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("responded_at")
