"""points: a staff adjustment's reason as the resident was told it

``points_ledger.reason_for_resident``: what staff chose to tell the resident of an adjustment
(告诉居民的原因, at most 40 characters), shown in the resident's 积分明细 in WeChat; the ledger's
``note`` stays the staff's own. Nullable: earlier entries and every other kind have none.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("points_ledger", sa.Column("reason_for_resident", sa.String(length=40), nullable=True))


def downgrade() -> None:
    # In place (SQLite 3.35+ drops a column itself): a copied table would lose the CHECK constraint.
    with op.batch_alter_table("points_ledger", recreate="never") as batch:
        batch.drop_column("reason_for_resident")
