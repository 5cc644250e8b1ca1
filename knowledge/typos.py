"""Typo repair below the word level: a misspelt word that sounds like a word of the knowledge base.

Residents type with pinyin input methods and dictate to voice recognition, so their mistakes are
characters of the same sound: 高领补贴 (高龄), 身分证 (身份证), 夜效 (夜校), 地保 (低保), 医宝 (医保).
:class:`Lexicon` holds the knowledge base's own vocabulary (words of the entries' phrasings and tags,
the canonical forms of the synonym list) keyed by toneless pinyin, with the confusions of accents
and input methods folded (zh/z, ch/c, sh/s, n/l, in/ing, en/eng, an/ang). ``correct`` scans a text
and replaces a span that is not a known word, but sounds like one and shares a character with it,
by that word. It never touches a word the knowledge base knows, nor a common word of general
Chinese of two characters (关心 stays 关心, not 关系), nor a span that cuts a common word in two
(大家上课 has no 加上); a span of two characters must sound exactly alike (no folded confusions).

Pinyin comes from pypinyin's character table (shipped with the package, nothing downloaded); one
reading per character, cached.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache

from pypinyin.pinyin_dict import pinyin_dict

from knowledge.memo import TextMemo

_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_FINALS = (("ing", "in"), ("eng", "en"), ("ang", "an"))
# A two-character span this frequent in general Chinese (jieba's counts) is a word in its own right.
COMMON_WORD_FREQ = 100
MAX_SPAN = 5
REPAIRS_KEPT = 256  # texts whose repair a lexicon keeps (see Lexicon.correct)
# Measure words, particles, question words, negations and modals: in a span of two characters, one of
# these in place of another character of the known word (or in the known word in place of one of the
# span) is the word it is, not a slip (给点钱 is no 电钱, 这事谁管 no 水管, 能不交 no 能补交, 药钱 no 要钱).
SMALL_CHARS = frozenset("点个下些了着过吧呢啊呀嘛的得么谁啥咋哪不没要一")
# What follows a word asked about by where it is done or got (老年证在哪办, 结婚证在哪里领).
_WHERE_AFTER = ("在哪", "在什么地方", "在啥地方")


# A verb and its object split by a measure word (登个记); not a determiner with its noun (每个月, 这个人).
_SPLIT_WORD_RE = re.compile(r"([^\W\d_每这那哪几两半一某各整上下本])(?:了个|一个|个)([\u4e00-\u9fff])")


@lru_cache(maxsize=20000)
def plain_sound(ch: str) -> str:
    """Toneless pinyin of one character (its first reading); the character itself when it has none."""
    readings = pinyin_dict.get(ord(ch))
    if not readings:
        return ch
    first = readings.split(",", 1)[0]
    plain = "".join(c for c in unicodedata.normalize("NFD", first) if not unicodedata.combining(c))
    return plain.replace("ü", "v")


@lru_cache(maxsize=20000)
def sound(ch: str) -> str:
    """Toneless pinyin with the confusions of accents and input methods folded (zh/z, n/l, in/ing …)."""
    plain = plain_sound(ch)
    if plain == ch:
        return ch
    for a, b in _INITIALS:
        if plain.startswith(a):
            plain = b + plain[len(a) :]
            break
    if plain.startswith("l"):
        plain = "n" + plain[1:]
    for a, b in _FINALS:
        if plain.endswith(a):
            plain = plain[: -len(a)] + b
            break
    return plain


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


class Lexicon:
    """The knowledge base's words by sound; immutable once built."""

    def __init__(
        self,
        words: Iterable[str],
        common: Mapping[str, int] | None = None,
        rank: Mapping[str, float] | None = None,
    ) -> None:
        """``common``: word counts of general Chinese; ``rank``: how much the knowledge base uses a
        word (a tie between two words of the same sound goes to the more used one)."""
        self.words = frozenset(w for w in words if 2 <= len(w) <= MAX_SPAN and all(map(_is_han, w)))
        self._common = common or {}
        self._rank = rank or {}
        by_sound: dict[tuple[str, ...], list[str]] = {}
        for w in sorted(self.words):
            by_sound.setdefault(tuple(sound(c) for c in w), []).append(w)
        self._by_sound = by_sound
        self._lengths = sorted({len(w) for w in self.words}, reverse=True)
        # The first two characters / sounds of every word: where no word can start, skip.
        self._heads = frozenset(w[:2] for w in self.words)
        self._sound_heads = frozenset(key[:2] for key in by_sound)
        # Recent texts' repairs: a decision repairs its question twice (the search and the check
        # for an entry's own phrasing). ``common`` is jieba's counts, which change as a vocabulary
        # is taught words: then the lexicon starts afresh.
        self._repairs = TextMemo(REPAIRS_KEPT)

    def __len__(self) -> int:
        return len(self.words)

    def _repair(self, span: str, sounds: tuple[str, ...]) -> str | None:
        """The known word ``span`` (of these sounds) is a misspelling of, if any."""
        found = self._by_sound.get(sounds)
        if not found:
            return None
        if len(span) == 2 and self._common.get(span, 0) >= COMMON_WORD_FREQ:
            return None
        best, key = None, (0, 0.0)
        for word in found:
            if len(span) == 2 and [plain_sound(c) for c in span] != [plain_sound(c) for c in word]:
                continue
            if len(span) == 2 and any(
                a != b and (a in SMALL_CHARS or b in SMALL_CHARS) for a, b in zip(span, word, strict=True)
            ):
                continue
            n = sum(a == b for a, b in zip(span, word, strict=True))
            if n and (n, self._rank.get(word, 0.0)) > key:
                best, key = word, (n, self._rank.get(word, 0.0))
        return best

    def _cuts_a_word(self, text: str, i: int, j: int) -> bool:
        """Whether a common word straddles an edge of ``text[i:j]`` (大家 for the span 家上).

        Not one that runs from the span's last character into a question of where (老年正在哪办,
        狗正在哪办): 正在 is no word before 哪, so the span is the misspelt 老年证 asked about."""
        where = text.startswith(_WHERE_AFTER, j)
        for a in range(max(0, i - 3), j):
            for b in range(max(a + 2, i + 1), min(len(text), a + 4) + 1):
                if where and a == j - 1:
                    continue
                if ((a < i < b < j) or (i < a < j < b)) and self._common.get(text[a:b], 0) >= COMMON_WORD_FREQ:
                    return True
        return False

    def join_split(self, text: str) -> str:
        """A word split by a measure word, as separable verbs are said (登个记, 报个名, 体个检): joined
        when the two characters make a known word."""
        return _SPLIT_WORD_RE.sub(lambda m: m[1] + m[2] if m[1] + m[2] in self.words else m[0], text)

    def correct(self, text: str) -> str:
        """``text`` with misspelt knowledge-base words replaced (known words and the rest untouched).

        At each position the longest known word wins, unless a longer span is a misspelling of a
        known word (社保咔 → 社保卡 although 社保 is known)."""
        if not self.words:
            return text
        return self._repairs.get(text, self._correct)

    def _correct(self, text: str) -> str:
        sounds = [sound(c) if _is_han(c) else "" for c in text]
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            if not sounds[i]:
                out.append(text[i])
                i += 1
                continue
            known = 0
            if text[i : i + 2] in self._heads:
                for length in self._lengths:
                    if i + length <= n and text[i : i + length] in self.words:
                        known = length
                        break
            repaired = None
            can_repair = i + 1 < n and (sounds[i], sounds[i + 1]) in self._sound_heads
            for length in self._lengths if can_repair else ():
                if length <= known:
                    break
                if i + length > n or not all(sounds[i : i + length]):
                    continue
                repaired = self._repair(text[i : i + length], tuple(sounds[i : i + length]))
                if repaired is not None and self._cuts_a_word(text, i, i + length):
                    repaired = None
                if repaired is not None:
                    break
            if repaired is not None:
                out.append(repaired)
                i += len(repaired)
            elif known:
                out.append(text[i : i + known])
                i += known
            else:
                out.append(text[i])
                i += 1
        return "".join(out)
