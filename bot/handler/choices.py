"""Numbered choices: how residents answer "回复数字" questions (1, １, 第一个, 一, 1.)."""

from __future__ import annotations

import re

_CN = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_PATTERN = re.compile(r"^\s*(?:第)?\s*([0-9一二两三四五六七八九])\s*(?:个|项|条|号)?\s*[.。、,，!！)）]?\s*$")


def parse_choice(text: str, count: int) -> int | None:
    """The 1-based choice in ``text`` if it is one of ``1..count``, else None."""
    import unicodedata

    match = _PATTERN.match(unicodedata.normalize("NFKC", text or ""))
    if not match:
        return None
    token = match.group(1)
    number = int(token) if token.isdigit() else _CN[token]
    return number if 1 <= number <= count else None


def numbered(lines: list[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
