"""Read-mostly rows the chat lists, served from memory: the coupon catalogue and the courses' sessions.

A :class:`ReadMostly` keeps what it last read per database for at most :data:`MAX_AGE` seconds
(of the monotonic clock), and drops it at once when this process changes what it holds:

* a commit of an ORM session that wrote one of the watched tables (merchants, coupons, activities,
  activity sessions) — the staff API and console, a cancellation, the tests' helpers — found by
  SQLAlchemy's public session events (``after_flush`` for objects added, changed or deleted,
  ``do_orm_execute`` for ``session.execute(update(Coupon)…)``), the rows dropped after the commit;
* the services' own Core writes, which say what they changed: a redemption's stock and a
  booking's places go into the rows in place (the numbers their statements returned), anything
  else calls :func:`changed`.

Another process's changes (a redemption in another worker, an edit through its API) show within
:data:`MAX_AGE`. What is served from memory is only ever shown: every decision that counts (a
redemption's stock and limits, a booking's places) is taken by the database in its transaction,
and a coupon or session gone meanwhile is refused there as it was before (the same race as a
listing read a moment before the change).

Rows are read only forward in time: an entry read at ``now`` serves asks at ``now`` or later (what
it left out had ended before); an ask for an earlier time reads the database. A load that raced
with a change is not kept: every drop bumps a generation, and a load stores its rows only if the
generation it started with is still current.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.orm import ORMExecuteState, Session

from bot.storage.db import Database
from bot.storage.models import Activity, ActivitySession, Coupon, Merchant

MAX_AGE = 1.0  # seconds: how late another process's change may show
WATCHED = (Merchant, Coupon, Activity, ActivitySession)
_FLAG = "readmostly_changed"

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    value: T
    since: datetime  # the ``now`` it was read for: it serves asks at this time or later
    read_at: float  # time.monotonic()


class ReadMostly(Generic[T]):
    """One kind of rows, read by ``load(connection, now)`` and kept per database."""

    def __init__(self, load: Callable[[Connection, datetime], T]) -> None:
        self._load = load
        self._entries: weakref.WeakKeyDictionary[Database, _Entry[T]] = weakref.WeakKeyDictionary()
        _ALL.add(self)

    def peek(self, db: Database, now: datetime) -> T | None:
        """The rows kept for ``db`` if they may serve an ask at ``now``; else None."""
        entry = self._entries.get(db)
        if entry is None or now < entry.since or time.monotonic() - entry.read_at > MAX_AGE:
            return None
        return entry.value

    def read_in(self, db: Database, connection: Connection, now: datetime) -> T:
        """The rows kept, or read on ``connection`` (the caller's read) and kept."""
        kept = self.peek(db, now)
        if kept is not None:
            return kept
        generation, read_at = _generation[0], time.monotonic()
        value = self._load(connection, now)
        if generation == _generation[0]:  # no change was committed meanwhile
            self._entries[db] = _Entry(value, now, read_at)
        return value

    def update(self, db: Database, change: Callable[[T], T]) -> None:
        """Apply this process's own change (committed) to the rows kept for ``db``, if any."""
        entry = self._entries.get(db)
        if entry is not None:
            entry.value = change(entry.value)

    def clear(self) -> None:
        self._entries.clear()


_ALL: weakref.WeakSet[ReadMostly[Any]] = weakref.WeakSet()
_generation = [0]


def changed() -> None:
    """Something the kept rows show was changed and committed by this process: drop them all."""
    _generation[0] += 1
    for kept in list(_ALL):
        kept.clear()


def _watched(objects: Any) -> bool:
    return any(isinstance(o, WATCHED) for o in objects)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    if _watched(chain(session.new, session.dirty, session.deleted)):
        session.info[_FLAG] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_select:
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, WATCHED):
        state.session.info[_FLAG] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # (A flag left by a write that was rolled back costs one needless drop at the next commit.)
    if session.info.pop(_FLAG, False):
        changed()

