"""Tokenisation shared by the language packages: text normalisation and jieba with a community dictionary.

One jieba ``Tokenizer`` per vocabulary and process, built lazily, with the words in
``intents/data/community_dict.txt`` added so that domain terms (网格员, 积分商城, 物业费 …)
stay whole. Each package that teaches jieba words of its own has its own vocabulary: the intent
engine and routing add lookup words (course and merchant names) to ``intents``, the knowledge
base adds its synonyms to ``knowledge``. Sharing one would make a model's features depend on which
other package happened to load, or reload, after it was trained: a served model would cut text
differently from the one that was trained and measured. Nothing here touches the network: jieba
ships its dictionary.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from pathlib import Path

import jieba

DICT_PATH = Path(__file__).parent / "data" / "community_dict.txt"

INTENTS = "intents"
KNOWLEDGE = "knowledge"
VOCABULARIES = (INTENTS, KNOWLEDGE)

_lock = threading.Lock()
_tokenizers: dict[str, jieba.Tokenizer] = {}
# Bumped whenever a tokenizer is built or taught words: text cut before may be cut differently now,
# so whatever was computed from it (a classifier's cached answers) must not be reused.
_generation = 0


def generation() -> int:
    """Changes whenever any vocabulary's tokenizer may cut a text differently than before."""
    return _generation

jieba.setLogLevel(logging.WARNING)


def normalize(text: str) -> str:
    """Fold width (全角→半角), case and whitespace so that the same words compare equal."""
    text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    return " ".join(text.split())


def load_user_words(path: Path = DICT_PATH) -> list[tuple[str, int | None, str | None]]:
    """Read a jieba user dictionary: ``word [freq] [tag]`` per line, ``#`` comments allowed."""
    words: list[tuple[str, int | None, str | None]] = []
    if not path.exists():
        return words
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        tag = parts[2] if len(parts) > 2 else None
        words.append((parts[0], freq, tag))
    return words


def tokenizer(vocabulary: str = INTENTS) -> jieba.Tokenizer:
    """The process-wide jieba tokenizer of ``vocabulary``, with the community dictionary loaded."""
    tok = _tokenizers.get(vocabulary)
    if tok is None:
        if vocabulary not in VOCABULARIES:
            raise ValueError(f"unknown vocabulary {vocabulary!r}")
        with _lock:
            tok = _tokenizers.get(vocabulary)
            if tok is None:
                tok = jieba.Tokenizer()
                tok.initialize()
                for word, freq, tag in load_user_words():
                    tok.add_word(word, freq, tag)
                _tokenizers[vocabulary] = tok
                _bump()
    return tok


def _bump() -> None:
    global _generation
    _generation += 1


def add_words(words: list[str], vocabulary: str = INTENTS) -> None:
    """Teach a vocabulary's tokenizer extra words (course names, merchant names, synonyms)."""
    tok = tokenizer(vocabulary)
    for word in words:
        if word:
            tok.add_word(word)
    _bump()


def cut(text: str, normalized: bool = False, hmm: bool = True, vocabulary: str = INTENTS) -> list[str]:
    """Normalised jieba tokens without whitespace-only pieces.

    ``hmm=False`` keeps to dictionary words (no HMM guessing of unknown words) and is about a third
    faster; the intent features use it because their character n-grams already cover unknown words.
    """
    words = tokenizer(vocabulary).lcut(text if normalized else normalize(text), HMM=hmm)
    return [t for t in words if t.strip()]
