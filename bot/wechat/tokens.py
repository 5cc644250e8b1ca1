"""The access token, shared by every process: in the database, or in Redis when configured.

WeChat allows few token refreshes a day and a forced refresh invalidates the previous token, so only
one process may refresh at a time. Each store keeps the token with its expiry and a lease:

* :class:`DatabaseTokenStore`: the ``wechat_access_tokens`` row; the lease is ``refreshing_until``,
  taken with a conditional UPDATE (only if no live lease and the token is still the one we saw).
* :class:`RedisTokenStore`: a JSON value with a TTL, and a lock key taken with ``SET NX PX``.

Whoever holds the lease fetches a new token and publishes it; the others poll until it appears.
A token is refreshed ``margin`` before it expires, and when a caller reports it as ``stale`` (WeChat
answered 40001/40014/42001 to it): then the refresh is forced, but only if the stored token is
still that stale one, so a burst of token errors leads to one refresh, not one per caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import or_, select, update

from bot.clock import Clock
from bot.config import Settings
from bot.storage.db import Database
from bot.storage.models import AccessToken
from bot.wechat.errors import WeChatUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# fetch(force_refresh) -> (token, expires_in seconds); WeChatAPI.fetch_stable_token fits.
TokenFetcher = Callable[[bool], Awaitable[tuple[str, int]]]

DEFAULT_MARGIN = timedelta(minutes=5)
DEFAULT_LEASE = timedelta(seconds=30)


class TokenStore(Protocol):
    async def get(self, fetch: TokenFetcher, *, stale: str | None = None) -> str:
        """A valid token, refreshing it (once across processes) when missing, expiring or ``stale``."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class StoredToken:
    token: str
    expires_at: datetime


class _LeasedStore:
    """The refresh algorithm; subclasses say how to read, lease and publish."""

    def __init__(
        self,
        appid: str,
        *,
        clock: Clock | None = None,
        margin: timedelta = DEFAULT_MARGIN,
        lease: timedelta = DEFAULT_LEASE,
        poll_interval: float = 0.2,
        wait_timeout: float = 30.0,
    ) -> None:
        self.appid = appid
        self.clock = clock or Clock()
        self.margin = margin
        self.lease = lease
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self._cached: StoredToken | None = None
        self._local = asyncio.Lock()

    def _fresh(self, value: StoredToken | None, stale: str | None) -> bool:
        return (
            value is not None
            and value.token != stale
            and value.expires_at - self.margin > self.clock.now()
        )

    async def get(self, fetch: TokenFetcher, *, stale: str | None = None) -> str:
        if self._fresh(self._cached, stale):
            assert self._cached is not None
            return self._cached.token
        async with self._local:  # one coroutine per process talks to the shared store
            if self._fresh(self._cached, stale):
                assert self._cached is not None
                return self._cached.token
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.wait_timeout
            while True:
                current = await self._read()
                if self._fresh(current, stale):
                    assert current is not None
                    self._cached = current
                    return current.token
                lease = await self._acquire(current.token if current else None)
                if lease is not None:
                    token = await self._refresh(fetch, lease, stale)
                    return token
                if loop.time() >= deadline:
                    raise WeChatUnavailable("timed out waiting for another process to refresh the token")
                await asyncio.sleep(self.poll_interval)

    async def _refresh(self, fetch: TokenFetcher, lease: str, stale: str | None) -> str:
        published = False
        try:
            current = await self._read()
            if self._fresh(current, stale):  # someone refreshed between our read and our lease
                assert current is not None
                self._cached = current
                return current.token
            force = stale is not None and current is not None and current.token == stale
            token, expires_in = await fetch(force)
            if not force and timedelta(seconds=expires_in) <= self.margin:
                # The stable token is about to expire and WeChat keeps handing it out: replace it.
                token, expires_in = await fetch(True)
            value = StoredToken(token, self.clock.now() + timedelta(seconds=expires_in))
            await self._publish(lease, value)
            published = True
            self._cached = value
            return token
        finally:
            if not published:
                await self._release(lease)

    async def close(self) -> None:
        return None

    # -- backend --------------------------------------------------------------------------------

    async def _read(self) -> StoredToken | None:
        raise NotImplementedError

    async def _acquire(self, seen: str | None) -> str | None:
        """Take the refresh lease; ``None`` if another process holds it (or the token changed)."""
        raise NotImplementedError

    async def _publish(self, lease: str, value: StoredToken) -> None:
        """Store the new token and give up the lease."""
        raise NotImplementedError

    async def _release(self, lease: str) -> None:
        raise NotImplementedError


class InMemoryTokenStore(_LeasedStore):
    """The token in this process only (tests, scripts, a single process without a database)."""

    def __init__(self, appid: str, **kwargs: Any) -> None:
        super().__init__(appid, **kwargs)
        self._value: StoredToken | None = None

    async def _read(self) -> StoredToken | None:
        return self._value

    async def _acquire(self, seen: str | None) -> str | None:
        return "local"

    async def _publish(self, lease: str, value: StoredToken) -> None:
        self._value = value

    async def _release(self, lease: str) -> None:
        return None


class DatabaseTokenStore(_LeasedStore):
    """The token in the ``wechat_access_tokens`` row of ``appid``, leased by a conditional UPDATE."""

    def __init__(self, db: Database, appid: str, **kwargs: Any) -> None:
        super().__init__(appid, **kwargs)
        self.db = db

    async def _read(self) -> StoredToken | None:
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(AccessToken.token, AccessToken.expires_at).where(AccessToken.appid == self.appid)
                )
            ).first()
        if row is None or not row.token or row.expires_at is None:
            return None
        return StoredToken(row.token, row.expires_at)

    async def _ensure_row(self) -> None:
        stmt = self.db.insert(AccessToken).values(appid=self.appid).on_conflict_do_nothing()
        async with self.db.transaction() as session:
            await session.execute(stmt)

    async def _acquire(self, seen: str | None) -> str | None:
        if seen is None:
            await self._ensure_row()
        now = self.clock.now()
        until = now + self.lease
        same_token = AccessToken.token.is_(None) if seen is None else AccessToken.token == seen
        async with self.db.transaction() as session:
            result: Any = await session.execute(
                update(AccessToken)
                .where(
                    AccessToken.appid == self.appid,
                    or_(AccessToken.refreshing_until.is_(None), AccessToken.refreshing_until < now),
                    same_token,
                )
                .values(refreshing_until=until)
                .execution_options(synchronize_session=False)
            )
        return until.isoformat() if result.rowcount == 1 else None

    async def _publish(self, lease: str, value: StoredToken) -> None:
        async with self.db.transaction() as session:
            result: Any = await session.execute(
                update(AccessToken)
                .where(AccessToken.appid == self.appid, AccessToken.refreshing_until == datetime.fromisoformat(lease))
                .values(token=value.token, expires_at=value.expires_at, refreshing_until=None)
                .execution_options(synchronize_session=False)
            )
        if result.rowcount != 1:
            log.warning("access token lease for %s expired before the refresh finished", self.appid)

    async def _release(self, lease: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(AccessToken)
                .where(AccessToken.appid == self.appid, AccessToken.refreshing_until == datetime.fromisoformat(lease))
                .values(refreshing_until=None)
                .execution_options(synchronize_session=False)
            )


_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class RedisTokenStore(_LeasedStore):
    """The token as a JSON value with a TTL; the refresh lock is ``SET NX PX``."""

    def __init__(self, redis: Redis, appid: str, *, prefix: str = "bot:", owns_client: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(appid, **kwargs)
        self.redis = redis
        self.key = f"{prefix}wechat:access_token:{appid}"
        self.lock_key = self.key + ":lock"
        self._owns_client = owns_client

    async def _read(self) -> StoredToken | None:
        raw = await self.redis.get(self.key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return StoredToken(str(data["token"]), datetime.fromtimestamp(float(data["expires_at"]), UTC))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable access token value in Redis; refreshing")
            return None

    async def _acquire(self, seen: str | None) -> str | None:
        lease = secrets.token_hex(16)
        ok = await self.redis.set(self.lock_key, lease, nx=True, px=int(self.lease.total_seconds() * 1000))
        return lease if ok else None

    async def _publish(self, lease: str, value: StoredToken) -> None:
        ttl_ms = int((value.expires_at - self.clock.now()).total_seconds() * 1000)
        data = json.dumps({"token": value.token, "expires_at": value.expires_at.timestamp()})
        await self.redis.set(self.key, data, px=max(ttl_ms, 1000))
        await self._release(lease)

    async def _release(self, lease: str) -> None:
        await self.redis.eval(_RELEASE_LUA, 1, self.lock_key, lease)

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()


def make_token_store(settings: Settings, db: Database | None, *, clock: Clock | None = None) -> TokenStore:
    """Redis when ``settings.redis_url`` is set, else the database, else this process only."""
    if settings.redis_url:
        from redis.asyncio import Redis as RedisClient

        client = RedisClient.from_url(settings.redis_url)
        return RedisTokenStore(client, settings.wechat_appid, owns_client=True, clock=clock)
    if db is not None:
        return DatabaseTokenStore(db, settings.wechat_appid, clock=clock)
    return InMemoryTokenStore(settings.wechat_appid, clock=clock)
