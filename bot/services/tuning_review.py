"""The review queue of the tuning loop: messages the bot understood poorly and questions the
knowledge base could not answer well, grouped by similarity so one decision covers many.

Intent side (``messages``, the last :data:`WINDOW` inbound texts): ``fallback`` (not understood),
``low`` (confidence under the engine's threshold), ``clarified`` (the resident answered a clarifying
question: the chosen intent is the suggestion), ``handoff`` (the resident's next message asked for
a person: the bot's answer did not help) and ``staff`` (staff made a ticket from the conversation
within two hours after a message the bot did not take for a report: suggestion ``complaint``).
Knowledge side (``knowledge_queries``): ``unknown`` (不知道), ``not_chosen`` (choices offered, none
taken) and ``unhelpful`` (rated 没用). Texts already decided (``tuning_reviews``) or labelled in the
draft are left out.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process
from scipy import sparse
from sqlalchemy import or_, select

from bot.logmask import mask_phones
from bot.storage.db import Database
from bot.storage.models import KnowledgeQuery, Message, Ticket
from bot.storage.tuning_models import TuningReview
from intents.tokens import cut, normalize

WINDOW = 5000  # the most recent inbound messages / questions looked at
MAX_TEXTS = 2000  # distinct texts grouped (the most frequent): a 2000 x 2000 similarity matrix
SIMILAR_QUESTIONS = 85  # stricter for questions: one group becomes one entry's phrasings
SIMILAR = 72  # a text joins a group when its similarity to the group's first text reaches this (0..100)
CHOICE = re.compile(r"^\s*[1-9]\s*[.。、)]?\s*$")
INTENT_REASONS = {"fallback": "没听懂", "low": "把握不大", "clarified": "反问后选择", "handoff": "随后转人工",
                  "staff": "工作人员改建工单"}
STAFF_WINDOW = timedelta(hours=2)  # a message this long before staff made a ticket for the resident
KNOWLEDGE_REASONS = {"unknown": "不知道", "not_chosen": "未选选项", "unhelpful": "评为没用"}


@dataclass
class Item:
    text: str
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    bot: Counter[str] = field(default_factory=Counter)  # what the bot made of it (intent / entry)
    suggestions: Counter[str] = field(default_factory=Counter)
    confidence: float | None = None


@dataclass
class Group:
    id: str
    items: list[Item]

    @property
    def count(self) -> int:
        return sum(i.count for i in self.items)

    @property
    def version(self) -> str:
        """The texts the group holds, as a short hash: a decision names the version the operator
        saw, and is refused when the group holds other texts now (see :func:`check_seen`)."""
        return hashlib.sha1("\n".join(sorted(i.text for i in self.items)).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        reasons: Counter[str] = Counter()
        bot: Counter[str] = Counter()
        suggestions: Counter[str] = Counter()
        for i in self.items:
            reasons.update(i.reasons)
            bot.update(i.bot)
            suggestions.update(i.suggestions)
        return {
            "id": self.id,
            "version": self.version,
            "text": self.items[0].text,
            "count": self.count,
            "reasons": dict(reasons.most_common()),
            "bot": [k for k, _ in bot.most_common(3)],
            "suggestion": suggestions.most_common(1)[0][0] if suggestions else None,
            "items": [
                {"text": i.text, "count": i.count, "reasons": sorted(i.reasons),
                 "bot": i.bot.most_common(1)[0][0] if i.bot else None,
                 "confidence": None if i.confidence is None else round(i.confidence, 3)}
                for i in self.items
            ],
        }


class GroupChanged(Exception):
    """A decision on a group that is not in the queue as the operator saw it: ``field`` names the
    request's field at fault (``version``: no group of that version now; ``texts``: one not in it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_seen(groups: Sequence[Group], texts: Sequence[str], version: str) -> Group:
    """The group of ``version`` in the queue now, which holds every one of ``texts``. Between loading
    the queue and deciding, new messages can join a group, regroup it under another first text, or
    another operator can decide it; a decision then would not be the one the operator meant."""
    current = next((g for g in groups if g.version == version), None)
    if current is None:
        raise GroupChanged("version", "the group changed since it was shown (texts joined or left it, "
                                      "or it was decided): reload the review queue")
    shown = {_key(t) for t in texts if t.strip()}
    if not shown <= {i.text for i in current.items}:
        raise GroupChanged("texts", "texts that are not in the group of this version")
    return current


def _key(text: str) -> str:
    """A text as reviewed, decided and learnt from: spaces collapsed, phone numbers masked (they
    reach no page, no training example and no exported file)."""
    return mask_phones(" ".join(text.split()))[:500]


def _jaccard(tokens: Sequence[Sequence[str]]) -> np.ndarray:
    """Word-set overlap (intersection over union) of every pair; 0 for texts of fewer than two words."""
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for r, words in enumerate(tokens):
        for w in set(words) if len(set(words)) >= 2 else ():
            rows.append(r)
            cols.append(vocabulary.setdefault(w, len(vocabulary)))
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                               shape=(len(tokens), max(1, len(vocabulary))))
    inter = (matrix @ matrix.T).toarray()
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    union = sizes[:, None] + sizes[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def group(items: Iterable[Item], threshold: float = SIMILAR, limit: int = MAX_TEXTS) -> list[Group]:
    """Leader grouping, most frequent text first: a text joins the group of the first (most frequent)
    text similar enough to it — character ratio, or, when both have two words or more, the
    overlap (intersection over union) of their segmented words. The ``limit`` most frequent distinct texts are
    grouped (similarities computed as one matrix by rapidfuzz). Synchronous: call it in a thread."""
    ordered = sorted(items, key=lambda i: (-i.count, i.text))[:limit]
    if not ordered:
        return []
    norms = [normalize(i.text) for i in ordered]
    tokens = [[t for t in cut(n, normalized=True) if t.strip() and not re.fullmatch(r"\W+", t)] for n in norms]
    scores = process.cdist(norms, norms, scorer=fuzz.ratio, dtype=np.uint8, workers=1)
    similar = (scores >= threshold) | (_jaccard(tokens) * 100 >= threshold)
    free = np.ones(len(ordered), dtype=bool)
    out = []
    for i in range(len(ordered)):
        if not free[i]:
            continue
        members = np.flatnonzero(similar[i] & free)
        members = members[members >= i]
        free[members] = False
        group_items = [ordered[int(j)] for j in members]
        out.append(Group(hashlib.sha1(ordered[i].text.encode()).hexdigest()[:12], group_items))
    out.sort(key=lambda g: -g.count)
    return out


async def _decided(db: Database, kind: str) -> set[str]:
    async with db.session() as session:
        return set((await session.execute(select(TuningReview.text).where(TuningReview.kind == kind))).scalars())


async def intent_queue(db: Database, threshold: float, skip: Sequence[str] = (), window: int = WINDOW) -> list[Group]:
    """Groups of poorly understood messages (see the module's docstring)."""
    async with db.session() as session:
        tickets = (await session.execute(
            select(Ticket.resident_id, Ticket.created_at).where(Ticket.channel == "console",
                                                                Ticket.resident_id.is_not(None))
            .order_by(Ticket.id.desc()).limit(window)
        )).all()
        rows = (await session.execute(
            select(Message.id, Message.resident_id, Message.content, Message.intent, Message.confidence,
                   Message.created_at)
            .where(Message.direction == "in", Message.msg_type.in_(("text", "voice")), Message.content.is_not(None))
            .order_by(Message.id.desc()).limit(window)
        )).all()
    done = await _decided(db, "intent") | {_key(t) for t in skip}
    made: dict[int, list[datetime]] = {}  # staff made a ticket from the conversation: the bot missed a report
    for resident_id, created_at in tickets:
        if resident_id is not None:
            made.setdefault(resident_id, []).append(created_at)
    by_resident: dict[int, list[Any]] = {}
    for row in reversed(rows):
        by_resident.setdefault(row.resident_id, []).append(row)
    items: dict[str, Item] = {}
    for messages in by_resident.values():
        for n, m in enumerate(messages):
            text = _key(m.content or "")
            if not text or CHOICE.match(text) or text in done:
                continue
            nxt = messages[n + 1] if n + 1 < len(messages) else None
            reasons = []
            suggestion = None
            if m.intent == "fallback":
                reasons.append("fallback")
            elif m.confidence is not None and m.confidence < threshold:
                reasons.append("low")
            if nxt is not None and CHOICE.match(nxt.content or "") and nxt.confidence == 1.0 and nxt.intent:
                reasons.append("clarified")
                suggestion = nxt.intent
            # (a message without an intent answered the bot's own question: not the engine's miss)
            if nxt is not None and nxt.intent == "handoff" and m.intent not in (None, "handoff"):
                reasons.append("handoff")
            if m.intent != "complaint" and any(
                    timedelta(0) <= t - m.created_at <= STAFF_WINDOW for t in made.get(m.resident_id, ())):
                reasons.append("staff")
                suggestion = suggestion or "complaint"
            if not reasons:
                continue
            item = items.setdefault(text, Item(text))
            item.count += 1
            item.reasons.update(reasons)
            if m.intent:
                item.bot[m.intent] += 1
            if suggestion:
                item.suggestions[suggestion] += 1
            item.confidence = m.confidence
    return await asyncio.to_thread(group, list(items.values()))


async def knowledge_queue(db: Database, window: int = WINDOW) -> list[Group]:
    """Groups of questions the knowledge base did not answer well."""
    async with db.session() as session:
        rows = (await session.execute(
            select(KnowledgeQuery.question, KnowledgeQuery.decision, KnowledgeQuery.entry_id,
                   KnowledgeQuery.helpful, KnowledgeQuery.candidates, KnowledgeQuery.score)
            .where(or_(KnowledgeQuery.decision == "unknown",
                       (KnowledgeQuery.decision == "choices") & KnowledgeQuery.entry_id.is_(None),
                       KnowledgeQuery.helpful.is_(False)))
            .order_by(KnowledgeQuery.id.desc()).limit(window)
        )).all()
    done = await _decided(db, "knowledge")
    items: dict[str, Item] = {}
    for row in rows:
        text = _key(row.question)
        if not text or text in done:
            continue
        reason = ("unhelpful" if row.helpful is False else "unknown" if row.decision == "unknown" else "not_chosen")
        item = items.setdefault(text, Item(text))
        item.count += 1
        item.reasons[reason] += 1
        if row.entry_id:
            item.bot[row.entry_id] += 1
        for candidate in (row.candidates or [])[:1]:
            if isinstance(candidate, list | tuple) and candidate:
                item.suggestions[str(candidate[0])] += 1
        item.confidence = row.score
    return await asyncio.to_thread(group, list(items.values()), SIMILAR_QUESTIONS)
