"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from aiohttp import web

from bot.config import Settings
from bot.runtime import Runtime

SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)
