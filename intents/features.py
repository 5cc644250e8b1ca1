"""Turning a message into sparse features: jieba words, word bigrams and character n-grams.

Digits are folded to ``0`` (3号楼 and 12号楼 look alike) and synonyms/homophones from the training data
(机分 → 积分, 保修 → 报修) are rewritten before anything else, identically at training and at inference.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from intents.tokens import cut, normalize

_PUNCT_RE = re.compile(r"[\s\W_]+", re.UNICODE)
_DIGIT_RE = re.compile(r"\d")
# Openings that say nothing about what a message wants: a greeting before the message, and "I'd like
# to ask" before it (你好，…; 想咨询一下 …; 您好 我想问一下 …). Left in, they pull a plain question, a
# report or an out-of-scope request towards small talk or `query` by their own words.
_GREETING_RE = re.compile(r"^(?:你好|您好|你们好|在吗|在不在|喂|哈喽|嗨|早上好|上午好|中午好|下午好|晚上好|打扰了|打扰一下)"
                          r"[啊呀哈呢吖]?(?:[\s,，。.!！~～、:：]+|(?=(?:请问|我|想|麻烦|咨询|问)))")
_ASKING_RE = re.compile(r"^(?:(?:我|俺)?(?:想|要|来)(?:咨询|问|打听|请教)(?:一下|下|问)?|(?:请问|麻烦问)(?:一下|下))"
                        r"[\s,，。.!！~～、:：]*")


@dataclass(frozen=True)
class FeatureConfig:
    char_min: int = 1
    char_max: int = 3
    word_bigrams: bool = True
    max_chars: int = 300  # long messages are truncated (title + start of the text carry the topic)
    strip_openers: bool = False  # drop a leading greeting and "I'd like to ask" (the intent engine's)


class SynonymRewriter:
    """Rewrite variants to their canonical word in one regex pass (longest variant first)."""

    def __init__(self, synonyms: Mapping[str, str]) -> None:
        self.synonyms = {normalize(k): v for k, v in synonyms.items() if k and k != v}
        if self.synonyms:
            alternatives = sorted(self.synonyms, key=len, reverse=True)
            self._re: re.Pattern[str] | None = re.compile("|".join(re.escape(a) for a in alternatives))
        else:
            self._re = None

    def __call__(self, text: str) -> str:
        text = normalize(text)
        if self._re is None:
            return text
        return self._re.sub(lambda m: self.synonyms[m.group(0)], text)


def strip_openers(text: str) -> str:
    """``text`` without a leading greeting and a leading "I'd like to ask …", each only when something
    of at least two characters follows (你好，在吗 stays, 你好 alone stays)."""
    return split_openers(text)[0]


def split_openers(text: str) -> tuple[str, bool]:
    """(:func:`strip_openers` of ``text``, whether an opening was dropped)."""
    dropped = False
    for pattern in (_GREETING_RE, _ASKING_RE):
        m = pattern.match(text)
        if m is not None and len(_PUNCT_RE.sub("", text[m.end():])) >= 2:
            text = text[m.end():]
            dropped = True
    return text, dropped


def extract(text: str, config: FeatureConfig, rewrite: SynonymRewriter | None = None) -> list[str]:
    """Feature strings of one message (duplicates kept; the vectoriser uses presence)."""
    text = rewrite(text) if rewrite is not None else normalize(text)
    if config.strip_openers:
        text = strip_openers(text)
    return features_of(prepared(text, config), config)


def prepared(text: str, config: FeatureConfig) -> str:
    """The text :func:`extract` cuts, from ``text`` as rewritten (and stripped of its openers when
    ``config`` says so): truncated, its digits folded."""
    return _DIGIT_RE.sub("0", text[: config.max_chars])


def features_of(text: str, config: FeatureConfig) -> list[str]:
    """:func:`extract`'s features of a :func:`prepared` text: what follows depends on it alone."""
    fullmatch = _PUNCT_RE.fullmatch
    words = [w for w in cut(text, normalized=True, hmm=False) if not fullmatch(w)]
    feats = ["w" + w for w in words]
    if config.word_bigrams:
        feats.extend("b" + a + "_" + b for a, b in itertools.pairwise(words))
    chars = "^" + _PUNCT_RE.sub("", text) + "$"
    n = len(chars)
    for size in range(config.char_min, config.char_max + 1):
        feats.extend("c" + chars[i : i + size] for i in range(n - size + 1))
    return feats


def extract_many(texts: Iterable[str], config: FeatureConfig, rewrite: SynonymRewriter | None = None,
                 cache: dict[str, list[str]] | None = None) -> list[list[str]]:
    """Features of many texts, reusing ``cache`` (text → features) across reloads when given."""
    out = []
    for text in texts:
        if cache is not None:
            feats = cache.get(text)
            if feats is None:
                feats = extract(text, config, rewrite)
                cache[text] = feats
        else:
            feats = extract(text, config, rewrite)
        out.append(feats)
    return out
