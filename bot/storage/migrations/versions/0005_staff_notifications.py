"""staff notifications: ticket reminders to assignees and escalations to the supervisor role

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff_notifications",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IS NOT NULL OR assignee IS NOT NULL", name=op.f("ck_staff_notifications_addressed")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_staff_notifications_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notifications")),
    )
    with op.batch_alter_table("staff_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_staff_notifications_role_created", ["role", "created_at"], unique=False)
        batch_op.create_index(
            "ix_staff_notifications_assignee_created", ["assignee", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_staff_notifications_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_notifications_ticket_id"))
        batch_op.drop_index("ix_staff_notifications_assignee_created")
        batch_op.drop_index("ix_staff_notifications_role_created")
    op.drop_table("staff_notifications")
