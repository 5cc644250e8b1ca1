"""The review queue of the tuning loop: messages the bot understood poorly and questions the
knowledge base could not answer well, grouped by similarity so one decision covers many.

Intent side (``messages``, the last :data:`WINDOW` inbound texts): ``fallback`` (not understood),
``low`` (confidence under the engine's threshold), ``clarified`` (the resident answered a clarifying
question: the chosen intent is the suggestion) and ``handoff`` (the resident's next message asked for
a person: the bot's answer did not help, the nearest record of a staff correction we have).
Knowledge side (``knowledge_queries``): ``unknown`` (不知道), ``not_chosen`` (choices offered, none
taken) and ``unhelpful`` (rated 没用). Texts already decided (``tuning_reviews``) or labelled in the
draft are left out.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import or_, select

from bot.storage.db import Database
from bot.storage.models import KnowledgeQuery, Message
from bot.storage.tuning_models import TuningReview
from intents.tokens import cut, normalize

WINDOW = 5000  # the most recent inbound messages / questions looked at
SIMILAR = 72  # a text joins a group when its similarity to the group's first text reaches this (0..100)
CHOICE = re.compile(r"^\s*[1-9]\s*[.。、)]?\s*$")
INTENT_REASONS = {"fallback": "没听懂", "low": "把握不大", "clarified": "反问后选择", "handoff": "随后转人工"}
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


def _key(text: str) -> str:
    return " ".join(text.split())[:500]


def _similarity(a: str, b: str, ta: list[str], tb: list[str]) -> float:
    score = fuzz.ratio(a, b)
    if min(len(ta), len(tb)) >= 2:
        score = max(score, fuzz.token_set_ratio(" ".join(ta), " ".join(tb)))
    return float(score)


def group(items: Iterable[Item], threshold: float = SIMILAR) -> list[Group]:
    """Greedy grouping, most frequent text first: a text joins the first group whose first text is
    similar enough (character ratio, or token-set overlap of the segmented words)."""
    ordered = sorted(items, key=lambda i: (-i.count, i.text))
    groups: list[tuple[str, list[str], list[Item]]] = []
    for item in ordered:
        norm = normalize(item.text)
        tokens = [t for t in cut(norm, normalized=True) if t.strip() and not re.fullmatch(r"\W+", t)]
        for head, head_tokens, members in groups:
            if _similarity(norm, head, tokens, head_tokens) >= threshold:
                members.append(item)
                break
        else:
            groups.append((norm, tokens, [item]))
    out = [Group(hashlib.sha1(members[0].text.encode()).hexdigest()[:12], members) for _, _, members in groups]
    out.sort(key=lambda g: -g.count)
    return out


async def _decided(db: Database, kind: str) -> set[str]:
    async with db.session() as session:
        return set((await session.execute(select(TuningReview.text).where(TuningReview.kind == kind))).scalars())


async def intent_queue(db: Database, threshold: float, skip: Sequence[str] = (), window: int = WINDOW) -> list[Group]:
    """Groups of poorly understood messages (see the module's docstring)."""
    async with db.session() as session:
        rows = (await session.execute(
            select(Message.id, Message.resident_id, Message.content, Message.intent, Message.confidence)
            .where(Message.direction == "in", Message.msg_type.in_(("text", "voice")), Message.content.is_not(None))
            .order_by(Message.id.desc()).limit(window)
        )).all()
    done = await _decided(db, "intent") | {_key(t) for t in skip}
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
            if nxt is not None and nxt.intent == "handoff" and m.intent != "handoff":
                reasons.append("handoff")
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
    return group(items.values())


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
    return group(items.values())
