"""The database handle: an async engine and session factory for SQLite or PostgreSQL.

``run_sync_transaction`` runs a synchronous function on a Core connection in one write
transaction. Through the async drivers every statement costs a hop to a driver thread (aiosqlite)
or the greenlet bridge, about 0.3 ms of CPU each, while SQLite itself answers a keyed query in
microseconds; so on a SQLite file the function runs in one dedicated thread on a synchronous
connection (one hop per transaction). On PostgreSQL it runs through the async connection's
greenlet bridge. Used by the hot path's group commit (``bot/storage/groupcommit.py``), whose
statements are :class:`bot.storage.prepared.Prepared`. ``run_sync_read`` is its read-only
twin: on a SQLite file it reads on the caller's thread, on a read-only connection in autocommit.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn

from bot.storage.checkpoint import Checkpointer

R = TypeVar("R")


_JSON = json.JSONEncoder(ensure_ascii=False)  # built once: json.dumps with options builds one per call


class JSONText(str):
    """A value's JSON text made beforehand (:func:`json_text`), stored as it is by a JSON column:
    a value stored in two columns (a reply and its log row) is encoded once."""

    __slots__ = ()


def json_text(value: Any) -> JSONText:
    """``value``'s JSON text (as :func:`json_dumps` makes it), for a JSON column to store as it is."""
    return JSONText(_JSON.encode(value))


def json_dumps(value: Any) -> str:
    """JSON columns as text: Chinese kept as UTF-8 (a third of its ``\\uXXXX`` size); any JSON
    reads back alike. The same text as ``json.dumps(value, ensure_ascii=False)``. A
    :class:`JSONText` is that text already."""
    if type(value) is JSONText:
        return str.__str__(value)
    return _JSON.encode(value)


def dialect_insert(dialect: str, table: Any) -> Any:
    """INSERT for ``dialect`` ("sqlite" or "postgresql"), with ``on_conflict_do_nothing/update``."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


_SAVEPOINT = "bot_savepoint"


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """``connection.begin_nested()``: what the block writes is undone if it raises (the caller's
    transaction goes on). On SQLite it is one SQL text, sent on the driver's cursor: ``SAVEPOINT``
    and ``RELEASE`` (``ROLLBACK TO`` first when the block raised). SQLAlchemy names every
    savepoint anew (``sa_savepoint_1``, ``_2`` … over a connection's life) and compiles its
    clause on each use (savepoint clauses are not cached): about 90 us of CPU a savepoint on the
    writing thread, more than the statements inside. SQLite lets a name repeat (each refers to the
    innermost savepoint of that name), so blocks nest. Elsewhere: ``begin_nested``."""
    if connection.dialect.name != "sqlite":
        with connection.begin_nested():
            yield
        return
    if not connection.in_transaction():
        connection.begin()  # as begin_nested does: the outer transaction first (SQLAlchemy's BEGIN)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            yield
        except BaseException:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            raise
        cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    finally:
        cursor.close()


WAL_CHECKPOINT_PAGES = 10_000
PREPARED_PER_CONNECTION = 256  # asyncpg: statements kept prepared per connection


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin) instead of the driver's implicit one.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint every ~40 MB of WAL rather than every 4 MB: a page written by many commits (an
    # index leaf, the table's last page) is copied back once per checkpoint, and each checkpoint
    # syncs; the WAL file keeps that size on disk.
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_read_only(dbapi_conn: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_conn, record)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")  # a read that writes fails instead of committing
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take SQLite's write lock up front so read-then-write cannot interleave, even across
    # processes; readers begin deferred.
    if conn.get_execution_options().get("sqlite_immediate"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _asyncpg_alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled asyncpg connection whose server end has gone (a PostgreSQL restart, a backend
    terminated) is replaced at checkout. asyncpg sees the socket close as soon as the event loop
    reads it, so this costs no round trip; ``pool_pre_ping`` costs three on every checkout through
    SQLAlchemy's asyncpg dialect (BEGIN, the ping, ROLLBACK)."""
    if dbapi_conn.driver_connection.is_closed():
        raise exc.DisconnectionError("the database closed this pooled connection")


def _unsent_on_lost_connection(error: BaseException | None) -> bool:
    """Whether asyncpg refused a statement before sending it because the connection is gone: its
    protocol closed (``InterfaceError``: connection is closed) or caught mid-way by the server's
    goodbye (``InternalClientError``: cannot switch state, seen when a backend is terminated between
    statements and the loop has not yet read the socket's close). Nothing reached the server."""
    import asyncpg

    while error is not None:
        if isinstance(error, asyncpg.exceptions.InternalClientError):
            return True
        if isinstance(error, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(error):
            return True
        error = error.__cause__
    return False


def _asyncpg_lost(context: Any) -> None:
    """A statement asyncpg refused on a lost connection is a disconnect: SQLAlchemy invalidates the
    connection and the pool's others (all opened before it), so the next checkout connects anew.
    SQLAlchemy's own test asks asyncpg whether the connection is closed, which it may not know
    yet when the server's goodbye is still unread."""
    if _unsent_on_lost_connection(context.original_exception):
        context.is_disconnect = True


async def _once_more_if_unsent(run: Callable[[], Awaitable[R]]) -> R:
    """``run()``, and once more on a fresh connection if its statement was refused unsent on a
    lost connection (a PostgreSQL restart, backends terminated). Safe to repeat: the refused
    statement never reached the server, and any transaction it was part of died with the
    connection; an autocommit ``fn`` whose one write is its last statement did not write."""
    try:
        return await run()
    except exc.DBAPIError as error:
        if not (error.connection_invalidated and _unsent_on_lost_connection(error)):
            raise
    return await run()


def _pg_in_transaction(engine: Engine, fn: Callable[[Connection], R]) -> R:
    """``fn`` in one transaction on a pooled connection (inside the greenlet bridge): commit on
    success, rollback on error; the connection goes back to the pool either way."""
    with engine.connect() as connection, connection.begin():
        return fn(connection)


def _pg_in_autocommit(engine: Engine, fn: Callable[[Connection], R]) -> R:
    """``fn`` on a pooled connection in autocommit (inside the greenlet bridge); the connection's
    isolation level is reset when it goes back to the pool, as ``execution_options`` does."""
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        return fn(connection)


class Database:
    """Owns the engine; ``session()`` yields a session, ``transaction()`` one that commits."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        # Parameters (openids, phone numbers, texts) stay out of error messages and so out of logs.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True, "json_serializer": json_dumps}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # A small pool: opening an aiosqlite connection costs a thread and the PRAGMAs.
            kwargs.update(pool_size=5, max_overflow=10)
        else:
            # Connections stay open for the process's life: one the pool cannot keep (an overflow
            # beyond pool_size) is closed on its return, and the next burst opens it again — a new
            # backend, its type codecs, and every statement prepared afresh on it. With 32 requests
            # in flight a pool of 10 reopened one connection per 17 messages. Up to 30 per process,
            # as before (``max_connections`` must allow that many per worker).
            asyncpg = parsed.get_driver_name() == "asyncpg"
            # Last in, first out: the connections used a moment ago serve the next requests, so a
            # few connections carry most of the work with their statements already prepared (in
            # turn, every statement was prepared again on each of the 25 before it paid off), and
            # the rest only serve bursts.
            kwargs.update(pool_size=25, max_overflow=5, pool_pre_ping=not asyncpg, pool_use_lifo=True)
            if asyncpg:
                # asyncpg statements kept per connection (SQLAlchemy's default: 100). The hot path
                # has about 150 different ones; a statement not kept costs a round trip to prepare
                # it again (parse and plan on the server) on its next use.
                kwargs["connect_args"] = {"prepared_statement_cache_size": PREPARED_PER_CONNECTION}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        elif self.dialect == "postgresql" and parsed.get_driver_name() == "asyncpg":  # instead of pre-ping
            event.listen(self.engine.sync_engine, "checkout", _asyncpg_alive)
            event.listen(self.engine.sync_engine, "handle_error", _asyncpg_lost)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; serialising writers in-process avoids busy-wait storms.
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._sync_engine: Engine | None = None
        self._sync_thread: ThreadPoolExecutor | None = None
        self._sync_connection: Connection | None = None  # used on the database's thread only
        self._checkpointer: Checkpointer | None = None
        self._read_engine: Engine | None = None
        self._readers = threading.local()  # per thread: its read-only connection
        self._read_connections: list[Connection] = []
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            # The same file through the standard library's driver, used from one thread only.
            # The driver keeps compiled SQL by text; the hot path's statements come in one variant
            # per batch size (IN lists, multi-row INSERTs): up to 64 each, more in all than the
            # driver's default of 128 would keep.
            self._sync_engine = create_engine(
                parsed.set(drivername="sqlite+pysqlite"),
                hide_parameters=True,
                pool_size=1,
                max_overflow=0,
                connect_args={"cached_statements": 1024},
                json_serializer=json_dumps,
            )
            event.listen(self._sync_engine, "connect", _sqlite_pragmas)
            event.listen(self._sync_engine, "begin", _sqlite_begin)
            # Reads: connections of their own, read-only (``query_only``), each statement in
            # autocommit (no BEGIN and ROLLBACK), used on the thread that reads (the event loop's):
            # a read costs no hop to the database's thread (see run_sync_read).
            self._read_engine = create_engine(
                parsed.set(drivername="sqlite+pysqlite"),
                hide_parameters=True,
                pool_size=1,
                max_overflow=0,
                connect_args={"cached_statements": 1024, "check_same_thread": False},
                json_serializer=json_dumps,
            )
            event.listen(self._read_engine, "connect", _sqlite_read_only)
            # The WAL's checkpoints off the writing thread (bot/storage/checkpoint.py), from the
            # first use of that thread until dispose.
            self._checkpointer = Checkpointer(parsed.database)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT (SQLite or PostgreSQL), which has ``on_conflict_do_nothing/update``."""
        return dialect_insert(self.dialect, table)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on success and rolls back on error.

        Do not nest: on SQLite writers are serialised by an in-process lock as well as the file lock.
        """
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessions() as session:
            await session.connection(execution_options={"sqlite_immediate": True})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def run_sync_transaction(self, fn: Callable[[Connection], R]) -> R:
        """``fn(connection)`` in one write transaction (commit on success, rollback on error)."""
        if self._sync_engine is None or self._write_lock is None:  # PostgreSQL
            # Begun and committed inside the one call through the greenlet bridge: about 15 % less
            # CPU per transaction than ``engine.begin()`` around ``run_sync`` (each of its steps
            # crosses the bridge on its own).
            return await _once_more_if_unsent(lambda: self._pg_transaction(fn))
        executor = self._sync_executor()
        async with self._write_lock:
            return await asyncio.get_running_loop().run_in_executor(executor, self._in_sync_transaction, fn)

    def _sync_executor(self) -> ThreadPoolExecutor:
        if self._sync_thread is None:
            self._sync_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-batch")
            if self._checkpointer is not None:
                self._checkpointer.start()
        return self._sync_thread

    async def run_sync_read(self, fn: Callable[[Connection], R]) -> R:
        """``fn(connection)`` for reading, each statement a transaction of its own (autocommit),
        without the write lock. ``fn`` must not write (on SQLite a write fails).

        On a SQLite file it runs here, on the calling thread (the event loop's), on a read-only
        connection of that thread's (``PRAGMA query_only``): no hop to the database's thread, where
        the hop (executor, wake-up, result handed back) and a BEGIN and ROLLBACK cost about three
        times a one-statement read (126-145 -> 25-39 us of CPU), and no wait behind the batched
        commits queued there. A reader of SQLite's WAL takes no lock a writer holds, so it does not
        wait for one; it sees what was committed when each statement starts, as on PostgreSQL."""
        if self._sync_engine is None or self._write_lock is None:  # PostgreSQL
            # Each statement its own transaction: no BEGIN and ROLLBACK, each a round trip of its
            # own through asyncpg. The same reads: under READ COMMITTED (the default) every
            # statement of a transaction sees its own snapshot anyway.
            return await _once_more_if_unsent(lambda: self._pg_autocommit(fn))
        return self._read_inline(fn)

    def _read_inline(self, fn: Callable[[Connection], R]) -> R:
        """:meth:`run_sync_read` on SQLite: on this thread's read-only connection (opened at its
        first read, replaced when it failed)."""
        conn = getattr(self._readers, "connection", None)
        if conn is None or conn.closed or conn.invalidated:
            assert self._read_engine is not None
            conn = self._readers.connection = self._read_engine.connect()
            self._read_connections.append(conn)
        try:
            return fn(conn)
        finally:
            conn.rollback()  # SQLAlchemy's own transaction; SQLite has none open (autocommit)

    async def run_sync_autocommit(self, fn: Callable[[Connection], R]) -> R:
        """``fn(connection)`` where every statement is a transaction of its own: on PostgreSQL in
        autocommit (no BEGIN and COMMIT, each a round trip through asyncpg, and no transaction left
        idle while the event loop serves others between statements), for work whose one write is
        a single statement (the journal's claim). On SQLite, :meth:`run_sync_transaction`."""
        if self._sync_engine is None or self._write_lock is None:  # PostgreSQL
            return await _once_more_if_unsent(lambda: self._pg_autocommit(fn))
        return await self.run_sync_transaction(fn)

    # PostgreSQL: the checkout, ``fn`` and the return to the pool in one call through the greenlet
    # bridge (``greenlet_spawn``, what ``AsyncConnection.run_sync`` runs on), on the synchronous
    # face of the same engine and pool. Through ``AsyncEngine.connect()`` the checkout, the
    # isolation level, ``run_sync`` and the close each crossed the bridge on their own (a new
    # greenlet each), and the close ran in a task of its own under ``asyncio.shield``: about 60 us
    # of CPU per call beside the statements, paid by every claim, finish and read.
    async def _pg_transaction(self, fn: Callable[[Connection], R]) -> R:
        return await greenlet_spawn(_pg_in_transaction, self.engine.sync_engine, fn)

    async def _pg_autocommit(self, fn: Callable[[Connection], R]) -> R:
        return await greenlet_spawn(_pg_in_autocommit, self.engine.sync_engine, fn)

    def _connection(self) -> Connection:
        """The synchronous connection, kept open between transactions (on the database's thread):
        checking one out of the pool and returning it (with its reset) cost about a third of a
        one-statement read. A connection that has failed is replaced."""
        conn = self._sync_connection
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # already broken: the new one is what matters
                    pass
            assert self._sync_engine is not None
            conn = self._sync_connection = self._sync_engine.connect()
        return conn

    def _in_sync_transaction(self, fn: Callable[[Connection], R]) -> R:
        conn = self._connection().execution_options(sqlite_immediate=True)
        with conn.begin():
            return fn(conn)

    def _close_sync(self) -> None:
        if self._sync_connection is not None:
            self._sync_connection.close()
            self._sync_connection = None
        assert self._sync_engine is not None
        self._sync_engine.dispose()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_thread is not None and self._sync_engine is not None:
            # Connections are closed by the thread that opened them (sqlite3's thread check).
            await asyncio.get_running_loop().run_in_executor(self._sync_thread, self._close_sync)
            self._sync_thread.shutdown(wait=True)
            self._sync_thread = None
        for conn in self._read_connections:
            conn.close()
        self._read_connections.clear()
        self._readers = threading.local()
        if self._read_engine is not None:
            self._read_engine.dispose()
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.stop)
