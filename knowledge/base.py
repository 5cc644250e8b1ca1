"""The knowledge base the bot talks to: load content, search it, decide how to answer, reload.

    kb = KnowledgeBase.load()
    kb.answer("咋开居住证明")   # Answer(kind='answer' | 'choices' | 'unknown', hits=[Hit(entry, score), ...])

Reloading builds a complete new index from the files and swaps it in with one assignment, so a
search running in another thread sees either the old or the new content, never a mix; if the
files are malformed the old index keeps serving and ``KnowledgeDataError`` names the file.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from knowledge.entries import DEFAULT_ENTRIES_DIR, Entry, load_entries
from knowledge.index import IndexWeights, Scored, SearchIndex
from knowledge.question import hours_place, plain_question, sentences_of
from knowledge.text import SYNONYMS_PATH, Analyzer, is_function_word, load_synonyms

__all__ = ["Answer", "Entry", "Hit", "KnowledgeBase", "RetrievalConfig"]

AnswerKind = Literal["answer", "choices", "unknown"]


@dataclass(frozen=True)
class RetrievalConfig:
    """Retrieval parameters and the thresholds of the answer / choices / don't-know decision.

    Scores are in 0..1 and do not shrink with the length of the message (see ``knowledge.index``).

    * the knowledge base says it does not know when the best hit's confidence, its score plus
      ``confidence_coverage`` times its coverage, stays below ``respond_threshold`` (a line fitted
      on the development sets: either alone separates answerable from unanswerable questions less
      well), unless the message tells the resident's circumstances beside a question that alone is
      answered (低保怎么申请啊 我家老头子瘫在床上): that question's entries are then offered as choices;
    * the best hit is answered directly when its score reaches ``answer_threshold``, it leads the
      runner-up by ``margin`` (``ambiguous_margin`` when the runner-up covers the question's topic
      words as well: the question does not tell them apart), it covers ``answer_coverage`` of the question's topic words
      (salience-weighted; the request counts more than the story around it) and the question holds
      ``answer_phrasing`` of the topic of one of the entry's phrasings;
    * otherwise the hits that plausibly answer are offered as numbered choices, best first: score at
      least ``choice_floor`` and ``choice_ratio`` of the best, coverage at least ``choice_coverage``.

    An entry marked ``sensitive`` (a death, a funeral) is answered or offered only when the question
    names its topic: one of the entry's tags, after folding everyday names (过世 → 去世). Someone
    asking about a missing parent never gets death procedures as a guess.
    """

    respond_threshold: float = 0.58
    confidence_coverage: float = 0.3
    answer_threshold: float = 0.5
    margin: float = 0.05
    ambiguous_margin: float = 0.15
    choice_floor: float = 0.15
    choice_ratio: float = 0.6
    answer_coverage: float = 0.6
    answer_phrasing: float = 0.5
    choice_coverage: float = 0.3
    max_choices: int = 3
    candidates: int = 12
    k1: float = 1.2
    b: float = 0.75
    weights: IndexWeights = field(default_factory=IndexWeights)
    synonyms_path: Path = SYNONYMS_PATH


@dataclass(frozen=True)
class Hit:
    """An entry and how well it matches the question (0..1, comparable across questions)."""

    entry: Entry
    score: float
    coverage: float = 1.0  # share of the question's topic words the entry covers (0..1)
    phrasing: float = 1.0  # share of the topic of the entry's best phrasing the question holds (0..1)
    match: float = 1.0  # how well one phrasing and the request hold each other's topic (0..1)
    raw: float = 0.0  # the score before it is capped at 1 (the lead of a strong answer is taken on it)
    frame: float = 0.0  # share of the question's frame words (办, 申请, 在哪) the entry's phrasings say
    # 1.0 when a distinguishing word of the request that this entry never says is what a runner-up's
    # own question is about: the question is split between entries, and none answers it whole; also
    # when the entry answers only a narrower question (``SearchIndex._narrower``: 住院了医保能报多少),
    # one kind of what is asked (``_kind_of``: 打疫苗要预约吗 and the HPV vaccine) or names the asked
    # word only in passing (``_in_passing``: 挂号 and the smartphone class)
    split: float = 0.0


@dataclass(frozen=True)
class Answer:
    """The decision for one question.

    ``answer``: reply with ``hits[0]`` (further hits are related entries);
    ``choices``: offer ``hits`` as numbered choices (best first);
    ``unknown``: say so and offer a person; ``hits`` is empty.
    """

    kind: AnswerKind
    hits: list[Hit]
    # ``unknown`` to a question about when a place no entry is about opens (社区医院几点开门, 银行几点
    # 开门): that place, as said, so the reply can say whose hours it does not know.
    elsewhere: str = ""


# The service centre's own names: its hours are the office entries' (社区服务中心几点上班).
CENTRE_NAMES = frozenset({"服务中心", "社区服务中心", "居委会", "中心", "大厅", "办事大厅", "服务大厅", "窗口", "办公室", "社区居委会"})

# The first question of a phrasing that asks two is a form of its own when it names a topic at most
# this many entries name (低保: the four 低保 entries).
RARE_TOPIC = 4

FRAME_LEAD = 0.2  # see KnowledgeBase._decide: a runner-up saying this much more of the request's frame
ANSWERS_KEPT = 2048  # recent questions whose decision is kept (per index: a reload starts afresh)


@dataclass(frozen=True)
class _State:
    entries: tuple[Entry, ...]
    by_id: dict[str, Entry]
    index: SearchIndex
    # Decisions by question text: residents ask the same things in the same words (怎么开居住证明),
    # and a search costs a few hundred microseconds of CPU. Belongs to this index, so a reload or
    # retarget, which swaps the whole state, never serves a decision of the old content.
    answers: dict[str, Answer] = field(default_factory=dict)
    # The hits of the index's remembered rankings, by the ranking's id (see KnowledgeBase.search).
    hits: dict[int, tuple[Sequence[Scored], tuple[Hit, ...]]] = field(default_factory=dict)
    # An entry's phrasings (and the first question of one that asks two: 低保怎么申请 of 低保怎么申请？
    # 要哪些材料？) as ``plain_question`` says them -> the entry's position; a form two entries share
    # is left out. A question said so is answered by that entry directly.
    exact: dict[str, int] = field(default_factory=dict)
    longest_form: int = 0  # characters of the longest of them


def _exact_forms(entries: Sequence[Entry], analyzer: Analyzer) -> dict[str, int]:
    """``_State.exact`` for these entries."""
    said_by: dict[str, set[int]] = {}  # topic word -> the entries whose phrasings say it
    for pos, entry in enumerate(entries):
        for phrasing in entry.phrasings:
            for word in analyzer.analyse(phrasing).topic:
                said_by.setdefault(word, set()).add(pos)
    found: dict[str, int] = {}
    for pos, entry in enumerate(entries):
        for phrasing in entry.phrasings:
            folded = analyzer.fold(phrasing)
            forms = {plain_question(folded)}
            sentences = sentences_of(folded)
            # The first of two questions alone (低保怎么申请 of 低保怎么申请？要哪些材料？), when it
            # names a topic few entries name (a follow-up such as 要哪些材料 or 怎么投放 never does).
            if len(sentences) > 1 and any(
                len(w) > 1 and not is_function_word(w) and len(said_by.get(w, ())) <= RARE_TOPIC
                for w in analyzer.analyse(sentences[0]).topic
            ):
                forms.add(plain_question(sentences[0]))
            for form in forms - {""}:
                found[form] = pos if found.get(form, pos) == pos else -1
    return {form: pos for form, pos in found.items() if pos >= 0}


class KnowledgeBase:
    """Thread-safe: any number of threads may search while one reloads."""

    def __init__(self, entries_dir: Path, config: RetrievalConfig, state: _State) -> None:
        self.entries_dir = entries_dir
        self.config = config
        self._state = state
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, entries_dir: Path | None = None, config: RetrievalConfig | None = None) -> KnowledgeBase:
        """Load every entry file under ``entries_dir`` (default: the packaged entries)."""
        directory = Path(entries_dir) if entries_dir is not None else DEFAULT_ENTRIES_DIR
        config = config or RetrievalConfig()
        return cls(directory, config, cls._build(directory, config))

    @classmethod
    def from_entries(cls, entries: list[Entry], config: RetrievalConfig | None = None) -> KnowledgeBase:
        """An in-memory knowledge base (imports, checks, benchmarks); ``reload`` re-reads nothing."""
        config = config or RetrievalConfig()
        return cls(DEFAULT_ENTRIES_DIR, config, cls._state_for(list(entries), config))

    @staticmethod
    def _state_for(entries: list[Entry], config: RetrievalConfig) -> _State:
        analyzer = Analyzer(load_synonyms(config.synonyms_path))
        index = SearchIndex(
            entries, analyzer, weights=config.weights, candidates=config.candidates, k1=config.k1, b=config.b
        )
        exact = _exact_forms(entries, analyzer)
        longest = max(map(len, exact), default=0)
        return _State(tuple(entries), {e.id: e for e in entries}, index, exact=exact, longest_form=longest)

    @classmethod
    def _build(cls, directory: Path, config: RetrievalConfig) -> _State:
        return cls._state_for(load_entries(directory), config)

    def reload(self) -> None:
        """Rebuild from the files and swap atomically; on error keep serving the old index."""
        with self._reload_lock:
            state = self._build(self.entries_dir, self.config)  # raises KnowledgeDataError
            self._state = state

    def retarget(self, entries_dir: Path) -> None:
        """Rebuild from another entries folder and serve it from now on (the old index and folder
        stay on error)."""
        with self._reload_lock:
            state = self._build(entries_dir, self.config)
            self.entries_dir = entries_dir
            self._state = state

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self._state.entries

    def __len__(self) -> int:
        return len(self._state.entries)

    def get(self, entry_id: str) -> Entry | None:
        return self._state.by_id.get(entry_id)

    def search(self, text: str, k: int = 3) -> list[Hit]:
        """The ``k`` best entries for ``text``, best first, with scores in 0..1."""
        state = self._state  # one read: the whole search uses one consistent index
        ranked = state.index.ranked(text, k)
        # The index remembers a ranking per analysed question; its hits are made once (the entry
        # holds the ranking, so its id is not reused while it is kept).
        known = state.hits.get(id(ranked))
        if known is None or known[0] is not ranked:
            if len(state.hits) >= ANSWERS_KEPT:
                state.hits.clear()
            known = state.hits[id(ranked)] = (ranked, self._hits(state, ranked))
        return list(known[1])

    @staticmethod
    def _hits(state: _State, ranked: Sequence[Scored]) -> tuple[Hit, ...]:
        return tuple(
            Hit(
                state.index.entries[s.position],
                round(s.score, 4),
                round(s.coverage, 4),
                round(s.features.get("phrasing", 0.0), 4),
                round(s.features.get("phrasing_match", 0.0), 4),
                round(s.features.get("raw", s.score), 4),
                round(s.features.get("frame", 0.0), 4),
                s.features.get("split", 0.0),
            )
            for s in ranked
        )

    def _names_topic(self, entry: Entry, text: str) -> bool:
        """Whether the question itself names the topic of a sensitive entry (one of its tags)."""
        analyzer = self._state.index.analyzer
        folded = analyzer.fold(text)
        return any(analyzer.fold(tag) in folded for tag in entry.tags)

    def answer(self, text: str) -> Answer:
        """Decide between answering, offering choices and saying "don't know"."""
        state = self._state
        known = state.answers.get(text)
        if known is None:
            known = self._decide(text)
            if len(state.answers) >= ANSWERS_KEPT:
                state.answers.clear()  # simpler than an LRU, and rare: the questions asked repeat
            state.answers[text] = known
        return Answer(known.kind, list(known.hits), known.elsewhere)  # the caller's own list

    def _hours_place(self, text: str) -> tuple[str, str] | None:
        """(the place as said, its head word) of a question asking when a place other than the
        service centre opens; None otherwise (社区几点开门, 周六几点上班: the centre's own hours)."""
        analyzer = self._state.index.analyzer
        before = hours_place(analyzer.fold(text))
        if not before:
            return None
        words = [w for w in analyzer.analyse(before).topic if w not in CENTRE_NAMES and not is_function_word(w)]
        if not words:
            return None
        head = words[-1]
        end = before.rfind(head)
        return (before[: end + len(head)] if end >= 0 else before), head

    def _said_as(self, text: str) -> Entry | None:
        """The entry whose phrasing the question is, said plainly (``plain_question``), as written or
        with its typos repaired (低报怎么申请); None when it is no entry's phrasing."""
        state = self._state
        analyzer, lexicon = state.index.analyzer, state.index.lexicon
        folded = analyzer.fold(text)
        plain = plain_question(folded)
        position = state.exact.get(plain)
        # (a repair keeps the length but for a joined 登个记 or a folded name: a few characters)
        if position is None and len(plain) <= state.longest_form + 4:
            repaired = lexicon.correct(lexicon.join_split(folded))
            if repaired != folded:
                position = state.exact.get(plain_question(analyzer.fold(repaired)))
        return None if position is None else state.entries[position]

    def _asked_alone(self, text: str) -> Answer | None:
        """Choices for a question the resident's circumstances told beside it made unanswerable
        (低保怎么申请啊 我家老头子瘫在床上: 瘫痪 and 老人 are words of the entry on home visits, not of the
        one on applying for 低保): the entries that answer the question asked alone, offered as
        choices, never as the answer, since the circumstances may change what is meant. None when
        the message tells no circumstances or its question alone is not answered outright."""
        index = self._state.index
        alone = index.analyzer.without_circumstances(text, index.lexicon)
        if alone is None:
            return None
        found = self._decide(alone)
        if found.kind != "answer":  # (a question that alone gets choices at best is not clear enough)
            return None
        return Answer("choices", found.hits[: self.config.max_choices])

    def _decide(self, text: str) -> Answer:
        cfg = self.config
        state = self._state
        hits = self.search(text, k=max(cfg.max_choices, 2) + 2)
        said = self._said_as(text)
        place = self._hours_place(text)
        if said is not None and (place is None or state.index.holds(said.id, place[1])):
            # The question is the entry's own phrasing: that entry answers, however close the others.
            first = next((h for h in hits if h.entry.id == said.id), Hit(said, 1.0))
            rest = [h for h in hits if h.entry.id != said.id and (not h.entry.sensitive or self._names_topic(h.entry, text))]
            return Answer("answer", [first, *rest][: cfg.max_choices])
        # A sensitive entry the question does not name is no candidate at all.
        hits = [h for h in hits if not h.entry.sensitive or self._names_topic(h.entry, text)]
        # Asked when a place opens, only an entry about that place answers: the service centre's
        # hours are no answer to 社区医院几点开门 or 银行几点开门, not even as a choice.
        if place is not None:
            hits = [h for h in hits if state.index.holds(h.entry.id, place[1])]
        if not hits or hits[0].score + cfg.confidence_coverage * hits[0].coverage < cfg.respond_threshold:
            return self._asked_alone(text) or Answer("unknown", [], place[0] if place else "")
        best = hits[0]
        second = hits[1] if len(hits) > 1 else None
        runner_up = second.raw if second else 0.0
        # When the runner-up holds the question's topic words as well as the best hit (补贴怎么申请:
        # every entry with 补贴), the question does not tell them apart: a wider lead is needed.
        margin = cfg.margin
        if second is not None and second.coverage >= best.coverage and best.frame <= second.frame:
            # (unless the question's frame words tell them apart: 我想办个老年证 says 办, as the
            # how-to-get entry does and the entry on its benefits does not)
            margin = cfg.ambiguous_margin
        elif second is not None and second.frame >= best.frame + FRAME_LEAD:
            # The runner-up says what the request asks (办, 带什么) and the best hit does not: the
            # story's words that put the best hit first do not decide it (六十岁就能办老年证 坐车逛公园
            # 都便宜 … 要拿什么去办 asks how to get the card, not its benefits).
            margin = cfg.ambiguous_margin
        elif second is not None and best.coverage >= 0.99 and second.coverage < best.coverage - 0.05:
            # The best hit holds every topic word and the runner-up lacks one (积分会过期吗: only one
            # entry has 过期): the question itself tells them apart, so half the lead will do.
            margin = cfg.margin / 2
        if (
            best.score >= cfg.answer_threshold
            and best.raw - runner_up >= margin
            and best.coverage >= cfg.answer_coverage
            and best.phrasing >= cfg.answer_phrasing
            and not best.split
        ):
            return Answer("answer", hits[: cfg.max_choices])
        floor = max(cfg.choice_floor, cfg.choice_ratio * best.score)
        choices = [best] + [h for h in hits[1:] if h.score >= floor and h.coverage >= cfg.choice_coverage]
        return Answer("choices", choices[: cfg.max_choices])
