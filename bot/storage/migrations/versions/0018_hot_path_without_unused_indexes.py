"""messages and inbound_keys: drop two indexes the hot path wrote and no query needs

Every message writes a key into ``inbound_keys`` and two rows into ``messages``, each entry of an
index more work in the batch's transaction (and pages for the write-ahead log at its commit).

* ``ix_inbound_keys_created_at``: no query reads keys by their creation time (the maintenance
  loop's pending keys have ``ix_inbound_keys_pending``, a retry its key).
* ``ix_messages_intent``: the one search by intent, the JSON API's ``GET /messages``, shows the
  newest first: it reads ``ix_messages_created_at`` backwards and stops at the page's end, as a
  search by confidence did already, instead of sorting every message of that intent. The
  dashboard's counts by intent read the partial index ``ix_messages_inbound`` (index-only).

No data changes: dropping an index loses nothing, and the downgrade builds them again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_inbound_keys_created_at", table_name="inbound_keys")
    op.drop_index("ix_messages_intent", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_intent", "messages", ["intent"], unique=False)
    op.create_index("ix_inbound_keys_created_at", "inbound_keys", ["created_at"], unique=False)
