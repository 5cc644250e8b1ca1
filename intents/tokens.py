"""Tokenisation shared by the language packages: text normalisation and jieba with a community dictionary.

One jieba ``Tokenizer`` instance per process, built lazily, with the words in
``intents/data/community_dict.txt`` added so that domain terms (网格员, 积分商城, 物业费 …)
stay whole. Nothing here touches the network: jieba ships its dictionary.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from pathlib import Path

import jieba

DICT_PATH = Path(__file__).parent / "data" / "community_dict.txt"

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None

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


def tokenizer() -> jieba.Tokenizer:
    """The process-wide jieba tokenizer with the community dictionary loaded."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                tok = jieba.Tokenizer()
                tok.initialize()
                for word, freq, tag in load_user_words():
                    tok.add_word(word, freq, tag)
                _tokenizer = tok
    return _tokenizer


def add_words(words: list[str]) -> None:
    """Teach the tokenizer extra words (course names, merchant names from lookup lists)."""
    tok = tokenizer()
    for word in words:
        if word:
            tok.add_word(word)


def cut(text: str, normalized: bool = False, hmm: bool = True) -> list[str]:
    """Normalised jieba tokens without whitespace-only pieces.

    ``hmm=False`` keeps to dictionary words (no HMM guessing of unknown words) and is about a third
    faster; the intent features use it because their character n-grams already cover unknown words.
    """
    return [t for t in tokenizer().lcut(text if normalized else normalize(text), HMM=hmm) if t.strip()]
