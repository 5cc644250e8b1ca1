"""Evaluate retrieval on labelled questions: ranking quality and the answer / don't-know decision.

Evaluation files (``kb eval FILE``):

* YAML grouped by entry id, ``none`` for questions without an answer::

      proof-residence: [孩子上学要住址证明上哪开, ...]
      none: [明天天气怎么样, ...]

* the same grouped by style (figures are then also reported per style)::

      elderly:
        heating-not-warm: [那个暖气啊一点都不热 屋里冻死了 找谁呀]
        none: [...]

* YAML list of ``{question: ..., expected: <entry id> | none}``;
* CSV with columns ``question,expected`` (header row required).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from knowledge.errors import KnowledgeDataError

if TYPE_CHECKING:  # retrieval is heavy to import; the CLI only needs the constants here
    from knowledge.base import KnowledgeBase

DEFAULT_EVAL_FILE = Path(__file__).parent / "eval" / "questions.yml"
NONE_LABELS = frozenset({"none", "null", "", "-"})


@dataclass(frozen=True)
class LabelledQuestion:
    text: str
    expected: str | None  # entry id, or None when the knowledge base has no answer
    style: str | None = None  # section of a file grouped by style (rambling, elderly, ...)


def _label(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in NONE_LABELS else text


def _grouped(path: Path, doc: dict[Any, Any], style: str | None) -> list[LabelledQuestion]:
    out: list[LabelledQuestion] = []
    where = f"{style}: " if style else ""
    for label, questions in doc.items():
        if not isinstance(questions, list):
            raise KnowledgeDataError(path, f"{where}questions for {label!r} must be a list")
        for q in questions:
            if not isinstance(q, str) or not q.strip():
                raise KnowledgeDataError(path, f"{where}question under {label!r} must be non-empty text: {q!r}")
            out.append(LabelledQuestion(q.strip(), _label(label), style))
    return out


def _from_yaml(path: Path, doc: Any) -> list[LabelledQuestion]:
    out: list[LabelledQuestion] = []
    if isinstance(doc, dict):
        if doc and all(isinstance(v, dict) for v in doc.values()):  # grouped by style
            for style, section in doc.items():
                out.extend(_grouped(path, section, str(style)))
        else:
            out.extend(_grouped(path, doc, None))
    elif isinstance(doc, list):
        for i, item in enumerate(doc, 1):
            if not isinstance(item, dict):
                raise KnowledgeDataError(path, f"item {i} must be a mapping with 'question' and 'expected'")
            text = item.get("question", item.get("q"))
            if not isinstance(text, str) or not text.strip():
                raise KnowledgeDataError(path, f"item {i} has no 'question' text")
            out.append(LabelledQuestion(text.strip(), _label(item.get("expected", item.get("id")))))
    else:
        raise KnowledgeDataError(path, "expected a mapping of entry id to questions, or a list of items")
    return out


def _from_csv(path: Path, text: str) -> list[LabelledQuestion]:
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "question" not in fields or "expected" not in fields:
        raise KnowledgeDataError(path, "CSV needs a header with 'question' and 'expected' columns", 1)
    out: list[LabelledQuestion] = []
    for row in reader:
        norm = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
        if not norm["question"].strip():
            raise KnowledgeDataError(path, "empty question", reader.line_num)
        out.append(LabelledQuestion(norm["question"].strip(), _label(norm["expected"])))
    return out


def load_questions(path: Path) -> list[LabelledQuestion]:
    """Read an evaluation file (YAML or CSV); errors name the file (and line when known)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise KnowledgeDataError(path, "not UTF-8 text") from None
    except OSError as exc:
        raise KnowledgeDataError(path, f"cannot read file: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".csv":
        questions = _from_csv(path, text)
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise KnowledgeDataError(path, "invalid YAML", mark.line + 1 if mark else None) from None
        questions = _from_yaml(path, doc)
    if not questions:
        raise KnowledgeDataError(path, "no questions found")
    return questions


@dataclass
class Miss:
    question: str
    expected: str | None
    decision: str
    top: list[tuple[str, float]]
    style: str | None = None


@dataclass
class _Outcome:
    """What happened to one question."""

    question: LabelledQuestion
    ids: list[str]  # search ranking, best first (top 10)
    decision: str
    offered: list[str]  # the decision's entries (the answer first, or the choices)
    sensitive_offered: bool  # a sensitive entry answered or offered that the question is not about
    top: list[tuple[str, float]]  # the best three hits with their scores


@dataclass
class EvalReport:
    answerable: int
    unanswerable: int
    top1: float  # best hit is the expected entry (answerable questions)
    recall_at_3: float
    mrr: float  # over the top 10
    answered_correctly: float  # decision 'answer' with the right entry (answerable)
    right_entry: float  # the reply gives the right entry: the answer, or the first of the choices
    resolved: float  # answered correctly, or the right entry among the offered choices
    false_unknown: float  # answerable questions answered "don't know"
    unknown_precision: float  # of the questions answered "don't know", share that truly have no answer
    unknown_recall: float  # of the questions without an answer, share answered "don't know"
    confident_wrong: int  # decision 'answer' with a wrong entry (any question)
    confident_wrong_rate: float  # confident_wrong over all questions
    sensitive_offered: int  # a sensitive entry (death, funeral) answered or offered to another question
    decisions: dict[str, int] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)
    by_style: dict[str, EvalReport] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"questions: {self.answerable} answerable, {self.unanswerable} without answer",
            f"top-1 accuracy:        {self.top1:.3f}",
            f"recall@3:              {self.recall_at_3:.3f}",
            f"MRR@10:                {self.mrr:.3f}",
            f"answered correctly:    {self.answered_correctly:.3f}",
            f"right entry given (answer, or first choice): {self.right_entry:.3f}",
            f"resolved (answer or right choice offered): {self.resolved:.3f}",
            f"false don't-know:      {self.false_unknown:.3f}",
            f"don't-know precision:  {self.unknown_precision:.3f}",
            f"don't-know recall:     {self.unknown_recall:.3f}",
            f"confident wrong answers: {self.confident_wrong} ({self.confident_wrong_rate:.1%} of all questions)",
            f"sensitive entries offered to other questions: {self.sensitive_offered}",
            "decisions: " + ", ".join(f"{k}={v}" for k, v in sorted(self.decisions.items())),
        ]
        return "\n".join(lines)

    def style_table(self) -> str:
        """One line per style: the figures that matter most, side by side."""
        head = f"{'style':<12} {'n':>4} {'none':>4}  right  unknown  top-1  declined  wrong"
        lines = [head]
        for style, r in [*self.by_style.items(), ("all", self)]:
            lines.append(
                f"{style:<12} {r.answerable:>4} {r.unanswerable:>4}  {r.right_entry:.3f}  {r.false_unknown:.3f}"
                f"    {r.top1:.3f}  {r.unknown_recall:.3f}     {r.confident_wrong}"
            )
        return "\n".join(lines)


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _report(outcomes: Sequence[_Outcome], misses: bool = True) -> EvalReport:
    answerable = [o for o in outcomes if o.question.expected is not None]
    unanswerable = [o for o in outcomes if o.question.expected is None]
    top1 = rec3 = answered_ok = right = resolved = false_unknown = 0
    rr = 0.0
    pred_unknown = true_unknown = confident_wrong = sensitive = 0
    decisions: dict[str, int] = {}
    missed: list[Miss] = []
    for o in outcomes:
        q, ids, offered = o.question, o.ids, o.offered
        decisions[o.decision] = decisions.get(o.decision, 0) + 1
        sensitive += o.sensitive_offered
        if o.decision == "unknown":
            pred_unknown += 1
            true_unknown += q.expected is None
        if q.expected is None:
            wrong = o.decision != "unknown"
            confident_wrong += o.decision == "answer"
        else:
            top1 += bool(ids) and ids[0] == q.expected
            rec3 += q.expected in ids[:3]
            rr += 1.0 / (ids.index(q.expected) + 1) if q.expected in ids else 0.0
            ok = o.decision == "answer" and offered[0] == q.expected
            answered_ok += ok
            right += bool(offered) and offered[0] == q.expected
            resolved += ok or (o.decision == "choices" and q.expected in offered)
            false_unknown += o.decision == "unknown"
            confident_wrong += o.decision == "answer" and not ok
            wrong = not offered or offered[0] != q.expected
        if wrong and misses:
            missed.append(Miss(q.text, q.expected, o.decision, o.top, q.style))
    n = len(answerable)
    return EvalReport(
        answerable=n,
        unanswerable=len(unanswerable),
        top1=_ratio(top1, n),
        recall_at_3=_ratio(rec3, n),
        mrr=round(rr / n, 4) if n else 0.0,
        answered_correctly=_ratio(answered_ok, n),
        right_entry=_ratio(right, n),
        resolved=_ratio(resolved, n),
        false_unknown=_ratio(false_unknown, n),
        unknown_precision=_ratio(true_unknown, pred_unknown),
        unknown_recall=_ratio(true_unknown, len(unanswerable)),
        confident_wrong=confident_wrong,
        confident_wrong_rate=_ratio(confident_wrong, len(outcomes)),
        sensitive_offered=sensitive,
        decisions=decisions,
        misses=missed,
    )


def evaluate(kb: KnowledgeBase, questions: Sequence[LabelledQuestion]) -> EvalReport:
    """Run every question through ``search`` and ``answer`` and compute the figures (per style too)."""
    outcomes: list[_Outcome] = []
    for q in questions:
        hits = kb.search(q.text, k=10)
        decision = kb.answer(q.text)
        offered = [h.entry.id for h in decision.hits]
        sensitive = any(h.entry.sensitive and h.entry.id != q.expected for h in decision.hits)
        top = [(h.entry.id, h.score) for h in hits[:3]]
        outcomes.append(_Outcome(q, [h.entry.id for h in hits], decision.kind, offered, sensitive, top))
    report = _report(outcomes)
    styles = list(dict.fromkeys(q.style for q in questions if q.style))
    report.by_style = {
        style: _report([o for o in outcomes if o.question.style == style], misses=False) for style in styles
    }
    return report
