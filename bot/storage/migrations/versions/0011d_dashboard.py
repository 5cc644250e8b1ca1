"""dashboard (issue 16): when a handoff request was picked up, and indexes for the period queries

``handoff_requests.claimed_at`` (set once, by the first claim) measures how fast staff picked a
resident up. The indexes serve the dashboard's range scans by time: handoffs, the points ledger,
coupons redeemed and verified, check-ins, and ticket events by action (first response).

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
    ("points_ledger", "ix_points_ledger_created_at", ["created_at"]),
    ("issued_coupons", "ix_issued_coupons_issued_at", ["issued_at"]),
    ("issued_coupons", "ix_issued_coupons_used_at", ["used_at"]),
    ("check_ins", "ix_check_ins_checked_in_at", ["checked_in_at"]),
    ("ticket_events", "ix_ticket_events_action_ticket", ["action", "ticket_id", "at"]),
)


def upgrade() -> None:
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
