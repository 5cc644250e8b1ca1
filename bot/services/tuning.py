"""The tuning loop's records: the shared draft, the published versions, the review decisions.

The draft is the active version's overlay plus the operators' changes not yet published
(:mod:`bot.services.tuning_data` says what an overlay is). Publishing writes the draft as a new
version, makes it the active one and signals every server process (``reload_signals``, the same
signal ``intents reload`` uses; each process also compares the active version in ``tuning_state``
with the one it serves, see :mod:`bot.language`). A rollback publishes an older version's overlay
again as a new version, so the history says who did what, when.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.language import request_reload
from bot.services import tuning_data
from bot.storage.db import Database
from bot.storage.tuning_models import TuningReview, TuningState, TuningVersion

STATE_ID = 1
REVIEW_KINDS = ("intent", "knowledge")
NOISE = "noise"


class TuningError(ValueError):
    """A request the tuning loop refuses (nothing to publish, unknown version, bad change)."""


@dataclass(frozen=True)
class Draft:
    overlay: dict[str, Any]
    base: int | None  # the version the draft started from
    active: int | None  # the version being served
    active_overlay: dict[str, Any]
    updated_by: str | None
    updated_at: datetime | None

    @property
    def pending(self) -> bool:
        return tuning_data.normalized(self.overlay) != tuning_data.normalized(self.active_overlay)


async def _state(session: AsyncSession, lock: bool = False) -> TuningState:
    query = select(TuningState).where(TuningState.id == STATE_ID)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        try:
            async with session.begin_nested():
                session.add(TuningState(id=STATE_ID, active_version=None, draft=tuning_data.empty()))
        except IntegrityError:
            pass  # created concurrently
        row = (await session.execute(query)).scalar_one()
    return row


async def _overlay_of(session: AsyncSession, version: int | None) -> dict[str, Any]:
    if version is None:
        return tuning_data.empty()
    row = await session.get(TuningVersion, version)
    return tuning_data.normalized(row.overlay if row is not None else None)


async def active(db: Database) -> tuple[int | None, dict[str, Any]]:
    """The version every process should serve and its overlay (None: the files as they are)."""
    async with db.session() as session:
        row = await session.get(TuningState, STATE_ID)
        version = row.active_version if row is not None else None
        return version, await _overlay_of(session, version)


async def draft(db: Database) -> Draft:
    async with db.transaction() as session:
        row = await _state(session)
        active_overlay = await _overlay_of(session, row.active_version)
        return Draft(tuning_data.normalized(row.draft), row.draft_base, row.active_version, active_overlay,
                     row.draft_updated_by, row.draft_updated_at)


async def change(db: Database, changes: Sequence[dict[str, Any]], intents: Iterable[str], user: str,
                 now: datetime) -> Draft:
    """Make ``changes`` to the draft, all or none (:class:`tuning_data.OverlayError` on a bad one)."""
    names = list(intents)
    async with db.transaction() as session:
        row = await _state(session, lock=True)
        overlay = tuning_data.normalized(row.draft)
        for item in changes:
            overlay = tuning_data.apply(overlay, item, names)
        row.draft = overlay
        row.draft_updated_by, row.draft_updated_at = user, now
        active_overlay = await _overlay_of(session, row.active_version)
        return Draft(overlay, row.draft_base, row.active_version, active_overlay, user, now)


async def discard(db: Database, user: str, now: datetime) -> None:
    """Throw the draft's unpublished changes away (back to the active version)."""
    async with db.transaction() as session:
        row = await _state(session, lock=True)
        row.draft = await _overlay_of(session, row.active_version)
        row.draft_base = row.active_version
        row.draft_updated_by, row.draft_updated_at = user, now


async def _make_active(session: AsyncSession, row: TuningState, overlay: dict[str, Any], user: str, note: str,
                       now: datetime, rollback_of: int | None) -> TuningVersion:
    version = TuningVersion(overlay=overlay, note=note[:500], published_by=user, published_at=now,
                            rollback_of=rollback_of)
    session.add(version)
    await session.flush()
    row.active_version = version.id
    row.draft, row.draft_base = overlay, version.id
    row.draft_updated_by, row.draft_updated_at = user, now
    return version


async def publish(db: Database, user: str, note: str, now: datetime, expected_base: int | None = None) -> int:
    """Publish the draft as a new version and make every process serve it; returns the version.

    ``expected_base``: the active version the operator looked at (the confirm page); if another
    operator published meanwhile, nothing happens (:class:`TuningError`)."""
    async with db.transaction() as session:
        row = await _state(session, lock=True)
        if expected_base is not None and expected_base != (row.active_version or 0):
            raise TuningError("another version was published meanwhile; look at the evaluation again")
        overlay = tuning_data.normalized(row.draft)
        if overlay == await _overlay_of(session, row.active_version):
            raise TuningError("the draft has no changes to publish")
        version = await _make_active(session, row, overlay, user, note, now, None)
        number = version.id
    await _signal(db)
    return number


async def rollback(db: Database, user: str, now: datetime, to: int | None = None) -> int:
    """Serve an older version again (default: the one published before the active one; 0: the files
    as they are) by publishing its overlay as a new version; unpublished draft changes are dropped."""
    async with db.transaction() as session:
        row = await _state(session, lock=True)
        if row.active_version is None:
            raise TuningError("nothing has been published yet")
        if to is None:  # the version that was served before the active one (0: the files)
            prior = (await session.execute(
                select(TuningVersion.id).where(TuningVersion.id < row.active_version)
                .order_by(TuningVersion.id.desc()).limit(1))).scalar_one_or_none()
            to = prior if prior is not None else 0
        if to != 0 and await session.get(TuningVersion, to) is None:
            raise TuningError(f"no version {to}")
        overlay = await _overlay_of(session, to or None)
        note = f"回滚到 v{to}" if to else "回滚到原始数据文件"
        version = await _make_active(session, row, overlay, user, note, now, to)
        number = version.id
    await _signal(db)
    return number


async def _signal(db: Database) -> None:
    for name in ("intents", "knowledge"):
        await request_reload(db, name)


async def versions(db: Database, limit: int = 100) -> list[TuningVersion]:
    async with db.session() as session:
        rows = await session.execute(select(TuningVersion).order_by(TuningVersion.id.desc()).limit(limit))
        return list(rows.scalars())


async def version(db: Database, number: int) -> TuningVersion | None:
    async with db.session() as session:
        return await session.get(TuningVersion, number)


# --------------------------------------------------------------------------------------- reviews
async def decide(db: Database, kind: str, texts: Sequence[str], label: str, user: str, now: datetime) -> int:
    """Record one decision for every text of a group; a text decided again takes the new label."""
    if kind not in REVIEW_KINDS:
        raise TuningError(f"unknown review kind {kind!r}")
    clean = list(dict.fromkeys(" ".join(t.split())[:500] for t in texts if t and t.strip()))
    if not clean or not label:
        raise TuningError("nothing to decide")
    async with db.transaction() as session:
        existing = {
            r.text: r for r in (await session.execute(
                select(TuningReview).where(TuningReview.kind == kind, TuningReview.text.in_(clean)))).scalars()
        }
        for text in clean:
            row = existing.get(text)
            if row is None:
                session.add(TuningReview(kind=kind, text=text, label=label[:100], decided_by=user, decided_at=now))
            else:
                row.label, row.decided_by, row.decided_at = label[:100], user, now
    return len(clean)


async def reviewed(db: Database, kind: str | None = None) -> list[TuningReview]:
    async with db.session() as session:
        query = select(TuningReview).order_by(TuningReview.id)
        if kind is not None:
            query = query.where(TuningReview.kind == kind)
        return list((await session.execute(query)).scalars())


async def resolve(db: Database, kind: str, texts: Sequence[str], action: str, user: str, now: datetime, *,
                  intents: Iterable[str], intent: str | None = None, entry: dict[str, Any] | None = None,
                  entry_id: str | None = None,
                  current_entry: Callable[[str], dict[str, Any] | None] = lambda _id: None) -> int:
    """One decision for a reviewed group: ``intent`` (its texts become labelled examples of
    ``intent`` in the draft), ``noise`` (nothing to learn), ``entry`` (a new knowledge entry whose
    phrasings include the texts) or ``phrasing`` (the texts become phrasings of ``entry_id``).
    Returns how many texts were decided."""
    names = list(intents)
    clean = [" ".join(t.split()) for t in texts if t and t.strip()]
    if not clean:
        raise TuningError("nothing to decide")
    changes: list[dict[str, Any]] = []
    if kind == "intent" and action == "intent":
        if intent not in names:
            raise TuningError(f"unknown intent {intent!r}")
        changes = [{"op": "label", "text": t, "intent": intent} for t in clean]
        label = str(intent)
    elif action == "noise":
        changes = [{"op": "label", "text": t, "intent": ""} for t in clean] if kind == "intent" else []
        label = NOISE
    elif kind == "knowledge" and action in ("entry", "phrasing"):
        if action == "entry":
            if not entry:
                raise TuningError("a new entry needs its fields")
            base = dict(entry)
        else:
            current = (await draft(db)).overlay["entries"].get(entry_id or "") or current_entry(entry_id or "")
            if not current:
                raise TuningError(f"no knowledge entry {entry_id!r}")
            base = dict(current)
        phrasings = [str(p) for p in base.get("alternatives") or []]
        for t in clean:
            if t != base.get("question") and t not in phrasings:
                phrasings.append(t)
        base["alternatives"] = phrasings
        changes = [{"op": "entry", "entry": base}]
        label = str(tuning_data.validate_entry(base).id)
    else:
        raise TuningError(f"unknown decision {action!r} for {kind!r}")
    if changes:
        await change(db, changes, names, user, now)
    return await decide(db, kind, clean, label, user, now)


async def reviewed_sets(db: Database) -> tuple[list[tuple[str, str]], list[tuple[str, str | None]]]:
    """Everything reviewed so far as evaluation sets: (text, intent) without noise, and (question,
    entry id or None for noise: the knowledge base should say it does not know)."""
    rows = await reviewed(db)
    intents = [(r.text, r.label) for r in rows if r.kind == "intent" and r.label != NOISE]
    knowledge = [(r.text, None if r.label == NOISE else r.label) for r in rows if r.kind == "knowledge"]
    return intents, knowledge
