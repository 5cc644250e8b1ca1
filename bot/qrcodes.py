"""QR images of short texts (redemption codes) as PNG bytes: the code made with segno, the PNG
written here (one bit per pixel, compressed rows)."""

from __future__ import annotations

import struct
import zlib

import segno

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT = 256
# The data mask is fixed instead of chosen by scoring all eight (ISO/IEC 18004 7.8.3), which is
# most of segno's work for a code as short as a redemption code's (about 3 ms of 4 on this
# machine). Any mask decodes alike; over 300 redemption codes mask 6 scored on average 44 penalty
# points above the best of the eight (the worst of them 70), and at most 139.
MASK = 6


def png(text: str, *, scale: int = 8, border: int = 4) -> bytes:
    """A PNG of ``text`` as a QR code (error correction M or better, never a Micro QR code), each
    module ``scale`` pixels square, ``border`` light modules around it: black and white, one bit
    per pixel, the same pixels as segno's own PNG writer gives.

    segno's writer makes every pixel of every row in Python (about 1 ms for a redemption code at
    scale 8); here each row of modules becomes its pixel row once, repeated ``scale`` times."""
    if not text or len(text) > MAX_TEXT:
        raise ValueError(f"QR text must be 1 to {MAX_TEXT} characters")
    if not 1 <= scale <= 64 or not 0 <= border <= 16:
        raise ValueError("scale must be 1 to 64 and border 0 to 16")
    matrix = segno.make(text, error="m", micro=False, mask=MASK).matrix  # rows of 1 (dark) and 0
    size = (len(matrix) + 2 * border) * scale
    width = (size + 7) // 8  # bytes per pixel row; a grey-scale bit is 1 for white
    margin = "1" * (border * scale)

    def pixels(bits: str) -> bytes:
        return b"\x00" + int(bits.ljust(width * 8, "1"), 2).to_bytes(width, "big")  # filter 0: none

    blank = pixels("1" * size) * (border * scale)
    rows = [
        pixels(margin + "".join("0" * scale if dark else "1" * scale for dark in row) + margin) * scale
        for row in matrix
    ]
    data = zlib.compress(blank + b"".join(rows) + blank)
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)  # 1-bit grey, no interlace
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
