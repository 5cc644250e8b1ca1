"""Mounts the web pages on the application (called by ``bot.app.create_app``).

The resident simulator exists only in demo/simulator mode (``BOT_SIMULATOR=1`` or
``python -m bot serve --demo``): it needs no API token, so it must never be mounted otherwise.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import SETTINGS


def setup(app: web.Application) -> None:
    from bot.web import merchant

    merchant.setup(app)  # the merchants' coupon verification page (authenticated by API token)
    if app[SETTINGS].simulator:
        from bot.web import simulator

        simulator.setup(app)
