"""QR images of short texts (redemption codes) as PNG bytes, made locally with segno."""

from __future__ import annotations

import io

import segno

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT = 256


def png(text: str, *, scale: int = 8, border: int = 4) -> bytes:
    """A PNG of ``text`` as a QR code (error correction M, never a Micro QR code)."""
    if not text or len(text) > MAX_TEXT:
        raise ValueError(f"QR text must be 1 to {MAX_TEXT} characters")
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()
