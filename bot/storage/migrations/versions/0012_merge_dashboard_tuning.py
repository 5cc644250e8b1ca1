"""merge the branches made off 0010: the dashboard's columns and indexes (0011d) and the tuning
loop's versions and drafts (0011t)

Revision ID: 0012
Revises: 0011d, 0011t
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | Sequence[str] | None = ("0011d", "0011t")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
