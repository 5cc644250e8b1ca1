"""Replay guard for ``/wechat``: each signed (timestamp, nonce) pair goes with one body.

WeChat's signature covers the Token, the timestamp and the nonce, not a plaintext body: whoever
sees one request's query string (a proxy's access log) could post another body under it while the
timestamp is fresh. So every pair a request uses is remembered, with a digest of its body, until
its timestamp leaves the freshness window; the same pair with another body is refused. The same
pair with the same body is let through: it is a retry of one message, and the exactly-once
delivery answers it with the stored reply.

The pairs live in the database (``wechat_nonces``) or, with ``BOT_REDIS_URL``, in Redis with a
TTL, so every process sees them. On the database, pairs of concurrent requests are written in one
transaction (a group commit of their own, with one multi-row insert) and expired ones are deleted
in passing, about once a minute.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Table, bindparam, delete, select

from bot.storage.db import Database
from bot.storage.groupcommit import GroupCommit
from bot.storage.models import WeChatNonce
from bot.storage.prepared import Prepared

log = logging.getLogger("bot.wechat")

# How long a pair is kept when the freshness check is off (BOT_TIMESTAMP_WINDOW=0): replays are
# then refused for this long only; never run without the check in production.
RETENTION_WITHOUT_WINDOW = 300
PRUNE_EVERY = 60.0  # seconds between deletions of expired pairs (database store)
REDIS_PREFIX = "bot:wechat:nonce:"

NONCES = cast(Table, WeChatNonce.__table__)


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def expiry(timestamp: int, window: int, now: float) -> int:
    """Until when a pair must be remembered: as long as its timestamp would still be accepted."""
    if window <= 0:
        return int(now) + RETENTION_WITHOUT_WINDOW
    return max(timestamp + window, int(now)) + 1


@dataclass(frozen=True)
class Use:
    timestamp: int
    nonce: str
    digest: str
    expires_at: int


class ReplayGuard(Protocol):
    async def first_use(self, use: Use) -> bool:
        """True when the pair is new or was used with the same body; False for a replay."""
        ...


class DatabaseReplayGuard:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = Prepared(
            db.insert(NONCES)
            .on_conflict_do_nothing(index_elements=["timestamp", "nonce"])
            .returning(NONCES.c.timestamp, NONCES.c.nonce)
        )
        self._stored = Prepared(
            select(NONCES.c.digest).where(
                NONCES.c.timestamp == bindparam("timestamp"), NONCES.c.nonce == bindparam("nonce")
            )
        )
        self._prune = delete(NONCES).where(NONCES.c.expires_at < bindparam("now"))
        self.writes: GroupCommit[Use, bool] = GroupCommit(db, self.apply)
        self._next_prune = time.monotonic() + PRUNE_EVERY

    async def first_use(self, use: Use) -> bool:
        return await self.writes.submit(use)

    def apply(self, connection: Connection, uses: Sequence[Use]) -> list[bool]:
        """One transaction for a batch: insert the new pairs; compare the others' digests."""
        first: dict[tuple[int, str], Use] = {}
        for use in uses:
            first.setdefault((use.timestamp, use.nonce), use)
        inserted = {
            (int(ts), str(nonce))
            for ts, nonce in self._insert.many(
                connection,
                [
                    {"timestamp": u.timestamp, "nonce": u.nonce, "digest": u.digest, "expires_at": u.expires_at}
                    for u in first.values()
                ],
            )
        }
        known: dict[tuple[int, str], str] = {}
        for pair, use in first.items():
            if pair in inserted:
                known[pair] = use.digest
            else:
                stored = self._stored.scalars(connection, {"timestamp": pair[0], "nonce": pair[1]})
                known[pair] = stored[0] if stored else use.digest
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY
            self.prune(connection, time.time())
        return [known[(u.timestamp, u.nonce)] == u.digest for u in uses]

    def prune(self, connection: Connection, now: float) -> int:
        """Delete the pairs whose timestamps have left the window."""
        result = connection.execute(self._prune, {"now": int(now)})
        return int(getattr(result, "rowcount", 0) or 0)

    async def prune_now(self, now: float | None = None) -> int:
        return await self.db.run_sync_transaction(lambda c: self.prune(c, time.time() if now is None else now))


class RedisReplayGuard:
    """Pairs in Redis; while Redis cannot be reached, in the database (``fallback``), so plaintext
    messages are still checked and answered rather than refused for an outage."""

    def __init__(self, redis: Any, fallback: ReplayGuard | None = None) -> None:
        self.redis = redis
        self.fallback = fallback

    async def first_use(self, use: Use) -> bool:
        if self.fallback is None:
            return await self._first_use(use)
        try:
            return await self._first_use(use)
        except (OSError, ConnectionError, TimeoutError) as exc:
            log.warning("replay guard: Redis unavailable (%s), using the database", type(exc).__name__)
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "redis":
                raise
            log.warning("replay guard: Redis unavailable (%s), using the database", type(exc).__name__)
        return await self.fallback.first_use(use)

    async def _first_use(self, use: Use) -> bool:
        key = f"{REDIS_PREFIX}{use.timestamp}:{use.nonce}"
        ttl = max(1, use.expires_at - int(time.time()))
        if await self.redis.set(key, use.digest, nx=True, ex=ttl):
            return True
        stored = await self.redis.get(key)
        if isinstance(stored, bytes):
            stored = stored.decode("ascii", "replace")
        return stored is None or stored == use.digest


def replay_guard(db: Database, redis: Any = None) -> ReplayGuard:
    return RedisReplayGuard(redis, DatabaseReplayGuard(db)) if redis is not None else DatabaseReplayGuard(db)
