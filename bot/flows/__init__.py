"""Conversation flows: one module per conversation, each with its own router and table of texts.

``build_router()`` includes them in order; a new flow is a new module added to ``FLOWS``.
"""

from __future__ import annotations

import importlib

from bot.handler.router import Router

FLOWS = (
    "bot.flows.urgent",
    "bot.flows.reports",
    "bot.flows.points",
    "bot.flows.events",
    "bot.flows.media",
    "bot.flows.complaint",
    "bot.flows.coupons",
    "bot.flows.courses",
    "bot.flows.clarify",
    "bot.flows.query",
    "bot.flows.smalltalk",
    "bot.flows.handoff",
    "bot.flows.fallback",
    "bot.flows.menu",
    "bot.flows.help",
)


def build_router() -> Router:
    root = Router("root")
    for name in FLOWS:
        module = importlib.import_module(name)
        root.include(module.router)
    return root
