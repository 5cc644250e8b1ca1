"""The language packages as the service uses them: loaded once, reloaded on an operator's signal.

``python -m bot intents reload`` / ``kb reload`` (and later the console) bump a generation in the
``reload_signals`` table; every server process polls it and rebuilds in a worker thread. The
packages swap their model atomically, so classification never sees a half-built one, and a
broken data file leaves the old one serving.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.storage.db import Database
from bot.storage.models import ReloadSignal, utcnow
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


@dataclass
class Language:
    intents: IntentEngine
    knowledge: KnowledgeBase
    generations: dict[str, int] = field(default_factory=dict)

    @classmethod
    async def load(cls, settings: Settings) -> Language:
        intents, knowledge = await asyncio.to_thread(
            _build, settings.intents_dir, settings.knowledge_dir, labelled_messages(settings)
        )
        return cls(intents, knowledge)

    async def reload(self, name: str) -> None:
        """Rebuild one package's model from its files; raises its data error, old model kept."""
        target: Callable[[], None] = self.intents.reload if name == "intents" else self.knowledge.reload
        await asyncio.to_thread(target)

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
        async with db.session() as session:
            rows = (await session.execute(select(ReloadSignal.name, ReloadSignal.generation))).all()
        for name, generation in rows:
            if name not in NAMES or self.generations.get(name) == generation:
                continue
            self.generations[name] = generation
            if first:
                continue
            try:
                await self.reload(name)
                log.info("reloaded %s (generation %d)", name, generation)
            except Exception as exc:  # the package names file and line; the old model keeps serving
                log.error("could not reload %s, keeping the previous one: %s", name, exc)


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
