"""residents.reported_at: when the resident's first ticket was made (NULL: never reported)

The chat reads a resident's open tickets for a follow-up question (灯修了没有) and for the
own-repeat check of a new report; a resident who never reported anything has none, and the
resident's row, read with every message's claim, says so without a read. Filled for the residents
who have tickets already.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("residents", sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE residents SET reported_at = "
        "(SELECT min(tickets.created_at) FROM tickets WHERE tickets.resident_id = residents.id) "
        "WHERE EXISTS (SELECT 1 FROM tickets WHERE tickets.resident_id = residents.id)"
    )


def downgrade() -> None:
    # In place (SQLite 3.35+ drops a column itself): a copied residents table would lose its dependants.
    with op.batch_alter_table("residents", recreate="never") as batch:
        batch.drop_column("reported_at")
