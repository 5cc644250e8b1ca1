"""api tokens: a staff token's scope (a department, or the console user it was issued for)

``api_tokens.department``: the department whose tickets a staff token sees (with those assigned to
it), as the console shows staff; ``api_tokens.user_id``: the console user the token was issued for
(``token create --user NAME``), whose role, department and name apply at every use (a token whose
user is disabled or gone is refused). Both nullable: tokens made before have neither, so a staff
token among them sees only the tickets assigned to its name until it is issued again with a scope.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("department", sa.String(length=64), nullable=True))
    op.add_column("api_tokens", sa.Column("user_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    # In place (SQLite 3.35+ drops a column itself): a copied api_tokens would lose merchant_accounts.
    with op.batch_alter_table("api_tokens", recreate="never") as batch:
        batch.drop_column("user_id")
        batch.drop_column("department")
