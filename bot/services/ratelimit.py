"""Limits on failed attempts that hold across processes: at most ``attempts`` failures per caller
and action within a sliding ``window`` (e.g. 10 unknown coupon codes per merchant account per
10 minutes), kept in the database (``rate_limits``, one locked row per key) or, when configured,
in Redis (a sorted set per key, changed by one Lua script).

An attempt *takes* a slot before it is tried and *gives it back* when it did not fail, so a burst
of concurrent attempts cannot slip past the limit between a check and a count: at any moment the
window holds the failures plus the attempts still in flight. A caller over the limit gets
:class:`Blocked` with the time the oldest failure leaves the window.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update

from bot.storage.db import Database, dialect_insert
from bot.storage.models import RateLimit


@dataclass(frozen=True)
class Limit:
    attempts: int
    window: timedelta


class Blocked(Exception):
    """Over the limit until ``retry_at``."""

    def __init__(self, retry_at: datetime) -> None:
        super().__init__(f"blocked until {retry_at.isoformat()}")
        self.retry_at = retry_at


class Limiter(Protocol):
    async def take(self, key: str, limit: Limit, now: datetime) -> str:
        """Reserve one failure slot for ``key``: its id, or :class:`Blocked`."""

    async def give_back(self, key: str, slot: str) -> None:
        """The attempt with ``slot`` did not fail: free its slot."""


class DatabaseLimiter:
    """Slots in ``rate_limits`` rows: ``hits`` is ``[[iso time, slot id], …]``, oldest first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def take(self, key: str, limit: Limit, now: datetime) -> str:
        slot = secrets.token_hex(6)
        async with self.db.transaction() as session:
            insert = dialect_insert(self.db.dialect, RateLimit).values(key=key, hits=[], updated_at=now)
            await session.execute(insert.on_conflict_do_nothing(index_elements=["key"]))
            hits = (
                await session.execute(select(RateLimit.hits).where(RateLimit.key == key).with_for_update())
            ).scalar_one()
            since = now - limit.window
            recent = [h for h in hits or [] if datetime.fromisoformat(h[0]) > since]
            if len(recent) >= limit.attempts:
                raise Blocked(min(datetime.fromisoformat(h[0]) for h in recent) + limit.window)
            recent.append([now.isoformat(), slot])
            await session.execute(update(RateLimit).where(RateLimit.key == key).values(hits=recent, updated_at=now))
        return slot

    async def give_back(self, key: str, slot: str) -> None:
        async with self.db.transaction() as session:
            hits = (
                await session.execute(select(RateLimit.hits).where(RateLimit.key == key).with_for_update())
            ).scalar_one_or_none()
            if hits is None:
                return
            kept = [h for h in hits if h[1] != slot]
            if len(kept) != len(hits):
                await session.execute(update(RateLimit).where(RateLimit.key == key).values(hits=kept))


# KEYS[1]: the sorted set; ARGV: now, window start, attempts, slot, window in ms. Scores are the
# failures' times (seconds); returns {1, ""} for a slot taken, {0, oldest score} when blocked.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, oldest[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, ''}
"""


class RedisLimiter:
    """Slots in a Redis sorted set per key (``ratelimit:<key>``), expiring with the window."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def take(self, key: str, limit: Limit, now: datetime) -> str:
        slot = secrets.token_hex(6)
        stamp = now.timestamp()
        window = limit.window.total_seconds()
        taken, oldest = await self.redis.eval(
            _TAKE, 1, f"ratelimit:{key}", repr(stamp), repr(stamp - window), limit.attempts, slot,
            int(window * 1000) + 1000,
        )
        if int(taken) != 1:
            raise Blocked(datetime.fromtimestamp(float(oldest), now.tzinfo) + limit.window)
        return slot

    async def give_back(self, key: str, slot: str) -> None:
        await self.redis.zrem(f"ratelimit:{key}", slot)


def limiter(db: Database, redis: Any = None) -> Limiter:
    """Redis when the service has it (``BOT_REDIS_URL``), else the database."""
    return RedisLimiter(redis) if redis is not None else DatabaseLimiter(db)
