"""merge the tickets and points branches; index outbox rows by resident and status

Expired customer-service messages (outside WeChat's 48-hour window) are shown in front of the
resident's next passive reply; the index finds them in the claim transaction.

Revision ID: 0004
Revises: 0003p, 0003t
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = ("0003p", "0003t")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_openid_status", ["openid", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_openid_status")
