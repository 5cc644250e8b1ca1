"""Residents' own settings the chat changes: the QR scene they came through and the building it binds."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy import inspect as sa_inspect

from bot.storage.db import Database, dialect_insert
from bot.storage.models import Resident
from bot.storage.prepared import detached

BUILDING_SCENE = "building:"


@dataclass(frozen=True)
class Scene:
    scene: str
    community: str | None = None
    building: str | None = None  # set when the scene binds a building


def parse_scene(key: str) -> Scene | None:
    """A QR scene key (``qrscene_`` removed); ``building:<社区>/<楼栋>`` names a building."""
    scene = key.removeprefix("qrscene_").strip()[:128]
    if not scene:
        return None
    if scene.startswith(BUILDING_SCENE):
        community, _, building = scene[len(BUILDING_SCENE) :].partition("/")
        if community and building:
            return Scene(scene, community[:64], building[:64])
    return Scene(scene)


async def apply_scene(db: Database, resident: Resident, key: str) -> Scene | None:
    """Record the scene on the resident (and the building it binds); the row object follows."""
    scene = parse_scene(key)
    if scene is None:
        return None
    values: dict[str, str | None] = {"scene": scene.scene}
    if scene.building:
        values.update(community=scene.community, building=scene.building)
    async with db.transaction() as session:
        await session.execute(update(Resident).where(Resident.id == resident.id).values(**values))
    for name, value in values.items():
        setattr(resident, name, value)
    return scene


_RESIDENTS = cast(Table, Resident.__table__)
_KEYS = tuple(attr.key for attr in sa_inspect(Resident).column_attrs)  # every column, as detached() wants


@functools.cache
def _touch(names: tuple[str, ...]) -> Any:
    """The resident's row with the columns ``names`` and the last-inbound time set — those and
    nothing else (``updated_at`` by its own ``onupdate``) — returning every column."""
    values = {name: bindparam(f"p_{name}", type_=_RESIDENTS.c[name].type) for name in names}
    return (
        update(_RESIDENTS)
        .where(_RESIDENTS.c.openid == bindparam("p_openid"))
        .values(**values, last_inbound_at=bindparam("p_now", type_=_RESIDENTS.c.last_inbound_at.type))
        .returning(*(_RESIDENTS.c[key] for key in _KEYS))
    )


@functools.cache
def _add(dialect: str) -> Any:
    """A first contact's row unless it is there already (created meanwhile), returning every column."""
    return (
        dialect_insert(dialect, _RESIDENTS)
        .on_conflict_do_nothing(index_elements=["openid"])
        .returning(*(_RESIDENTS.c[key] for key in _KEYS))
    )


def arrived_in(connection: Connection, openid: str, changes: Mapping[str, Any], now: datetime) -> Resident:
    """A message from ``openid`` at ``now``: the subscription ``changes`` (``subscribed``,
    ``subscribed_at``, ``unsubscribed_at``) and the last-inbound time written to the resident's row
    by a column-targeted UPDATE, or the row created (following the account) when there is none;
    the row as it is after it, detached. Nothing else of the row is written: a column another
    transaction set meanwhile (a first ticket's ``reported_at``, a scene's building) keeps its
    value, which writing back the row as the message read it would undo. Each statement is one
    atomic write: on PostgreSQL in autocommit it is one round trip."""
    names = tuple(sorted(changes))
    params = {"p_openid": openid, "p_now": now, **{f"p_{name}": value for name, value in changes.items()}}
    new = {"openid": openid, "subscribed": True, "subscribed_at": now, "created_at": now, **changes,
           "last_inbound_at": now}  # fmt: skip
    for _ in range(2):
        row = connection.execute(_touch(names), params).first()
        if row is None:  # a first contact (or one created meanwhile: then the UPDATE again)
            row = connection.execute(_add(connection.dialect.name), new).first()
        if row is not None:
            return detached(Resident, _KEYS, row)
    raise LookupError(f"resident {openid!r} neither updated nor created")


async def arrived(db: Database, openid: str, changes: Mapping[str, Any], now: datetime) -> Resident:
    """:func:`arrived_in` in autocommit (SQLite: one transaction)."""
    return await db.run_sync_autocommit(lambda connection: arrived_in(connection, openid, changes, now))
