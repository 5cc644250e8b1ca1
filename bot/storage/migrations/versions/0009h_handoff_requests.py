"""handoff_requests: residents waiting for a person (转人工, emergencies), for the staff console

One open request per resident (partial unique index on status != 'closed'); a repeated ask adds to it.

Revision ID: 0009h
Revises: 0008
Create Date: 2026-12-13
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009h"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handoff_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("asks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_handoff_requests_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_handoff_requests_ticket_id_tickets"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_requests")),
    )
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.create_index(
            "uq_handoff_requests_open_resident", ["resident_id"], unique=True,
            sqlite_where=sa.text("status != 'closed'"), postgresql_where=sa.text("status != 'closed'"),
        )
        batch_op.create_index("ix_handoff_requests_status_created", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_handoff_requests_status_created")
        batch_op.drop_index("uq_handoff_requests_open_resident")
    op.drop_table("handoff_requests")
