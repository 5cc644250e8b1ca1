"""dashboard (issue 16): points per China day and reason, rolled up

``dashboard_points_days``: points issued and spent per day and reason, kept by the scheduler's
``dashboard.rollup`` job like the other roll-ups (its first run fills every finished day; the
dashboard reads the ledger for the days it does not hold yet).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_points_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "reason", name=op.f("pk_dashboard_points_days")),
    )


def downgrade() -> None:
    op.drop_table("dashboard_points_days")
