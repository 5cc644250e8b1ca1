"""merge the branches made off 0008: rate limits (0009a), redo after a crash (0009d), handoff
requests (0009h), console users and sessions (0009u), WeChat nonces (0009w)

Revision ID: 0010
Revises: 0009a, 0009d, 0009h, 0009u, 0009w
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | Sequence[str] | None = ("0009a", "0009d", "0009h", "0009u", "0009w")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
