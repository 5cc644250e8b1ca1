"""Counts a server's SQL statements and transactions, for ``wechat_mix.py --count-statements``.

Put on ``PYTHONPATH`` (with ``BENCH_COUNTS`` naming a directory), Python imports it at the start
of every process, so the supervisor and each worker count their own: SQLAlchemy's engine events
(statements sent, transactions begun, committed, rolled back), written to ``BENCH_COUNTS/<pid>``
every 0.2 s by a daemon thread. The listeners cost a little CPU per statement: measure CPU
without this.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

_DIR = os.environ.get("BENCH_COUNTS", "")

if _DIR:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts = {"statements": 0, "begin": 0, "commit": 0, "rollback": 0}

    def _statement(*_: Any) -> None:
        counts["statements"] += 1

    def _event(name: str) -> Any:
        def count(*_: Any) -> None:
            counts[name] += 1

        return count

    event.listen(Engine, "before_cursor_execute", _statement)
    for _name in ("begin", "commit", "rollback"):
        event.listen(Engine, _name, _event(_name))

    def _write() -> None:
        path = os.path.join(_DIR, str(os.getpid()))
        while True:
            time.sleep(0.2)
            with open(path + ".tmp", "w", encoding="ascii") as f:
                f.write(" ".join(str(counts[k]) for k in ("statements", "begin", "commit", "rollback")))
            os.replace(path + ".tmp", path)

    threading.Thread(target=_write, name="bench-counts", daemon=True).start()
