"""The language packages as the service uses them: loaded once, reloaded on an operator's signal.

``python -m bot intents reload`` / ``kb reload`` and the console's tuning loop bump a generation in
the ``reload_signals`` table; every server process polls it and rebuilds in a worker thread. The
packages swap their model atomically, so classification never sees a half-built one, and a
broken data file leaves the old one serving.

When the tuning loop has published a version (``tuning_state.active_version``), a process serves the
data files with that version's overlay applied, written to a folder of its own under
``<data_dir>/tuning/`` (:func:`bot.services.tuning_data.materialize`); each poll also compares the
active version with the one served, so a process that missed a signal still switches.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.config import Settings
from bot.services import tuning_data
from bot.storage.db import Database
from bot.storage.models import ReloadSignal, utcnow
from bot.storage.tuning_models import TuningState, TuningVersion
from intents.dataset import LABELLED_FILE
from intents.engine import IntentEngine
from intents.registry import Registry, packaged_registry
from knowledge.base import KnowledgeBase

log = logging.getLogger("bot.language")

NAMES = ("intents", "knowledge")

# Building the models costs seconds; a process that starts several apps (tests) builds them once.
_cache: dict[tuple[str, str, str], tuple[IntentEngine, KnowledgeBase]] = {}
_cache_lock = threading.Lock()


def labelled_messages(settings: Settings) -> Path:
    """An operator's labelled messages (``python -m bot intents train --extra FILE``)."""
    return settings.data_dir / LABELLED_FILE


def _build(intents_dir: Path | None, knowledge_dir: Path | None,
           labelled: Path | None = None) -> tuple[IntentEngine, KnowledgeBase]:
    labelled_key = str(labelled) if labelled is not None and labelled.is_file() else ""
    key = (str(intents_dir or ""), str(knowledge_dir or ""), labelled_key)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = (IntentEngine.load(intents_dir, labelled=labelled), KnowledgeBase.load(knowledge_dir))
        return _cache[key]


def intents_registry(rt: object) -> Registry:
    """The intents of the running engine (a runtime's ``language``), else the packaged list."""
    language = getattr(rt, "language", None)
    return language.intents.registry if language is not None else packaged_registry()


_folders = itertools.count(1)


def sources_of(settings: Settings) -> tuning_data.Sources:
    """The data files a server starts from (configured folders or the packaged ones)."""
    return tuning_data.Sources.of(settings.intents_dir, settings.knowledge_dir, labelled_messages(settings))


async def active_number(db: Database) -> int | None:
    """The published tuning version every process should serve (None: the files as they are)."""
    async with db.session() as session:
        state = await session.get(TuningState, 1)
        return state.active_version if state is not None else None


async def overlay_of(db: Database, number: int | None) -> dict[str, Any]:
    if number is None:
        return tuning_data.empty()
    async with db.session() as session:
        row = await session.get(TuningVersion, number)
        return tuning_data.normalized(row.overlay if row is not None else None)


@dataclass
class Language:
    intents: IntentEngine
    knowledge: KnowledgeBase
    generations: dict[str, int] = field(default_factory=dict)
    version: int | None = None  # the tuning version served (None: the files as they are)
    settings: Settings | None = None
    folder: Path | None = None  # this process's materialized copy of ``version``
    shared: bool = False  # the models come from the process-wide cache: never changed in place by a switch
    failed: int | None = None  # a version whose files did not load here: tried again on the next signal only

    @classmethod
    async def load(cls, settings: Settings, db: Database | None = None) -> Language:
        number = None
        if db is not None:
            try:
                number = await active_number(db)
            except SQLAlchemyError:  # a database without the tuning tables (not migrated): the files
                log.warning("no tuning state in the database; serving the data files")
        if number is None:
            intents, knowledge = await asyncio.to_thread(
                _build, settings.intents_dir, settings.knowledge_dir, labelled_messages(settings)
            )
            return cls(intents, knowledge, settings=settings, shared=True)
        overlay = await overlay_of(db, number) if db is not None else tuning_data.empty()
        folder = _folder(settings, number)
        files = await asyncio.to_thread(tuning_data.materialize, overlay, sources_of(settings), folder)
        intents = await asyncio.to_thread(IntentEngine.load, files.intents, None, files.labelled)
        knowledge = await asyncio.to_thread(KnowledgeBase.load, files.knowledge)
        return cls(intents, knowledge, version=number, settings=settings, folder=folder)

    async def reload(self, name: str) -> None:
        """Rebuild one package's model from its files; raises its data error, old model kept."""
        target: Callable[[], None] = self.intents.reload if name == "intents" else self.knowledge.reload
        await asyncio.to_thread(target)

    async def switch(self, number: int | None, overlay: dict[str, Any], names: tuple[str, ...] = NAMES) -> None:
        """Serve tuning version ``number`` (the files with ``overlay``): materialize it in a folder of
        this process's own, rebuild ``names`` from it, then drop the folder served before."""
        if self.settings is None:
            raise RuntimeError("a Language made without settings cannot switch versions")
        folder = _folder(self.settings, number or 0)
        files = await asyncio.to_thread(tuning_data.materialize, overlay, sources_of(self.settings), folder)
        if self.shared:  # the cached models other apps of this process use: build this one's own
            intents = await asyncio.to_thread(IntentEngine.load, files.intents, None, files.labelled)
            knowledge = await asyncio.to_thread(KnowledgeBase.load, files.knowledge)
            self.intents, self.knowledge, self.shared = intents, knowledge, False
        else:
            if "intents" in names:
                await asyncio.to_thread(self.intents.retarget, files.intents, files.labelled)
            if "knowledge" in names:
                await asyncio.to_thread(self.knowledge.retarget, files.knowledge)
        old, self.folder, self.version = self.folder, folder, number
        if old is not None and old != folder:
            await asyncio.to_thread(shutil.rmtree, old, True)

    async def watch(self, db: Database, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Follow reload signals until ``stop``; the first look only records the generations."""
        first = True
        while not stop.is_set():
            try:
                await self._check(db, first)
                first = False
            except Exception:
                log.exception("reload check failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    async def _check(self, db: Database, first: bool) -> None:
        # Every second in every process: both reads in one read-only transaction, one hop to the
        # database's thread (not a session per table).
        rows, active = await db.run_sync_read(_signals)
        moved: list[str] = []
        for name, generation in rows:
            if name not in NAMES or self.generations.get(name) == generation:
                continue
            self.generations[name] = generation
            if not first:
                moved.append(name)
        number = active if self.settings is not None else self.version
        if number != self.version and (number != self.failed or moved):
            try:
                await self.switch(number, await overlay_of(db, number))
                self.failed = None
                log.info("serving tuning version %s", number)
            except Exception as exc:  # the package names file and line; the old model keeps serving
                self.failed = number
                log.error("could not switch to tuning version %s, keeping %s: %s", number, self.version, exc)
            return
        for name in moved:
            try:
                if self.version is not None:
                    await self.switch(self.version, await overlay_of(db, self.version), (name,))
                else:
                    await self.reload(name)
                log.info("reloaded %s (generation %d)", name, self.generations[name])
            except Exception as exc:  # the package names file and line; the old model keeps serving
                log.error("could not reload %s, keeping the previous one: %s", name, exc)


_GENERATIONS = select(ReloadSignal.name, ReloadSignal.generation)
_ACTIVE = select(TuningState.active_version).where(TuningState.id == 1)


def _signals(connection: Connection) -> tuple[list[tuple[str, int]], int | None]:
    """The reload generations and the published tuning version (None: the files as they are)."""
    rows = [(name, generation) for name, generation in connection.execute(_GENERATIONS)]
    return rows, connection.execute(_ACTIVE).scalar()


def _folder(settings: Settings, number: int) -> Path:
    root = settings.data_dir / "tuning"
    if root.is_dir():
        _sweep(root)
    return root / f"v{number}-{os.getpid()}-{next(_folders)}"


def _sweep(root: Path) -> None:
    """Remove the folders of processes that are gone (``v<N>-<pid>-<k>``)."""
    for path in root.iterdir():
        parts = path.name.split("-")
        if len(parts) < 3 or not parts[1].isdigit() or int(parts[1]) == os.getpid():
            continue
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # alive (another user's process) or not ours to judge


async def request_reload(db: Database, name: str) -> int:
    """Ask every running process to reload ``name``; returns the new generation."""
    if name not in NAMES:
        raise ValueError(f"unknown language package {name!r}")
    for _ in range(3):
        try:
            async with db.transaction() as session:
                row = await session.get(ReloadSignal, name)
                if row is None:
                    session.add(ReloadSignal(name=name, generation=1, requested_at=utcnow()))
                    return 1
                await session.execute(
                    update(ReloadSignal)
                    .where(ReloadSignal.name == name)
                    .values(generation=ReloadSignal.generation + 1, requested_at=utcnow())
                )
                return int(row.generation) + 1
        except IntegrityError:
            continue  # created concurrently: go again
    raise RuntimeError("could not record the reload request")
