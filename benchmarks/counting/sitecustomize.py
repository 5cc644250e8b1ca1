"""Counts a server's SQL statements and transactions, for ``wechat_mix.py --count-statements``.

Put on ``PYTHONPATH`` (with ``BENCH_COUNTS`` naming a directory), Python imports it at the start
of every process, so the supervisor and each worker count their own: SQLAlchemy's engine events
(statements sent, transactions begun, committed, rolled back), written to ``BENCH_COUNTS/<pid>``
every 0.2 s by a daemon thread. On PostgreSQL (asyncpg) and Redis it also counts round trips:
statements prepared on the server (SQLAlchemy's per-connection cache of asyncpg statements missed),
every exchange with PostgreSQL (prepare, execute, executemany, and BEGIN/COMMIT/ROLLBACK, which
asyncpg sends as queries of their own), and every command or pipeline sent to Redis. The
listeners cost a little CPU per statement: measure CPU without this.
"""

from __future__ import annotations

import functools
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

    def _counted(owner: Any, name: str, *fields: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for field in fields:
                counts[field] += 1
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

    threading.Thread(target=_write, name="bench-counts", daemon=True).start()
