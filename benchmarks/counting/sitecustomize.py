"""Counts a server's SQL statements and transactions, for ``wechat_mix.py --count-statements``.

Put on ``PYTHONPATH`` (with ``BENCH_COUNTS`` naming a directory), Python imports it at the start
of every process, so the supervisor and each worker count their own: SQLAlchemy's engine events
(statements sent, transactions begun, committed, rolled back), written to ``BENCH_COUNTS/<pid>``
every 0.2 s by a daemon thread. On PostgreSQL (asyncpg) and Redis it also counts round trips:
statements prepared on the server (SQLAlchemy's per-connection cache of asyncpg statements missed),
every exchange with PostgreSQL (prepare, execute, executemany, and BEGIN/COMMIT/ROLLBACK, which
asyncpg sends as queries of their own), and every command or pipeline sent to Redis. The
listeners cost a little CPU per statement: measure CPU without this.

With ``BENCH_COUNT_TEXTS=<directory>`` as well, each process also writes ``<directory>/<pid>.json``:
its round trips to PostgreSQL by SQL text (the first 160 characters) and kind, and its Redis round
trips by the commands they carried, to see which statements make the round trips.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

_DIR = os.environ.get("BENCH_COUNTS", "")
# The order of the numbers in each process's file (wechat_mix.py reads them by position).
FIELDS = ("statements", "begin", "commit", "rollback", "pg_prepares", "pg_round_trips", "redis_round_trips")

if _DIR:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts = dict.fromkeys(FIELDS, 0)

    def _statement(*_: Any) -> None:
        counts["statements"] += 1

    def _event(name: str) -> Any:
        def count(*_: Any) -> None:
            counts[name] += 1

        return count

    event.listen(Engine, "before_cursor_execute", _statement)
    for _name in ("begin", "commit", "rollback"):
        event.listen(Engine, _name, _event(_name))

    _TEXTS_DIR = os.environ.get("BENCH_COUNT_TEXTS", "")
    texts: dict[str, int] | None = {} if _TEXTS_DIR else None

    def _text(name: str, args: tuple[Any, ...]) -> str:
        """What a round trip carried: its kind and SQL text, or its Redis commands."""
        if name == "send_packed_command":
            packed = args[1] if len(args) > 1 else b""
            data = b"".join(bytes(c) for c in packed) if isinstance(packed, list | tuple) else bytes(packed)
            lines, names, i = data.split(b"\r\n"), [], 0
            while i + 2 < len(lines):  # RESP arrays: *<n>, then $<length> and the command's name
                if lines[i].startswith(b"*"):
                    names.append(lines[i + 2].decode("ascii", "replace").upper())
                    i += 1 + 2 * int(lines[i][1:])
                else:
                    i += 1
            return f"redis {len(names)}: " + " ".join(sorted(set(names)))
        query = getattr(args[0], "_query", None) if name == "fetch" else (args[1] if len(args) > 1 else "")
        return f"{name}: {' '.join(str(query).split())[:160]}"

    def _counted(owner: Any, name: str, *fields: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for field in fields:
                counts[field] += 1
            if texts is not None:
                key = _text(name, args)
                texts[key] = texts.get(key, 0) + 1
            return original(*args, **kwargs)

        setattr(owner, name, wrapper)

    try:
        from asyncpg.connection import Connection as _PgConnection
        from asyncpg.prepared_stmt import PreparedStatement as _PgStatement
    except ImportError:
        pass
    else:
        _counted(_PgConnection, "prepare", "pg_prepares", "pg_round_trips")
        _counted(_PgConnection, "execute", "pg_round_trips")  # BEGIN, COMMIT, ROLLBACK
        _counted(_PgConnection, "executemany", "pg_round_trips")
        _counted(_PgStatement, "fetch", "pg_round_trips")
    try:
        from redis.asyncio.connection import AbstractConnection as _RedisConnection
    except ImportError:
        pass
    else:
        _counted(_RedisConnection, "send_packed_command", "redis_round_trips")

    def _write() -> None:
        path = os.path.join(_DIR, str(os.getpid()))
        while True:
            time.sleep(0.2)
            with open(path + ".tmp", "w", encoding="ascii") as f:
                f.write(" ".join(str(counts[k]) for k in FIELDS))
            os.replace(path + ".tmp", path)
            if texts is not None:
                named = os.path.join(_TEXTS_DIR, f"{os.getpid()}.json")
                with open(named + ".tmp", "w", encoding="utf-8") as f:
                    json.dump(dict(texts), f, ensure_ascii=False, indent=0)
                os.replace(named + ".tmp", named)

    threading.Thread(target=_write, name="bench-counts", daemon=True).start()

# ``wechat_mix.py --cpu-clock``: with ``BENCH_CPU_CLOCK=<directory>`` each server process writes
# ``<directory>/<pid>.clock``: every request's latency on the process's own CPU clock
# (``time.process_time`` from the request's claim to its reply: the CPU the server spent, on all
# its threads, while the request was in flight) and, on SQLite, every transaction of the
# database's thread with its CPU time (``time.thread_time``), each stamped with the wall time it
# ended (``time.time``) so the benchmark keeps those of its measured phase. A server pinned to one
# core does not see its CPU clock advance while other processes hold that core, so these figures
# hold on a loaded machine where wall-clock latencies are mostly other processes' time.
_CLOCK_DIR = os.environ.get("BENCH_CPU_CLOCK", "")

if _CLOCK_DIR:
    from bot.handler import delivery as _delivery
    from bot.storage import db as _db

    _requests: list[tuple[float, float]] = []  # (ended at, CPU-clock latency)
    _transactions: list[tuple[float, float]] = []  # (ended at, the database thread's CPU)
    _handle = _delivery.Delivery.handle
    _in_sync_transaction = _db.Database._in_sync_transaction

    async def _clocked_handle(self: Any, inbound: Any) -> Any:
        started = time.process_time()
        try:
            return await _handle(self, inbound)
        finally:
            _requests.append((time.time(), time.process_time() - started))

    def _clocked_transaction(self: Any, fn: Any) -> Any:
        started = time.thread_time()
        try:
            return _in_sync_transaction(self, fn)
        finally:
            _transactions.append((time.time(), time.thread_time() - started))

    _delivery.Delivery.handle = _clocked_handle  # type: ignore[method-assign]
    _db.Database._in_sync_transaction = _clocked_transaction  # type: ignore[method-assign]

    def _write_clock() -> None:
        """Appends what is new every 0.2 s (lines ``r <ended at> <seconds>`` and ``t …``): the
        thread costs the server little however long the run."""
        path = os.path.join(_CLOCK_DIR, f"{os.getpid()}.clock")
        written = {"r": 0, "t": 0}
        while True:
            time.sleep(0.2)
            lines: list[str] = []
            for kind, entries in (("r", _requests), ("t", _transactions)):
                end = len(entries)
                lines.extend(f"{kind} {at:.6f} {seconds:.7f}\n" for at, seconds in entries[written[kind] : end])
                written[kind] = end
            if lines:
                with open(path, "a", encoding="ascii") as f:
                    f.writelines(lines)

    threading.Thread(target=_write_clock, name="bench-clock", daemon=True).start()
