"""Per-resident conversation state (a small FSM): a state name plus JSON data.

Two storages with one interface: the database (default) and Redis (``BOT_REDIS_URL``), so
several server processes share a conversation however WeChat spreads its requests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.orm.attributes import flag_modified

from bot.clock import Clock
from bot.storage.db import Database, dialect_insert
from bot.storage.models import ConversationState
from bot.storage.prepared import Prepared
from bot.storage.redisbatch import Command, RedisBatch, command

_log = logging.getLogger("bot.handler.state")
_TABLE = ConversationState.__table__
_STATES = Prepared(
    select(_TABLE.c.openid, _TABLE.c.state, _TABLE.c.data, _TABLE.c.updated_at).where(
        _TABLE.c.openid.in_(bindparam("openids", expanding=True))
    )
)
# Built once and prepared (``bot/storage/prepared.py``): the states a reply clears, and the upsert
# of those it keeps, run in the reply's transaction on SQLite's writing thread, where
# ``Connection.execute`` cost several times the statements themselves.
_CLEAR = Prepared(delete(ConversationState).where(ConversationState.openid.in_(bindparam("openids", expanding=True))))


def _upsert(dialect: str) -> Prepared:
    upsert = dialect_insert(dialect, _TABLE)
    return Prepared(
        upsert.on_conflict_do_update(
            index_elements=["openid"],
            set_={
                "state": upsert.excluded.state,
                "data": upsert.excluded.data,
                "updated_at": upsert.excluded.updated_at,
            },
        )
    )


@dataclass
class StateRecord:
    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class StateStorage(Protocol):
    async def get(self, openid: str) -> StateRecord: ...

    def read_many(self, connection: Connection, openids: Collection[str]) -> dict[str, StateRecord] | None:
        """Several residents' states within the caller's (synchronous) transaction when the storage
        is the database, else None."""
        ...

    def write_many(self, connection: Connection, changes: dict[str, StateRecord], now: datetime) -> bool:
        """Write changed states within the caller's (synchronous) transaction — the one that stores
        the message's reply — and return True; False when the storage is not the database (the
        caller then awaits :meth:`write` after that transaction committed)."""
        ...

    async def write(self, changes: dict[str, StateRecord]) -> None: ...

    async def set(self, openid: str, record: StateRecord) -> None: ...

    async def clear(self, openid: str) -> None: ...

    async def close(self) -> None: ...


class DatabaseStateStorage:
    """State rows in ``conversation_states``; idle states expire after ``ttl``."""

    def __init__(self, db: Database, clock: Clock, ttl: timedelta = timedelta(hours=2)) -> None:
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self._upsert = _upsert(db.dialect)

    async def get(self, openid: str) -> StateRecord:
        async with self.db.engine.connect() as connection:
            records = await connection.run_sync(self.read_many, [openid])
        return records[openid]

    def read_many(self, connection: Connection, openids: Collection[str]) -> dict[str, StateRecord]:
        rows = _STATES.rows(connection, {"openids": list(openids)})
        now = self.clock.now()
        records = {openid: StateRecord() for openid in openids}
        for openid, state, data, updated_at in rows:
            if state is None:
                continue
            if now - updated_at > self.ttl:
                records[openid] = StateRecord(state=None, data={"expired_state": state})
            else:
                records[openid] = StateRecord(state, dict(data or {}))
        return records

    def write_many(self, connection: Connection, changes: dict[str, StateRecord], now: datetime) -> bool:
        cleared = [openid for openid, record in changes.items() if record.state is None]
        kept = [
            {"openid": openid, "state": record.state, "data": dict(record.data), "updated_at": now}
            for openid, record in changes.items()
            if record.state is not None
        ]
        if cleared:
            _CLEAR.rows(connection, {"openids": cleared})
        if kept:
            self._upsert.many(connection, kept)
        return True

    async def write(self, changes: dict[str, StateRecord]) -> None:
        for openid, record in changes.items():
            if record.state is None:
                await self.clear(openid)
            else:
                await self.set(openid, record)

    async def set(self, openid: str, record: StateRecord) -> None:
        async with self.db.transaction() as session:
            row = await session.get(ConversationState, openid)
            if row is None:
                session.add(
                    ConversationState(
                        openid=openid, state=record.state, data=record.data, updated_at=self.clock.now()
                    )
                )
            else:
                row.state = record.state
                row.data = dict(record.data)
                row.updated_at = self.clock.now()
                # Written even when unchanged (a clock that stands still), so onupdate=utcnow never wins.
                flag_modified(row, "updated_at")

    async def clear(self, openid: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(ConversationState).where(ConversationState.openid == openid))

    async def close(self) -> None:
        return None


def _redis_down(exc: Exception, what: str) -> None:
    """Redis unreachable (its own errors, or the socket's): say so; anything else is a bug."""
    if not isinstance(exc, OSError | TimeoutError) and type(exc).__module__.split(".")[0] != "redis":
        raise exc
    _log.warning("conversation state: Redis unavailable (%s), %s skipped", type(exc).__name__, what)


class RedisStateStorage:
    """State as a JSON value per resident with a TTL. The reads and writes of concurrent messages
    go to Redis in one pipeline (:mod:`bot.storage.redisbatch`): a message's state is read after
    its claim and written after its reply, so the messages of one group commit arrive together."""

    def __init__(self, redis: Any, ttl: timedelta = timedelta(hours=2), prefix: str = "bot:state:") -> None:
        self.redis = redis
        self.ttl = ttl
        self.prefix = prefix
        self.batch = RedisBatch.shared(redis)

    def read_many(self, connection: Connection, openids: Collection[str]) -> dict[str, StateRecord] | None:
        return None

    def write_many(self, connection: Connection, changes: dict[str, StateRecord], now: datetime) -> bool:
        return False

    async def write(self, changes: dict[str, StateRecord]) -> None:
        commands = [
            self._delete(openid) if record.state is None and not record.data else self._set(openid, record)
            for openid, record in changes.items()
        ]
        try:
            results = await self.batch.execute(*commands)
            for result in results:
                if isinstance(result, Exception):
                    raise result
        except Exception as exc:
            _redis_down(exc, "write")

    # While Redis cannot be reached, residents are still answered: a conversation's state reads as
    # empty (a resident mid-flow is asked again) and its changes are not kept; logged as warnings.

    async def get(self, openid: str) -> StateRecord:
        try:
            raw = await self.batch.call("get", self.prefix + openid)
        except Exception as exc:
            _redis_down(exc, "read")
            return StateRecord()
        if not raw:
            return StateRecord()
        value = json.loads(raw)
        return StateRecord(value.get("state"), value.get("data") or {})

    async def set(self, openid: str, record: StateRecord) -> None:
        try:
            await self._one(self._set(openid, record))
        except Exception as exc:
            _redis_down(exc, "write")

    async def clear(self, openid: str) -> None:
        try:
            await self._one(self._delete(openid))
        except Exception as exc:
            _redis_down(exc, "clear")

    async def _one(self, cmd: Command) -> None:
        (result,) = await self.batch.execute(cmd)
        if isinstance(result, Exception):
            raise result

    def _set(self, openid: str, record: StateRecord) -> Command:
        payload = json.dumps({"state": record.state, "data": record.data}, ensure_ascii=False)
        return command("set", self.prefix + openid, payload, ex=int(self.ttl.total_seconds()))

    def _delete(self, openid: str) -> Command:
        return command("delete", self.prefix + openid)

    async def close(self) -> None:
        return None


class FSM:
    """The state of one resident as seen by a handler: read once, changed in memory, and written
    with the message's reply (in the same transaction when the storage is the database), so a
    message whose process dies before its reply is stored leaves the conversation where it was
    and can be redone."""

    def __init__(self, record: StateRecord) -> None:
        self._record = record
        self.changed = False

    @property
    def record(self) -> StateRecord:
        return self._record

    @property
    def state(self) -> str | None:
        return self._record.state

    @property
    def data(self) -> dict[str, Any]:
        return self._record.data

    @property
    def expired_state(self) -> str | None:
        """The state that lapsed from idleness since the last message, if any."""
        value = self._record.data.get("expired_state") if self._record.state is None else None
        return value if isinstance(value, str) else None

    async def set(self, state: str | None, **data: Any) -> None:
        """Move to ``state``, keeping existing data and updating it with ``data``."""
        self.move(state, **data)

    def move(self, state: str | None, **data: Any) -> None:
        """:meth:`set`, for a write of ``Context.reply_in`` (where the state depends on what it
        found: a ticket made, or the resident's own report repeated)."""
        merged = {k: v for k, v in self._record.data.items() if k != "expired_state"}
        merged.update(data)
        self._record = StateRecord(state, merged)
        self.changed = True

    async def update(self, **data: Any) -> None:
        await self.set(self._record.state, **data)

    def fill(self, **data: Any) -> None:
        """Add ``data`` to the current state without moving it: for a value known only when the
        reply is stored (a write of ``Context.with_reply``, e.g. the id of a row it inserted)."""
        self._record = StateRecord(self._record.state, {**self._record.data, **data})
        self.changed = True

    def forget(self, *keys: str) -> None:
        """Take ``keys`` out of the current state's data, without moving it."""
        if any(k in self._record.data for k in keys):
            data = {k: v for k, v in self._record.data.items() if k not in keys}
            self._record = StateRecord(self._record.state, data)
            self.changed = True

    async def clear(self) -> None:
        self._record = StateRecord()
        self.changed = True
