"""The pages' icons and indicators do not rely on a font having them: no emoji or other pictograph
in the consoles' and the simulator's templates, scripts and styles (headless Chromium on a server
without a colour-emoji font draws them as tofu boxes; icons are inline SVG or CSS)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO

WEB = REPO / "bot" / "web"


def pictographs(text: str) -> list[str]:
    """Emoji, dingbats, miscellaneous symbols and technical pictographs (⏳ ⚙ ✖ 📍); arrows (← →),
    math (≡) and CJK punctuation are drawn by the CJK fonts and are left."""
    return sorted({c for c in text if 0x2300 <= ord(c) <= 0x23FF or 0x2600 <= ord(c) <= 0x27BF
                   or 0x2B00 <= ord(c) <= 0x2BFF or 0x1F000 <= ord(c) <= 0x1FAFF or ord(c) == 0xFE0F})


def sources() -> list[Path]:
    return sorted(p for p in WEB.rglob("*") if p.suffix in (".html", ".css", ".js", ".py") and "vendor" not in p.parts)


def test_no_pictographs_in_the_pages():
    found = {str(p.relative_to(REPO)): pictographs(p.read_text(encoding="utf-8")) for p in sources()}
    assert len(found) > 20
    assert not {path: chars for path, chars in found.items() if chars}
