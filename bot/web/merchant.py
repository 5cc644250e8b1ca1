"""``/merchant/qr.png?code=…``, a QR image of a redemption code for the pages to show. The
merchants' verification page itself is the console's (``bot/web/console/merchant_page.py``): a
merchant account logs in like staff."""

from __future__ import annotations

import re

from aiohttp import web

from bot import qrcodes

CODE = re.compile(r"[A-Za-z0-9-]{4,32}")


async def qr(request: web.Request) -> web.Response:
    """A PNG QR code of ``code`` (letters, digits and dashes only); it encodes the text given, nothing else."""
    code = request.query.get("code", "").strip()
    if not CODE.fullmatch(code):
        return web.json_response({"error": "code must be 4 to 32 letters, digits or dashes"}, status=400)
    return web.Response(
        body=qrcodes.png(code.upper()), content_type="image/png", headers={"Cache-Control": "no-store"}
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/merchant/qr.png", qr)
