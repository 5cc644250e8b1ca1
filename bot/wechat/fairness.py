"""Fairness at the WeChat edge: how many messages one resident may send (so one flooding openid
cannot starve the others) and how many customer-service messages all processes together send per
second (WeChat's quota).

Both are counts in fixed windows. With Redis (``BOT_REDIS_URL``, the production pair) a window is
one hash, a field per key counted by ``HINCRBY`` (one command per hit), shared by every process on
every machine; the hash expires after its window (``EXPIRE … NX``, sent with a process's first hit
in the window and then at most once a second, so a hash Redis lost and made anew in a restart gets
its expiry again); the counts of concurrent requests go in one pipeline
(:mod:`bot.storage.redisbatch`). Without Redis each process counts for itself and allows its share of the limit
(``limit / workers``, ``BOT_WORKERS`` of ``python -m bot serve --workers``): exact for one process,
and for several processes on one machine as long as the supervisor's socket spreads requests evenly.
If Redis cannot be reached the count falls back to the process's share rather than refusing
residents: a limit must never be why an answer is missing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bot.metrics import RATE_LIMITED
from bot.storage.redisbatch import RedisBatch, command

log = logging.getLogger("bot.wechat.fairness")


class WindowLimiter:
    """At most ``limit`` hits per key in each ``window`` seconds (fixed windows)."""

    def __init__(self, name: str, limit: int, window: float, *, redis: Any = None, share: int = 1) -> None:
        self.name = name
        self.limit = limit
        self.window = window
        self.redis = redis
        # Concurrent requests' counts go to Redis in one pipeline (storage/redisbatch.py), with the
        # process's other commands to that Redis (conversation states) sent at the same moment.
        self._batch = RedisBatch.shared(redis) if redis is not None else None
        self.local_limit = max(1, limit // max(1, share))
        self._local: dict[str, tuple[int, int]] = {}  # key → (window index, count)
        self._redis_broken_until = 0.0
        self._expiry_sent = (-1, 0.0)  # (window index, time) of this process's last EXPIRE

    def _index(self, now: float) -> int:
        return int(now // self.window)

    async def hit(self, key: str) -> tuple[int, int]:
        """Count one hit: the count in this window and the limit it is held to (the whole limit
        when counted in Redis, this process's share when counted locally)."""
        now = time.time()
        index = self._index(now)
        if self._batch is not None and now >= self._redis_broken_until:
            name = f"fair:{self.name}:{index}"
            commands = [command("hincrby", name, key, 1)]
            seen_index, sent_at = self._expiry_sent
            if seen_index != index or now - sent_at >= 1.0:
                commands.append(command("expire", name, int(self.window) + 2, nx=True))
                self._expiry_sent = (index, now)
            try:
                count = (await self._batch.execute(*commands))[0]
                if isinstance(count, Exception):
                    raise count
                return int(count), self.limit
            except Exception as exc:  # Redis away: count locally for a while, never refuse for it
                self._redis_broken_until = now + 5.0
                log.warning("rate limit %s: Redis unavailable (%s), counting in this process", self.name, type(exc).__name__)
        seen_index, count = self._local.get(key, (index, 0))
        count = count + 1 if seen_index == index else 1
        self._local[key] = (index, count)
        if len(self._local) > 50_000:  # forget old windows
            self._local = {k: v for k, v in self._local.items() if v[0] == index}
        return count, self.local_limit

    async def allow(self, key: str) -> bool:
        count, limit = await self.hit(key)
        allowed = count <= limit
        if not allowed:
            RATE_LIMITED.labels(self.name).inc()
        return allowed

    async def wait(self, key: str = "all") -> None:
        """Block until a hit fits in a window (for senders that must not drop, only slow down)."""
        while not await self.allow(key):
            now = time.time()
            await asyncio.sleep(max(0.01, (self._index(now) + 1) * self.window - now))


class ResidentLimits:
    """Messages per resident per minute; the first message over the limit in a window is answered
    politely, the rest with ``success`` (nothing)."""

    def __init__(self, per_minute: int, *, redis: Any = None, share: int = 1) -> None:
        self.limiter = WindowLimiter("resident", per_minute, 60.0, redis=redis, share=share) if per_minute else None

    async def check(self, openid: str) -> str:
        """``ok``, ``tell`` (first over the limit: say so) or ``drop``."""
        if self.limiter is None:
            return "ok"
        count, limit = await self.limiter.hit(openid)
        if count <= limit:
            return "ok"
        RATE_LIMITED.labels("resident").inc()
        return "tell" if count == limit + 1 else "drop"


TOO_FAST = "您发消息太快了，请稍等一分钟再发。紧急情况请直接拨打110、119或120。"
