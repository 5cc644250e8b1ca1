"""The merchants' verification (核销) page: a mobile-friendly form that posts the code to
``POST /api/v1/mall/verify`` with the merchant account's API token (kept in the browser)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

PAGE = Path(__file__).resolve().parent / "static" / "merchant.html"


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY"})


def setup(app: web.Application) -> None:
    app.router.add_get("/merchant", page)
