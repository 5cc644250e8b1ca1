"""Mounts the web pages on the application (called by ``bot.app.create_app``).

The resident simulator exists only in demo/simulator mode (``BOT_SIMULATOR=1`` or
``python -m bot serve --demo``): it needs no API token, so it must never be mounted otherwise, and
only on loopback unless ``BOT_SIMULATOR_PUBLIC=1``.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import SETTINGS
from bot.config import ConfigError


def setup(app: web.Application, api: web.Application | None = None) -> None:
    from bot.web import console, merchant

    merchant.setup(app)  # coupon codes' QR images
    console.setup(app, api)  # the staff console, its login and the merchants' page (/merchant)
    if app[SETTINGS].simulator:
        from bot.web import simulator

        problem = simulator.exposure_problem(app[SETTINGS])
        if problem is not None:  # `serve` says so before starting; this guards other ways in
            raise ConfigError(problem)
        simulator.setup(app)
