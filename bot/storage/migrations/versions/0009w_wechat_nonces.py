"""wechat_nonces: the (timestamp, nonce) pairs of signed /wechat requests, for the freshness window

A signature covers only the token, the timestamp and the nonce, not a plaintext body: remembering
each pair with a digest of its body lets the endpoint refuse the pair with another body (a replay),
in every process.

Revision ID: 0009w
Revises: 0008
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009w"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_nonces",
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("timestamp", "nonce", name=op.f("pk_wechat_nonces")),
    )
    with op.batch_alter_table("wechat_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wechat_nonces_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wechat_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wechat_nonces_expires_at"))
    op.drop_table("wechat_nonces")
