"""The retrieval index: BM25 over words and character bigrams, re-ranked with rapidfuzz.

A question is analysed as a message (``Analyzer.analyse_query``): typos repaired against the
index's own words (``lexicon``), reduced to its request, topic words marked as said in the request
(focus) or in the story before it.

First stage (cheap, every entry):
  * word BM25 over each phrasing (canonical question and alternatives), best phrasing per entry;
  * character-bigram BM25 over the phrasings (robust to jieba cutting a typo differently);
  * word BM25 over the answers and tags, weighted lower.
Each is normalised by the query's self score, so it reads as "how much of the query is covered".

Second stage (the best ``candidates`` entries): rapidfuzz similarity between the folded query and
each phrasing, on the whole text and on the topic words alone (frame words such as 怎么/办理/在哪
removed), plus a small bonus when the entry shares the question's frame words (申请, 材料), and
the entry's *phrasing coverage*: how much of its best phrasing's topic (salience-weighted) the
question contains, which does not shrink when the question is long. The mix is multiplied by a power
of the *coverage*: the salience-weighted share of the question's topic words the entry holds, with
the request's words counting fully, the story's words little, and words the knowledge base has never
seen by how much they look like names of things (驾照: much; 冻死, 找不着: little), so a question about
驾照 cannot ride on an entry that merely shares "…到期了怎么换证" while a long story around a known
question still finds it. Final scores are in 0..1 (weights in ``IndexWeights``).

Everything after the analysis depends on the analysis alone, so the ranking is remembered per
analysis (``RANKINGS_KEPT``): questions that differ only in what the analysis drops (您好, 请问,
谢谢, punctuation, a repaired typo) are ranked once. The index is immutable and a new one starts
afresh; a change of jieba's vocabulary forgets the rankings too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from intents import tokens
from knowledge.bm25 import BM25
from knowledge.entries import Entry
from knowledge.text import (
    FRAME_CHARS,
    FRAME_WORDS,
    STOPWORDS,
    Analyzer,
    is_fragment,
    is_function_word,
    names_thing,
    topic_weight,
)
from knowledge.typos import Lexicon

if TYPE_CHECKING:
    from knowledge.text import Analysis


@dataclass(frozen=True)
class IndexWeights:
    """Weights of the score features; they sum to 1 so the mixed score stays in 0..1."""

    words: float = 0.35
    grams: float = 0.15
    answer: float = 0.20
    fuzzy: float = 0.30
    # Share of the fuzzy weight given to the topic-only comparison (frame words removed).
    topic_fuzzy: float = 0.5
    # The mixed score is multiplied by coverage ** coverage_power (see ``SearchIndex``).
    coverage_power: float = 0.5
    # Credit for a topic word found only in the entry's answer (not its phrasings or tags).
    answer_credit: float = 0.3
    # Weight of single-character topic words relative to longer ones.
    single_char: float = 0.5
    # Salience is raised to this power in the coverage, so that rare words (驾照) dominate it.
    salience_power: float = 2.0
    # Bonus for an entry whose phrasings share the question's frame words (申请, 怎么办, 材料):
    # "高龄补贴怎么申请" prefers the how-to-apply entry to the payment one.
    frame: float = 0.1
    # Share of the final score given to phrasing coverage (how much of the entry's best phrasing
    # the question contains); the rest is the BM25/fuzzy mix above.
    phrasing: float = 0.35
    # Coverage weights of a topic word by where it was said and whether the knowledge base knows it:
    # in the story before the request, a known word counts this much ...
    context: float = 0.1
    # (when the entry does not hold it; when it does, ``context_match``) ...
    context_match: float = 0.5
    # ... and a word the knowledge base has never seen, in the request / in the story.
    unseen_focus: float = 1.0
    unseen_context: float = 0.05
    # Least weight of a never-seen word in the request, when the question holds a whole phrasing.
    unseen_floor: float = 0.15
    # ... and the phrasing coverage from which it starts to weigh less.
    forgive_from: float = 0.6
    # Salience factor of words the entries use that name no topic (time words, numerals, adverbs).
    function_word: float = 0.3


# A question's topic word: (word, weight if the entry holds it, weight if not, whether a phrasing of
# the entry held by the question makes it count less: a never-seen word that names no thing)
_Weighted = tuple[str, float, float, bool]


@dataclass(frozen=True)
class Scored:
    position: int  # index into SearchIndex.entries
    score: float
    features: dict[str, float]

    @property
    def coverage(self) -> float:
        return self.features.get("coverage", 0.0)


def tokens_freq() -> dict[str, int]:
    """jieba's word counts (general Chinese): how common a two-character span is as a word."""
    from intents import tokens

    freq: dict[str, int] = tokens.tokenizer(tokens.KNOWLEDGE).FREQ
    return freq


COMMENT_RATIO = 0.5  # see SearchIndex._comment_only
STORY_NORM = 0.3  # share of the story's known words in the BM25 normalisation (the request's count fully)
COMMENT_LENGTH = 30  # characters: a spoken question this short, not a long story
DENSE_PHRASINGS = 8192  # see SearchIndex._best_phrasing
SPLIT_SHARE = 0.2  # see SearchIndex._split: share of the request's weight a word must have
SPLIT_RIVALS = 3  # ... and the runners-up whose centre is looked at (the best hit's two followers)
WHOLE_PHRASING = 0.9  # see SearchIndex._narrower: phrasing coverage of a question that holds a phrasing
RARE_WORD = 4  # ... and the most entries a word may be said by to tell its entry apart (医保: 6)
# see SearchIndex._kind_of: how much more specific (salience) than anything a question shares with a
# phrasing the phrasing's own word it lacks must be (HPV疫苗: 21.6 against 疫苗 11.2 and 预约 12.6)
KIND_OF = 1.5
MAX_TERM = 6  # longest topic word looked up whole in a question (longer ones count by character pairs)
# Rankings remembered per analysis (and k); all forgotten when full: simpler than an LRU, and rare.
RANKINGS_KEPT = 2048


class SearchIndex:
    """Immutable index over a fixed list of entries; build a new one to change content."""

    def __init__(
        self,
        entries: Sequence[Entry],
        analyzer: Analyzer,
        weights: IndexWeights | None = None,
        candidates: int = 12,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        self.entries = tuple(entries)
        self.analyzer = analyzer
        self.weights = weights or IndexWeights()
        self.candidates = candidates
        self._rankings: dict[tuple[Analysis, int], list[Scored]] = {}
        self._rankings_generation = -1
        phrase_words: list[tuple[str, ...]] = []
        phrase_grams: list[tuple[str, ...]] = []
        phrase_texts: list[str] = []
        phrase_topics: list[str] = []
        phrase_topic_words: list[tuple[str, ...]] = []
        owner: list[int] = []
        starts: list[int] = []
        answer_words: list[tuple[str, ...]] = []
        strong: list[str] = []
        weak: list[str] = []
        vocab: list[set[str]] = []
        central: list[frozenset[str]] = []
        for pos, entry in enumerate(self.entries):
            starts.append(len(owner))
            entry_vocab: set[str] = set()
            for phrasing in entry.phrasings:
                a = analyzer.analyse(phrasing)
                phrase_words.append(a.words)
                phrase_grams.append(a.grams)
                phrase_texts.append(a.text)
                phrase_topics.append("".join(a.topic))
                phrase_topic_words.append(a.topic)
                owner.append(pos)
                entry_vocab.update(a.words)
            tags = [analyzer.fold(tag) for tag in entry.tags]
            # What the entry is about at its centre: its own question's topic words and its tags
            # (an alternative may add a condition: 在外地住院医保能报吗 is about 外地, not 住院).
            central.append(frozenset((*phrase_topic_words[starts[-1]], *tags)))
            answer = analyzer.analyse(" ".join((entry.answer, *entry.tags)))
            answer_words.append(answer.words)
            # What an entry "is about": its phrasings and tags (strong), its answer (weak).
            strong.append("|".join([t for t in phrase_texts[starts[-1] :]] + tags))
            weak.append(answer.text)
            entry_vocab.update(tags)
            vocab.append(entry_vocab)
        self._starts = np.asarray(starts, dtype=np.int64)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._ends = np.append(self._starts[1:], len(owner)).astype(np.int64)
        self._phrase_texts = phrase_texts
        self._phrase_topics = phrase_topics
        self._strong = strong
        self._central = central
        self._positions = {entry.id: pos for pos, entry in enumerate(self.entries)}
        self._weak = weak
        self._words = BM25(phrase_words, k1=k1, b=b)
        self._grams = BM25(phrase_grams, k1=k1, b=b)
        self._answers = BM25(answer_words, k1=k1, b=b)
        # Entry-level document frequency of phrasing/tag words: how much a topic word says.
        df: dict[str, int] = {}
        for words in vocab:
            for w in words:
                df[w] = df.get(w, 0) + 1
        n = max(len(self.entries), 1)
        self._df = df
        self._salience = {w: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for w, d in df.items()}
        self._unknown_salience = math.log(1.0 + (n + 0.5) / 0.5)
        # Each phrasing's topic words with their weight: what the phrasing is about.
        salience: dict[str, float] = {}
        self._phrase_terms: list[tuple[tuple[str, float], ...]] = []
        for topic_words in phrase_topic_words:
            phrase_terms: list[tuple[str, float]] = []
            for t in dict.fromkeys(self.topic_terms(topic_words)):
                if t not in salience:
                    salience[t] = self.salience(t)
                phrase_terms.append((t, salience[t]))
            self._phrase_terms.append(tuple(phrase_terms))
        # What each entry is about (see ``_narrower``): its centre and the topic words two of its
        # phrasings say (外地 of the entry on seeing a doctor elsewhere; not 住院, said once).
        self._subject: list[frozenset[str]] = []
        for pos in range(len(self.entries)):
            said: dict[str, int] = {}
            for row in range(starts[pos], starts[pos + 1] if pos + 1 < len(starts) else len(owner)):
                for t, _ in self._phrase_terms[row]:
                    said[t] = said.get(t, 0) + 1
            self._subject.append(central[pos] | {t for t, c in said.items() if c >= 2})
        # The same as a sparse matrix (phrasing x topic word) for the search's vector arithmetic.
        self._term_ids: dict[str, int] = {}
        term_ids: list[int] = []
        term_weights: list[float] = []
        rows: list[int] = []
        for row, pairs_of_row in enumerate(self._phrase_terms):
            for term, weight in pairs_of_row:
                term_ids.append(self._term_ids.setdefault(term, len(self._term_ids)))
                term_weights.append(weight)
                rows.append(row)
        self._pt_ids = np.asarray(term_ids, dtype=np.int64)
        self._pt_w = np.asarray(term_weights, dtype=np.float64)
        self._pt_rows = np.asarray(rows, dtype=np.int64)
        self._pt_total = np.bincount(self._pt_rows, weights=self._pt_w, minlength=len(self._phrase_terms))
        self._pt_start = np.searchsorted(self._pt_rows, np.arange(len(self._phrase_terms) + 1))
        # Longer topic words by character pair, for partial credit (积分 of 积分商城).
        self._pair_terms: dict[str, list[tuple[int, float]]] = {}
        for t, i in self._term_ids.items():
            if len(t) > 2:
                pairs = [t[j : j + 2] for j in range(len(t) - 1)]
                for pair in dict.fromkeys(pairs):
                    self._pair_terms.setdefault(pair, []).append((i, pairs.count(pair) / len(pairs)))
        self._max_term = min(MAX_TERM, max((len(t) for t in self._term_ids), default=1))
        self._term_starts = frozenset(t[0] for t in self._term_ids)
        # Words a typo can be repaired to: the entries' dictionary words and tags, the synonym list
        # (not the pieces jieba's HMM coins, such as 能办).
        freq = tokens_freq()
        lexicon_words = {w for words in vocab for w in words if freq.get(w)}
        lexicon_words.update(t for e in self.entries for t in e.tags)
        lexicon_words.update(analyzer.synonyms.values())
        lexicon_words.update(analyzer.synonyms)
        self.lexicon = Lexicon(
            (w for w in lexicon_words if w not in STOPWORDS and w not in FRAME_WORDS and not is_fragment(w)),
            freq,
            {w: float(d) for w, d in df.items()},
        )

    def __len__(self) -> int:
        return len(self.entries)

    def holds(self, entry_id: str, word: str) -> bool:
        """Whether the entry's phrasings or tags say ``word`` (folded)."""
        position = self._positions.get(entry_id)
        return position is not None and word in self._strong[position]

    def _best_phrasing(self, bm25: BM25, terms: Sequence[str]) -> npt.NDArray[np.float64]:
        """Best phrasing score per entry (an entry's phrasings are contiguous; scores are positive or
        0). A few thousand phrasings: from the dense scores, in two array operations; more (the
        5,000-entry benchmark): from the phrasings the terms touch only, sorted by ``np.unique``,
        which then costs less than a pass over every phrasing. The same figures either way."""
        if len(self._owner) <= DENSE_PHRASINGS:
            return np.maximum.reduceat(bm25.scores(terms), self._starts)
        ids, scores = bm25.sparse_scores(terms)
        best = np.zeros(len(self.entries))
        if len(ids):
            owners = self._owner[ids]
            heads = np.concatenate(([0], np.flatnonzero(np.diff(owners)) + 1))
            best[owners[heads]] = np.maximum.reduceat(scores, heads)
        return best

    def salience(self, term: str) -> float:
        """How much a topic word narrows the question down (entry-level IDF; unseen words weigh most)."""
        weight = self._salience.get(term)
        if weight is None:
            weight = self._unknown_salience * topic_weight(term)
        elif is_function_word(term):  # 晚上, 今年, 一次: the entries use them, they name no topic
            weight *= self.weights.function_word
        if len(term) == 1:
            weight *= self.weights.single_char
        return float(weight**self.weights.salience_power)

    def topic_terms(self, topic: Sequence[str]) -> list[str]:
        """The query's topic words, with frame characters jieba glued onto unseen words removed."""
        out: list[str] = []
        for n, term in enumerate(topic):
            if n and len(term) == 2 and term[1] in "子儿" and term not in self._salience:
                joined = topic[n - 1] + term[0]  # 水 + 管子 → 水管
                if joined in self._salience:
                    if topic[n - 1] in out:
                        out.remove(topic[n - 1])
                    term = joined
            if term not in self._salience:
                term = term.strip(FRAME_CHARS)
                if not term or term in FRAME_WORDS or is_fragment(term):
                    continue
                if len(term) > 2 and term[-1] in "子儿" and term[:-1] in self._salience:
                    term = term[:-1]  # 水管子 → 水管, 井盖子 → 井盖
                else:  # a modifier before a known word: 废旧电池 → 电池, 旧衣服 → 衣服
                    term = next((term[i:] for i in range(1, len(term) - 1) if term[i:] in self._salience), term)
            if term not in out:
                out.append(term)
        return out

    def _comment_only(self, topic: Sequence[str], focus: frozenset[str]) -> bool:
        """Whether the request only comments on a topic told before it (俺退休金要刷脸 俺眼神不好
        能去社区给弄不): its words the knowledge base knows weigh far less than those of the clause
        before it, so the whole message is the request."""
        if any(t in self._salience and names_thing(t) and not is_function_word(t) for t in focus):
            return False  # the request names the thing itself (想办个居住证咋弄): no comment
        said = sum(self.salience(t) for t in focus if t in self._salience)
        told = sum(self.salience(t) for t in topic if t not in focus and t in self._salience)
        return said < COMMENT_RATIO * told

    def _query_weights(self, topic: Sequence[str], focus: frozenset[str] | None) -> list[_Weighted]:
        """Topic words of a question with their coverage weights. The request's words weigh their
        salience; the story's words can help an entry that holds them but hardly count against one
        that does not; see ``_coverage`` for words the knowledge base has never seen."""
        wt = self.weights
        out: list[_Weighted] = []
        for term in topic:
            weight = self.salience(term)
            known = term in self._salience
            if focus is None or term in focus:
                w_in = w_out = weight * (1.0 if known else wt.unseen_focus)
            elif known:
                w_in, w_out = weight * wt.context_match, weight * wt.context
            else:
                w_in = w_out = weight * wt.unseen_context
            out.append((term, w_in, w_out, not known and not names_thing(term)))
        return out

    def coverage(self, topic: Sequence[str], position: int) -> float:
        """Salience-weighted share of the question's topic words that the entry covers (0..1).

        A word found in the entry's phrasings or tags counts fully, one found only in its answer
        counts ``answer_credit``, a longer word of which only some character pairs are found counts
        in proportion; frame words (how, where, apply …) are not topic words. No topic word: 0.
        """
        weighted = [(t, w, w, False) for t in topic for w in (self.salience(t),)]
        return self._coverage(weighted, position, 0.0)

    def _coverage(self, weighted: Sequence[_Weighted], position: int, phrasing: float) -> float:
        """Coverage of the question's weighted topic words by the entry at ``position``.

        A word the knowledge base has never seen that does not name a thing (岁数, 闺女, 箱子) counts
        against the entry only as far as the question does not hold the entry's own phrasing:
        "俺今年到岁数了 退休的手续咋办" holds all of "办退休要什么材料", so 岁数 hardly counts. One that
        names a thing (驾照, 公积金, 游泳馆) always counts: "驾照到期了怎么换证" is not about 残疾证."""
        strong, weak = self._strong[position], self._weak[position]
        wt = self.weights
        forgive = min(1.0, max(wt.unseen_floor, (1.0 - phrasing) / (1.0 - wt.forgive_from)))
        total = got = 0.0
        for term, w_in, w_out, forgivable in weighted:
            if term in strong:
                credit = 1.0
            elif term in weak:
                credit = self.weights.answer_credit
            elif len(term) > 2:
                pairs = [term[i : i + 2] for i in range(len(term) - 1)]
                credit = 0.5 * sum(p in strong for p in pairs) / len(pairs)
            else:
                credit = 0.0
            if forgivable:
                w_out *= forgive
            total += w_in if credit else w_out
            got += w_in * credit
        return got / total if total else 0.0

    def _held(self, text: str) -> npt.NDArray[np.float64]:
        """For every phrasing topic word, how far ``text`` holds it: 1 when it contains the word; for
        a longer word, half the share of its character pairs it contains (积分 of 积分商城); else 0."""
        held = np.zeros(len(self._term_ids))
        partial: dict[int, float] = {}
        for pair in {text[a : a + 2] for a in range(len(text) - 1)}:
            pair_terms = self._pair_terms.get(pair)
            if pair_terms:
                for i, share in pair_terms:
                    partial[i] = partial.get(i, 0.0) + share
        for i, share in partial.items():
            held[i] = 0.5 * min(share, 1.0)
        term_ids, starts = self._term_ids, self._term_starts
        for a in range(len(text)):  # words longer than MAX_TERM are held only in part
            if text[a] not in starts:
                continue
            for b in range(a + 1, min(len(text), a + self._max_term) + 1):
                found = term_ids.get(text[a:b])
                if found is not None:
                    held[found] = 1.0
        return held

    def _phrasing_match(
        self, text: str, asked: Sequence[tuple[str, float]], cand: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per candidate entry: (phrasing coverage, phrasing match) of its best phrasing.

        Phrasing coverage: how much of the phrasing's topic (salience-weighted) ``text`` holds.
        Phrasing match: the geometric mean of that share and of the share of the request's known
        topic words (``asked``) the phrasing has among its words, so that a phrasing of one common
        word (积分能干嘛) does not match every question about 积分 as well as the phrasing that also
        holds the rest of the question."""
        first, last = self._starts[cand], self._ends[cand]  # phrasing rows of each candidate
        n_rows = last - first
        offsets = np.concatenate(([0], np.cumsum(n_rows)[:-1]))
        rows = np.repeat(first - offsets, n_rows) + np.arange(n_rows.sum())
        # Topic words of those phrasings (contiguous per candidate), summed per phrasing.
        lo, hi = self._pt_start[first], self._pt_start[last]
        n_terms = hi - lo
        nnz = np.repeat(lo - np.concatenate(([0], np.cumsum(n_terms)[:-1])), n_terms) + np.arange(n_terms.sum())
        local = self._pt_rows[nnz] - np.repeat(first - offsets, n_terms)
        held = self._held(text)
        got = np.bincount(local, weights=self._pt_w[nnz] * held[self._pt_ids[nnz]], minlength=len(rows))
        totals = self._pt_total[rows]
        cov = np.divide(got, totals, out=np.zeros(len(rows)), where=totals > 0)
        asked_total = sum(w for _, w in asked)
        if asked_total:
            holds = np.zeros(len(rows))
            for t, w in asked:
                docs = self._words.docs(t)
                if len(docs):
                    at = np.minimum(np.searchsorted(docs, rows), len(docs) - 1)
                    holds += w * (docs[at] == rows)
            match = np.sqrt(cov * holds / asked_total)
        else:
            match = cov
        return np.maximum.reduceat(cov, offsets), np.maximum.reduceat(match, offsets)

    def search(self, text: str, k: int) -> list[Scored]:
        """Best ``k`` entries for ``text``, best first, scores in 0..1."""
        return list(self.ranked(text, k))

    def ranked(self, text: str, k: int) -> Sequence[Scored]:
        """``search``'s ranking as remembered: the same object for every question of the same
        analysis while it is remembered (the caller must not change it)."""
        if not self.entries or k <= 0:
            return ()
        q = self.analyzer.analyse_query(text, self.lexicon)
        if not q.text or (not q.words and not q.grams):
            return ()
        generation = tokens.generation()
        if generation != self._rankings_generation:
            self._rankings, self._rankings_generation = {}, generation
        ranked = self._rankings.get((q, k))
        if ranked is None:
            ranked = self._rank(q, k)
            if len(self._rankings) >= RANKINGS_KEPT:
                self._rankings.clear()
            self._rankings[(q, k)] = ranked
        return ranked

    def _rank(self, q: Analysis, k: int) -> list[Scored]:
        """Best ``k`` entries for the analysed question ``q`` (of the search's text alone)."""
        n = len(self.entries)
        # Normalise by what the question says in its request and what the index knows of the
        # story: a long story of words no entry uses does not shrink the scores.
        focus = q.focus if q.focus_text else None
        if focus is not None and len(q.text) <= COMMENT_LENGTH and self._comment_only(q.topic, focus):
            focus = None
        norm_words = [w for w in q.words if focus is None or w in focus or w in self._words] or list(q.words)
        told = STORY_NORM if focus is not None else 1.0
        said = [w for w in dict.fromkeys(norm_words) if focus is None or w in focus or w in FRAME_WORDS]
        story = [w for w in dict.fromkeys(norm_words) if w not in said]
        w_norm = (self._words.self_score(said) + told * self._words.self_score(story)) or 1.0
        g_norm = self._grams.self_score([g for g in q.grams if g in self._grams] or q.grams) or 1.0
        a_norm = (self._answers.self_score(said) + told * self._answers.self_score(story)) or 1.0
        words = np.minimum(self._best_phrasing(self._words, q.words) / w_norm, 1.0)
        grams = np.minimum(self._best_phrasing(self._grams, q.grams) / g_norm, 1.0)
        answer = np.minimum(self._answers.scores(q.words) / a_norm, 1.0)
        wt = self.weights
        first = wt.words * words + wt.grams * grams + wt.answer * answer
        m = min(self.candidates, n)
        if m < n:
            cand = np.argpartition(-first, m - 1)[:m]
        else:
            cand = np.arange(n)
        cand = cand[first[cand] > 0]
        if not len(cand):
            return []
        # Second stage: fuzzy similarity of the request to every phrasing of the candidates, on the
        # whole text and on the topic words alone (frame words removed).
        spans = list(zip(self._starts[cand].tolist(), self._ends[cand].tolist(), strict=True))
        request = q.focus_text or q.text
        sims = self._fuzzy(request, self._phrase_texts, spans)
        topic = self.topic_terms(q.topic)
        focus_topic = [t for t in topic if focus is None or t in focus] or topic
        frame_words = [w for w in dict.fromkeys(q.words) if w in FRAME_WORDS]
        q_topic = "".join(focus_topic)
        topic_sims = self._fuzzy(q_topic, self._phrase_topics, spans) if q_topic else np.zeros_like(sims)
        weighted = self._query_weights(topic, focus)
        asked = [(t, w_in) for t, w_in, _, _ in weighted if t in self._salience and (focus is None or t in focus)]
        offsets = np.cumsum([0] + [e - s for s, e in spans[:-1]])
        best_sims = np.maximum.reduceat(sims, offsets).tolist()
        best_topic = np.maximum.reduceat(topic_sims, offsets).tolist()
        p_cov, p_match = self._phrasing_match(q.text, asked, cand)
        best_pcov, best_pmatch = p_cov.tolist(), p_match.tolist()
        out: list[Scored] = []
        cand_words, cand_grams = words[cand].tolist(), grams[cand].tolist()
        cand_answer, cand_first = answer[cand].tolist(), first[cand].tolist()
        for i, c in enumerate(cand.tolist()):
            fz, tfz, pos = best_sims[i], best_topic[i], c
            pcov, pmatch = best_pcov[i], best_pmatch[i]
            cov = self._coverage(weighted, pos, pcov)
            if cov <= 0.0:  # an entry sharing none of the question's topic words is no match
                continue
            strong = self._strong[pos]
            frame = sum(w in strong for w in frame_words) / len(frame_words) if frame_words else 0.0
            feats = {
                "words": cand_words[i],
                "grams": cand_grams[i],
                "answer": cand_answer[i],
                "fuzzy": fz,
                "topic_fuzzy": tfz,
                "coverage": cov,
                "phrasing": pcov,
                "phrasing_match": pmatch,
                "frame": frame,
            }
            mixed = cand_first[i] + wt.fuzzy * ((1.0 - wt.topic_fuzzy) * fz + wt.topic_fuzzy * tfz)
            mixed = mixed + wt.frame * frame
            # Phrasing coverage alone favours entries with a phrasing of one common word; the match
            # alone, entries whose phrasings repeat the question's frame: half of each.
            mixed = (1.0 - wt.phrasing) * mixed + wt.phrasing * 0.5 * (pcov + pmatch)
            raw = mixed * cov**wt.coverage_power
            feats["raw"] = raw  # unclipped: two strong matches still differ (the answer's lead)
            out.append(Scored(pos, min(raw, 1.0), feats))
        out.sort(key=lambda s: (-s.features["raw"], s.position))
        if len(out) > 1:
            out[0].features["split"] = self._split(asked, out[0].position, [s.position for s in out[1:SPLIT_RIVALS]])
        if out and (
            self._narrower(asked, topic, q.text, out[0].position, out[0].features["phrasing"])
            or self._kind_of(q.text, out[0].position)
            or self._in_passing(asked, topic, q.text, out[0].position)
            or self._names_other(q.focus_text or q.text, out[0].position)
        ):
            out[0].features["split"] = 1.0
        return out[:k]

    def _split(self, asked: Sequence[tuple[str, float]], best: int, rivals: Sequence[int]) -> float:
        """1.0 when the request's distinguishing words are split between the best entry and a rival:
        a word of weight that the best entry's phrasings and tags never say is what a rival's own
        question or tags are about (住院医保怎么报销: 住院 is in an alternative of the entry on seeing a
        doctor elsewhere, 在外地住院医保能报吗, and 报销 is the chronic-illness entry's question's); no
        entry then answers the whole question. 0.0 otherwise."""
        total = sum(w for _, w in asked)
        strong, centre = self._strong[best], self._central[best]
        for term, weight in asked:
            if weight >= SPLIT_SHARE * total and term not in strong:
                for r in rivals:
                    # (not when the request also names what the best entry itself is about and the
                    # rival is not: 我在外地住院了医保能报销吗要备案不 names 备案)
                    if term in self._central[r] and not any(
                        t in centre and t not in self._strong[r] for t, _ in asked
                    ):
                        return 1.0
        return 0.0

    def _narrower(self, asked: Sequence[tuple[str, float]], topic: Sequence[str], text: str, best: int, pcov: float) -> bool:
        """Whether the best entry answers only a narrower question than the request: 住院了医保能报多少
        holds all of 在外地住院医保能报吗 but 外地, and 住院 is no more than that alternative's case of
        what the entry is about (seeing a doctor elsewhere); the question asks about a hospital stay
        anywhere, which no entry answers. True when a word of weight in the request is not what the
        entry is about (``_subject``) and every phrasing that says it adds something the entry is
        about that the question lacks, unless the question
          * says a word the entry does not (去上海住院: 上海 may be the condition in other words),
          * holds a phrasing whole (``WHOLE_PHRASING``), or
          * names another word of the entry that few entries say (去北京住院: 北京 of 去北京看病).
        Like a split, the entry is then offered as a choice, not given as the answer."""
        strong, subject = self._strong[best], self._subject[best]
        total = sum(w for _, w in asked)
        if not total or pcov >= WHOLE_PHRASING or not all(t in strong for t in topic):
            return False
        if any(t in text and self._df.get(t, 0) <= RARE_WORD for t in subject):
            return False
        rows = range(int(self._starts[best]), int(self._ends[best]))
        for term, weight in asked:
            if weight < SPLIT_SHARE * total or term in subject or len(term) < 2:
                continue
            if any(t != term and t in strong and self._df.get(t, 0) <= RARE_WORD for t, _ in asked):
                continue
            saying = [r for r in rows if term in self._phrase_texts[r] or any(t in term for t, _ in self._phrase_terms[r])]
            if saying and all(self._adds_subject(r, subject, text) for r in saying):
                return True
        return False

    def _holds_term(self, term: str, text: str) -> bool:
        """Whether ``text`` says ``term``: whole, or a longer word by at least half its character pairs
        (个体 of 个体户)."""
        if term in text:
            return True
        if len(term) < 3:
            return False
        pairs = [term[i : i + 2] for i in range(len(term) - 1)]
        return 2 * sum(p in text for p in pairs) >= len(pairs)

    def _kind_of(self, text: str, best: int) -> bool:
        """Whether the question asks about something of which the best entry answers one kind only:
        打疫苗要预约吗 shares 疫苗 and 预约 with the entry on the HPV vaccine, but every phrasing of that
        entry names a word far more specific than any the two share (HPV疫苗, 九价, 二价, 女孩) and
        the question names none of them. True when, for every phrasing of the entry, its most specific
        topic word the question lacks outweighs (``KIND_OF`` times, in salience) the most specific
        one it holds; a question holding a phrasing's words, or its telling word (九价疫苗在哪打), is
        about what the entry is about. Like a split, the entry is then offered as a choice."""
        for row in range(int(self._starts[best]), int(self._ends[best])):
            held = lacking = 0.0
            for t, w in self._phrase_terms[row]:
                if is_function_word(t):
                    continue
                if self._holds_term(t, text):
                    held = max(held, w)
                else:
                    lacking = max(lacking, w)
            if lacking <= KIND_OF * held:
                return False
        return True

    def _in_passing(self, asked: Sequence[tuple[str, float]], topic: Sequence[str], text: str, best: int) -> bool:
        """Whether a question naming one thing and nothing else (挂号, 怎么挂号) finds an entry that
        mentions it only in passing: in one alternative (学用手机挂号 of the smartphone class), not in
        what it is about (``_subject``), the alternative saying more than the question does. Such a
        word alone does not say what the resident wants to know about it; a question holding the
        alternative whole (不会用微信) or naming the entry's subject is answered as before."""
        # (a character of that word said again, 挂 of 挂号怎么挂, names nothing more; 学 of 想学八段锦 does)
        named = [t for t in topic if len(t) > 1 or not any(t in u for u in topic if len(u) > 1)]
        if len(named) != 1 or named[0] in self._subject[best] or not any(t == named[0] for t, _ in asked):
            return False
        return not any(
            all(self._holds_term(t, text) for t, _ in self._phrase_terms[row] if not is_function_word(t))
            for row in range(int(self._starts[best]), int(self._ends[best]))
        )

    def _names_other(self, request: str, best: int) -> bool:
        """Whether the request names a thing of which a word of the best entry's subject is only the
        modifier: 楼道灯坏了 says 楼道 of the entry on clutter in the corridor, but asks about the light
        (灯), which no phrasing or tag of that entry says. True when, in the request, a subject word is
        followed by a head that makes it the name of a thing (``names_thing``: 灯, 卡, 证, 费) and
        starts no longer word (管 of 物业管理), and no text of the entry (phrasings, tags, answer) says
        that head. Like a split, the entry is then offered as a choice, not given as the answer."""
        strong, weak, freq = self._strong[best], self._weak[best], tokens_freq()
        for word in self._subject[best]:
            if len(word) < 2:
                continue
            at = request.find(word)
            while at >= 0:
                end = at + len(word)
                head = request[end : end + 1]
                if (
                    head
                    and head not in strong
                    and head not in weak
                    and names_thing(word + head)
                    # (not the start of a longer word: 管 of 物业管理)
                    and not any(freq.get(request[end : end + n]) for n in range(2, 5))
                ):
                    return True
                at = request.find(word, at + 1)
        return False

    def _adds_subject(self, row: int, subject: frozenset[str], text: str) -> bool:
        """Whether the phrasing at ``row`` says, with weight, a word of its entry's subject that
        ``text`` lacks (外地 of 在外地住院医保能报吗 for 住院了医保能报多少)."""
        terms = self._phrase_terms[row]
        total = sum(w for _, w in terms)
        return any(
            w >= SPLIT_SHARE * total and t in subject and t not in text and len(t) > 1 and not is_function_word(t)
            for t, w in terms
        )

    @staticmethod
    def _fuzzy(query: str, texts: list[str], spans: list[tuple[int, int]]) -> npt.NDArray[np.float64]:
        choices = [t for s, e in spans for t in texts[s:e]]
        return process.cdist([query], choices, scorer=fuzz.ratio, dtype=np.float64)[0] / 100.0
