"""dashboard (issue 16): daily roll-ups of messages and tickets, and staff takeovers kept

``dashboard_message_days`` (inbound messages per China day and intent), ``dashboard_resident_days``
(who wrote on which day: distinct residents and conversations over a period) and
``dashboard_ticket_days`` (tickets per creation day, category, department and grid with the counts
the dashboard adds up) and ``dashboard_ticket_durations`` (each ticket's response and resolution
times by creation day, for the percentiles), with ``dashboard_rollups`` saying how far each goes. They start empty: the
scheduler's ``dashboard.rollup`` job (or ``python -m bot db rollup``) fills every finished day on
its first run, and the dashboard reads the raw rows for whatever they do not hold yet.
``tickets.updated_at`` is indexed: tickets changed since the last roll-up are found by it; and
tickets not answered (partial index): the overdue ones, which depend on the time of reading.

``takeover_events``: a staff member took over or wrote to a conversation (claims are deleted on
release; the bot's resolution rate needs to know a person was involved).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_rollups",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("through", sa.Date(), nullable=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_dashboard_rollups")),
    )
    op.create_table(
        "dashboard_message_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("intent", sa.String(length=32), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "intent", name=op.f("pk_dashboard_message_days")),
    )
    op.create_table(
        "dashboard_resident_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "resident_id", name=op.f("pk_dashboard_resident_days")),
    )
    op.create_table(
        "dashboard_ticket_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("grid", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            "n", "resolved", "rejected", "reopened", "rated", "approved", "satisfied", "answered", "in_time")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_ticket_days")),
    )
    op.create_index("ix_dashboard_ticket_days_day", "dashboard_ticket_days", ["day"], unique=False)
    op.create_table(
        "dashboard_ticket_durations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("response", sa.Float(), nullable=True),
        sa.Column("resolution", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_ticket_durations")),
    )
    op.create_index("ix_dashboard_ticket_durations_day", "dashboard_ticket_durations", ["day"], unique=False)
    op.create_table(
        "takeover_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_takeover_events_resident_id_residents"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takeover_events")),
    )
    op.create_index("ix_takeover_events_at", "takeover_events", ["at"], unique=False)
    op.create_index("ix_takeover_events_resident_id", "takeover_events", ["resident_id"], unique=False)
    op.create_index("ix_tickets_updated_at", "tickets", ["updated_at"], unique=False)
    op.create_index(
        "ix_tickets_unanswered", "tickets", ["created_at", "deadline"], unique=False,
        sqlite_where=sa.text("answered_at IS NULL"), postgresql_where=sa.text("answered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_unanswered", table_name="tickets")
    op.drop_index("ix_tickets_updated_at", table_name="tickets")
    op.drop_index("ix_takeover_events_resident_id", table_name="takeover_events")
    op.drop_index("ix_takeover_events_at", table_name="takeover_events")
    op.drop_table("takeover_events")
    op.drop_index("ix_dashboard_ticket_durations_day", table_name="dashboard_ticket_durations")
    op.drop_table("dashboard_ticket_durations")
    op.drop_index("ix_dashboard_ticket_days_day", table_name="dashboard_ticket_days")
    op.drop_table("dashboard_ticket_days")
    op.drop_table("dashboard_resident_days")
    op.drop_table("dashboard_message_days")
    op.drop_table("dashboard_rollups")
