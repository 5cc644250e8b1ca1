"""Residents' own settings the chat changes: the QR scene they came through and the building it binds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from bot.storage.db import Database
from bot.storage.models import Resident

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
