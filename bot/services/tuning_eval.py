"""The draft beside the published version: intent figures (per-intent precision, recall and F1,
confusion matrix, confidence histogram; :mod:`intents.evaluate`) and knowledge figures
(:mod:`knowledge.evaluation`) on the project's evaluation sets and on every text reviewed so far.

Training the draft takes seconds, so :func:`compare` is synchronous and meant for a worker thread
(the console and the API call it through ``asyncio.to_thread``); one comparison runs at a time per
process and results are kept by the draft's content, so a second look costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.services import tuning_data
from intents import evalsets
from intents.engine import IntentEngine
from intents.evaluate import Report, evaluate
from knowledge.base import KnowledgeBase
from knowledge.evaluation import LabelledQuestion, load_questions
from knowledge.evaluation import evaluate as kb_evaluate

INTENT_SETS = ("written", "split")  # packaged held-out sets (the real-text sets need ../shared/data)
KNOWLEDGE_SETS = {"dev": "dev.yml", "residents_dev": "residents_dev.yml"}
KNOWLEDGE_EVAL_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "eval"
KNOWLEDGE_FIGURES = ("right_entry", "resolved", "top1", "false_unknown", "unknown_recall", "confident_wrong")
MAX_ERRORS = 30

_lock = threading.Lock()
_cache: dict[str, dict[str, Any]] = {}


def _intent_report(report: Report) -> dict[str, Any]:
    data = report.to_dict()
    data["misclassified"] = data["misclassified"][:MAX_ERRORS]
    return data


def _knowledge_figures(kb: KnowledgeBase, questions: Sequence[LabelledQuestion]) -> dict[str, Any]:
    report = kb_evaluate(kb, questions)
    figures: dict[str, Any] = {k: getattr(report, k) for k in KNOWLEDGE_FIGURES}
    figures["n"] = report.answerable + report.unanswerable
    figures["misses"] = [{"question": m.question, "expected": m.expected, "decision": m.decision,
                          "top": m.top[0][0] if m.top else None} for m in report.misses[:MAX_ERRORS]]
    return figures


def _side(engine: IntentEngine, kb: KnowledgeBase, reviewed_intents: Sequence[tuple[str, str]],
          reviewed_questions: Sequence[LabelledQuestion]) -> dict[str, Any]:
    intents: dict[str, Any] = {}
    for result in evalsets.run(engine, list(INTENT_SETS)):
        intents[result.name] = _intent_report(result.report)
    if reviewed_intents:
        texts = [t for t, _ in reviewed_intents]
        results = engine.classify_many(texts)
        report = evaluate(texts, [label for _, label in reviewed_intents], [c.intent for c in results],
                          [c.confidence for c in results], labels=engine.intents)
        intents["reviewed"] = _intent_report(report)
        intents["reviewed"]["predictions"] = [
            {"text": t, "intent": c.intent, "confidence": round(c.confidence, 3)} for t, c in zip(texts, results,
                                                                                                   strict=True)]
    knowledge: dict[str, Any] = {}
    for name, file in KNOWLEDGE_SETS.items():
        knowledge[name] = _knowledge_figures(kb, load_questions(KNOWLEDGE_EVAL_DIR / file))
    if reviewed_questions:
        knowledge["reviewed"] = _knowledge_figures(kb, reviewed_questions)
        knowledge["reviewed"]["answers"] = [
            {"question": q.text, "decision": (a := kb.answer(q.text)).kind,
             "entry": a.hits[0].entry.id if a.hits else None} for q in reviewed_questions]
    return {"intents": intents, "knowledge": knowledge}


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest()


def compare(draft: dict[str, Any], sources: tuning_data.Sources, published: tuple[IntentEngine, KnowledgeBase],
            published_key: Any, reviewed_intents: Sequence[tuple[str, str]],
            reviewed_knowledge: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    """Figures for the draft (trained here from the files plus ``draft``) and for the published
    models (``published``, identified by ``published_key`` for the cache), on the same sets."""
    questions = [LabelledQuestion(t, e) for t, e in reviewed_knowledge]
    with _lock:
        reviews = (list(reviewed_intents), list(reviewed_knowledge))
        draft_key = _digest("draft", tuning_data.normalized(draft), reviews)
        pub_key = _digest("published", published_key, reviews)
        if draft_key not in _cache:
            with tempfile.TemporaryDirectory(prefix="tuning-eval-") as tmp:
                files = tuning_data.materialize(draft, sources, Path(tmp) / "draft")
                engine = IntentEngine.load(files.intents, labelled=files.labelled)
                kb = KnowledgeBase.load(files.knowledge)
                _cache[draft_key] = _side(engine, kb, reviewed_intents, questions)
        if pub_key not in _cache:
            _cache[pub_key] = _side(published[0], published[1], reviewed_intents, questions)
        result = {"draft": _cache[draft_key], "published": _cache[pub_key]}
        while len(_cache) > 8:
            _cache.pop(next(iter(_cache)))
        return result
