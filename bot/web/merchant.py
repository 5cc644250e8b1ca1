"""The merchants' verification (核销) page: a mobile-friendly form that posts the code to
``POST /api/v1/mall/verify`` with the merchant account's API token (kept in the browser); and
``/merchant/qr.png?code=…``, a QR image of a redemption code for the pages to show."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from bot import qrcodes

PAGE = Path(__file__).resolve().parent / "static" / "merchant.html"
CODE = re.compile(r"[A-Za-z0-9-]{4,32}")


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY"})


async def qr(request: web.Request) -> web.Response:
    """A PNG QR code of ``code`` (letters, digits and dashes only); it encodes the text given, nothing else."""
    code = request.query.get("code", "").strip()
    if not CODE.fullmatch(code):
        return web.json_response({"error": "code must be 4 to 32 letters, digits or dashes"}, status=400)
    return web.Response(
        body=qrcodes.png(code.upper()), content_type="image/png", headers={"Cache-Control": "no-store"}
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/merchant", page)
    app.router.add_get("/merchant/qr.png", qr)
