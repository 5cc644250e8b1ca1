"""The tuning loop on the JSON API (operators and admins): the review queue and its decisions, the
draft and its editors' changes, the evaluation of the draft beside the published version, publishing,
rollback, the version history and the export of the files to commit. The console's pages
(``bot/web/console/tuning.py``) call the same functions in ``bot/services/tuning*.py``."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from typing import Any

from aiohttp import web

from bot.api.errors import bad_request, conflict, not_found
from bot.api.registry import Call, component, obj, route
from bot.language import intents_registry, sources_of
from bot.runtime import Runtime
from bot.services import tuning, tuning_data, tuning_eval, tuning_review
from bot.services.tuning_data import OverlayError
from bot.services.tuning_review import Group

TUNING_ROLES = frozenset({"operator"})
TAGS = ("tuning",)
STR: dict[str, Any] = {"type": "string", "maxLength": 500}
VERSION_NUMBER: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
CHANGE: dict[str, Any] = {
    "type": "object",
    "required": ["op"],
    "properties": {
        "op": {"type": "string", "enum": ["label", "example", "synonym", "lookup", "entry", "entry_delete"]},
        "text": {"type": "string", "maxLength": 500}, "intent": {"type": "string", "maxLength": 32},
        "add": {"type": "boolean"}, "canonical": STR, "name": STR, "word": STR, "id": STR,
        "entry": {"type": "object"},
    },
    "additionalProperties": False,
}
ENTRY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 80}, "question": STR, "answer": {"type": "string", "maxLength": 2000},
        "alternatives": {"type": "array", "items": STR, "maxItems": 100},
        "tags": {"type": "array", "items": STR, "maxItems": 20}, "department": STR,
        "reviewed": {"type": "string", "maxLength": 10}, "link": STR, "article": STR, "sensitive": {"type": "boolean"},
    },
    "additionalProperties": False,
}

GROUP_ITEM = obj({"text": {"type": "string"}, "count": {"type": "integer"},
                  "reasons": {"type": "array", "items": {"type": "string"}}, "bot": {"type": ["string", "null"]},
                  "confidence": {"type": ["number", "null"]}}, ["text", "count", "reasons", "bot", "confidence"])
REVIEW_GROUP = component("TuningReviewGroup", obj({
    "id": {"type": "string"},
    "version": {"type": "string", "description": "the texts the group holds now, as a hash: send it with "
                "the decision (a group that changed meanwhile is a 409)"},
    "text": {"type": "string", "description": "the group's most frequent text"},
    "count": {"type": "integer", "description": "messages in the group"},
    "reasons": {"type": "object", "additionalProperties": {"type": "integer"},
                "description": "intent: fallback, low, clarified, handoff; knowledge: unknown, not_chosen, unhelpful"},
    "bot": {"type": "array", "items": {"type": "string"}, "description": "what the bot made of it"},
    "suggestion": {"type": ["string", "null"], "description": "the intent chosen after a clarifying question, "
                   "or the knowledge base's best entry"},
    "items": {"type": "array", "items": GROUP_ITEM}},
    ["id", "version", "text", "count", "reasons", "bot", "suggestion", "items"]))
REVIEW_QUEUE = component("TuningReviewQueue", obj({
    "kind": {"type": "string", "enum": ["intent", "knowledge"]},
    "groups": {"type": "array", "items": REVIEW_GROUP}}, ["kind", "groups"]))
DRAFT = component("TuningDraft", obj({
    "active": {"type": ["integer", "null"], "description": "the published version every process serves"},
    "served": {"type": ["integer", "null"], "description": "the version this process serves now"},
    "pid": {"type": "integer"}, "base": {"type": ["integer", "null"]}, "pending": {"type": "boolean"},
    "updated_by": {"type": ["string", "null"]}, "updated_at": {"type": ["string", "null"], "format": "date-time"},
    "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
    "overlay": {"type": "object"}}, ["active", "served", "pid", "base", "pending", "summary", "overlay"],
    additional=True))


def names(rt: Runtime) -> list[str]:
    return list(intents_registry(rt).names)


def user(call: Call) -> str:
    assert call.principal is not None
    return call.principal.name


def entry_of(rt: Runtime, entry_id: str) -> dict[str, Any] | None:
    """A published knowledge entry as a mapping (the one this process serves)."""
    language = rt.language
    entry = language.knowledge.get(entry_id) if language is not None else None
    return entry.to_dict() if entry is not None else None


async def draft_json(rt: Runtime, d: tuning.Draft | None = None) -> dict[str, Any]:
    d = d or await tuning.draft(rt.db)
    served = rt.language.version if rt.language is not None else None
    return {
        "active": d.active, "served": served, "pid": os.getpid(), "base": d.base, "pending": d.pending,
        "updated_by": d.updated_by, "updated_at": d.updated_at,
        "summary": tuning_data.summary(d.overlay), "overlay": d.overlay,
    }


async def queue(rt: Runtime, kind: str) -> list[Group]:
    if kind == "intent":
        threshold = rt.language.intents.config.threshold if rt.language is not None else 0.6
        d = await tuning.draft(rt.db)
        return await tuning_review.intent_queue(rt.db, threshold, skip=list(d.overlay["labelled"]))
    return await tuning_review.knowledge_queue(rt.db)


async def evaluation(rt: Runtime) -> dict[str, Any]:
    """The draft beside the published models, computed in a worker thread."""
    language = rt.language
    if language is None:
        raise bad_request("the language models are not loaded yet")
    d = await tuning.draft(rt.db)
    reviewed_intents, reviewed_knowledge = await tuning.reviewed_sets(rt.db)
    key = (language.version, sorted(language.generations.items()), d.active)
    result = await asyncio.to_thread(
        tuning_eval.compare, d.overlay, sources_of(rt.settings), (language.intents, language.knowledge), key,
        reviewed_intents, reviewed_knowledge)
    return {"active": d.active, "pending": d.pending, "reviewed": {"intents": len(reviewed_intents),
            "knowledge": len(reviewed_knowledge)}, **result}


async def problems(rt: Runtime) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    d = await tuning.draft(rt.db)

    def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="tuning-check-") as tmp:
            return tuning_data.problems(tuning_data.materialize(d.overlay, sources_of(rt.settings), Path(tmp) / "d"))

    return await asyncio.to_thread(run)


async def publish_checked(rt: Runtime, user: str, note: str, now: Any, expected: int | None) -> int:
    """Publish the draft unless its files do not load (a server would keep the old version);
    conflicts and duplicates are the operator's call (shown beside the evaluation)."""
    found = await problems(rt)
    if found["error"]:
        raise tuning.TuningError(f"the draft's data does not load: {found['error']}")
    return await tuning.publish(rt.db, user, note, now, expected)


def export_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            archive.writestr(name, text)
    return buffer.getvalue()


async def export(rt: Runtime, what: str) -> web.Response:
    if what == "draft":
        overlay = (await tuning.draft(rt.db)).overlay
    else:
        from bot.language import active_number, overlay_of

        overlay = await overlay_of(rt.db, await active_number(rt.db))
    files = await asyncio.to_thread(tuning_data.export, overlay, sources_of(rt.settings))
    return web.Response(body=export_zip(files), content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="tuning-{what}.zip"'})


# --------------------------------------------------------------------------------------- routes
@route("GET", "/tuning/draft", roles=TUNING_ROLES, summary="The tuning draft", tags=TAGS,
       description="The draft (the active version's overlay plus unpublished changes), which version is "
                   "active and which one this process serves.", response=DRAFT)
async def get_draft(call: Call) -> dict[str, Any]:
    return await draft_json(call.rt)


@route("POST", "/tuning/draft/changes", roles=TUNING_ROLES, summary="Change the draft", tags=TAGS,
       description="Apply changes to the draft, all or none: label a message, add or remove an example, "
                   "a synonym or a lookup word, write or remove a knowledge entry.",
       body=obj({"changes": {"type": "array", "items": CHANGE, "minItems": 1, "maxItems": 500}}, ["changes"]))
async def change_draft(call: Call) -> dict[str, Any]:
    try:
        d = await tuning.change(call.db, call.body["changes"], names(call.rt), user(call), call.now())
    except OverlayError as exc:
        raise bad_request(str(exc), "invalid_change") from None
    return await draft_json(call.rt, d)


@route("POST", "/tuning/draft/discard", roles=TUNING_ROLES, summary="Discard the draft's changes", tags=TAGS)
async def discard_draft(call: Call) -> dict[str, Any]:
    """Throws the unpublished changes away: the draft is the active version again."""
    await tuning.discard(call.db, user(call), call.now())
    return await draft_json(call.rt)


@route("GET", "/tuning/draft/problems", roles=TUNING_ROLES, summary="Conflicts and near-duplicates", tags=TAGS)
async def draft_problems(call: Call) -> dict[str, Any]:
    """What ``intents check`` and ``kb check`` report for the draft: one text under two intents,
    duplicated examples, near-duplicate knowledge phrasings, or a file that does not load."""
    return await problems(call.rt)


@route("GET", "/tuning/intents/{intent}", roles=TUNING_ROLES, summary="One intent's data in the draft",
       tags=TAGS, path_params={"intent": {"type": "string", "maxLength": 32}})
async def get_intent(call: Call) -> dict[str, Any]:
    """Examples, synonyms and lookup lists of one intent as the draft has them."""
    intent = call.path["intent"]
    if intent not in names(call.rt):
        raise not_found(f"no intent {intent!r}")
    d = await tuning.draft(call.db)
    return await asyncio.to_thread(tuning_data.intent_view, d.overlay, sources_of(call.rt.settings), intent)


@route("GET", "/tuning/entries", roles=TUNING_ROLES, summary="Knowledge entries in the draft", tags=TAGS,
       query=obj({"q": STR}))
async def list_entries(call: Call) -> dict[str, Any]:
    """The draft's knowledge entries (``q``: only those whose id, question or phrasings contain it)."""
    d = await tuning.draft(call.db)
    entries = await asyncio.to_thread(tuning_data.draft_entries, d.overlay, sources_of(call.rt.settings))
    q = call.query.get("q", "").strip()
    items = [e.to_dict() for e in entries if not q or q in e.id or any(q in p for p in e.phrasings)]
    return {"items": items, "changed": sorted(d.overlay["entries"])}


@route("GET", "/tuning/review", roles=TUNING_ROLES, summary="The review queue", tags=TAGS,
       query=obj({"kind": {"type": "string", "enum": ["intent", "knowledge"]},
                  "limit": {"type": "integer", "minimum": 1, "maximum": 500}}), response=REVIEW_QUEUE)
async def review_queue(call: Call) -> dict[str, Any]:
    """Poorly understood messages (kind intent) or poorly answered questions (kind knowledge),
    grouped by similarity, largest group first."""
    kind = call.query.get("kind", "intent")
    groups = await queue(call.rt, kind)
    return {"kind": kind, "groups": [g.to_dict() for g in groups[: call.query.get("limit", 100)]]}


@route("POST", "/tuning/review", roles=TUNING_ROLES, summary="Decide a reviewed group", tags=TAGS,
       body=obj({"kind": {"type": "string", "enum": ["intent", "knowledge"]},
                 "texts": {"type": "array", "items": STR, "minItems": 1, "maxItems": 500},
                 "action": {"type": "string", "enum": ["intent", "noise", "entry", "phrasing"]},
                 "intent": {"type": "string", "maxLength": 32}, "entry": ENTRY, "entry_id": STR,
                 "version": {"type": "string", "maxLength": 40}},
                ["kind", "texts", "action"]))
async def decide_review(call: Call) -> dict[str, Any]:
    """One decision for every text of a group: label with an intent (training examples in the draft),
    noise, a new knowledge entry, or new phrasings of an existing entry. ``version``: the group's
    version as the queue gave it; when the group holds other texts now (new messages joined it, or
    it was decided meanwhile) the answer is 409 ``review_changed`` naming the field (``version``, or
    ``texts`` when one is not in the group), and nothing is decided: reload the queue."""
    b = call.body
    if b.get("version"):
        try:
            tuning_review.check_seen(await queue(call.rt, b["kind"]), b["texts"], b["version"])
        except tuning_review.GroupChanged as exc:
            raise conflict(exc.message, "review_changed", {"field": exc.field}) from None
    try:
        decided = await tuning.resolve(
            call.db, b["kind"], b["texts"], b["action"], user(call), call.now(), intents=names(call.rt),
            intent=b.get("intent"), entry=b.get("entry"), entry_id=b.get("entry_id"),
            current_entry=lambda entry_id: entry_of(call.rt, entry_id))
    except (tuning.TuningError, OverlayError) as exc:
        raise bad_request(str(exc), "invalid_decision") from None
    return {"decided": decided, "draft": await draft_json(call.rt)}


@route("GET", "/tuning/evaluation", roles=TUNING_ROLES, summary="The draft beside the published version",
       tags=TAGS)
async def get_evaluation(call: Call) -> dict[str, Any] | web.Response:
    """Per-intent precision, recall and F1, confusion matrix and confidence histogram, and the
    knowledge figures, for the draft and for the published version, on the evaluation sets and on
    everything reviewed so far. Training the draft takes seconds (done in a worker thread): when
    the figures are not ready within a few seconds the answer is 202 ``{"status": "computing"}``
    with ``Retry-After``, the work goes on, and asking again returns them."""
    rt = call.rt
    task = _evaluations.get(id(rt))
    if task is None:
        task = asyncio.ensure_future(evaluation(rt))
        _evaluations[id(rt)] = task
        task.add_done_callback(_forget_evaluation(id(rt)))
    done, _ = await asyncio.wait({task}, timeout=EVALUATION_WAIT)
    if not done:
        return web.json_response({"status": "computing"}, status=202, headers={"Retry-After": "2"})
    return task.result()


EVALUATION_WAIT = 5.0  # seconds an API call waits for the figures before answering 202
# One evaluation in progress per application; a finished one is forgotten (computing the same
# draft again is cheap: the compared models are cached by their version).
_evaluations: dict[int, asyncio.Future[dict[str, Any]]] = {}


def _forget_evaluation(key: int) -> Any:
    def forget(task: asyncio.Future[dict[str, Any]]) -> None:
        if _evaluations.get(key) is task:
            del _evaluations[key]
        if not task.cancelled():
            task.exception()  # retrieved here when no caller is waiting any more

    return forget


@route("POST", "/tuning/publish", roles=TUNING_ROLES, summary="Publish the draft", tags=TAGS,
       body=obj({"confirm": {"const": True}, "note": {"type": "string", "maxLength": 500},
                 "expected_active": VERSION_NUMBER}, ["confirm"]))
async def publish(call: Call) -> dict[str, Any]:
    """Publish the draft as a new version; every server process serves it within seconds.
    ``expected_active``: the active version the caller evaluated against (0: none); a different
    one is a 409."""
    try:
        number = await publish_checked(call.rt, user(call), call.body.get("note", ""), call.now(),
                                       call.body.get("expected_active"))
    except tuning.TuningError as exc:
        raise conflict(str(exc)) from None
    return {"version": number}


@route("POST", "/tuning/rollback", roles=TUNING_ROLES, summary="Roll back to an earlier version", tags=TAGS,
       body=obj({"to": VERSION_NUMBER}))
async def rollback(call: Call) -> dict[str, Any]:
    """Serve an earlier version again (default: the one published before the active one; 0: the
    data files as they are), recorded as a new version."""
    try:
        number = await tuning.rollback(call.db, user(call), call.now(), (call.body or {}).get("to"))
    except tuning.TuningError as exc:
        raise conflict(str(exc)) from None
    return {"version": number}


@route("GET", "/tuning/versions", roles=TUNING_ROLES, summary="Published versions", tags=TAGS)
async def list_versions(call: Call) -> dict[str, Any]:
    """Every published version, newest first: who published it, when, and what it changes."""
    d = await tuning.draft(call.db)
    return {"active": d.active, "items": [
        {"version": v.id, "published_by": v.published_by, "published_at": v.published_at, "note": v.note,
         "rollback_of": v.rollback_of, "summary": tuning_data.summary(v.overlay)}
        for v in await tuning.versions(call.db)]}


@route("GET", "/tuning/export", roles=TUNING_ROLES, summary="The changed data files (zip)", tags=TAGS,
       query=obj({"what": {"type": "string", "enum": ["active", "draft"]}}))
async def export_files(call: Call) -> web.Response:
    """A zip of the data files the version (or the draft) changes, ready to commit: ``intents/*.yml``
    (paths relative to the intents data folder) and ``knowledge/*.yml`` (relative to the entries folder)."""
    return await export(call.rt, call.query.get("what", "active"))
