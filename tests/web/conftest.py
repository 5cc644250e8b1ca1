"""Fixtures for the web pages: a real Chromium (Debian's, never downloaded) driven by Playwright."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.handler.router import Router, Text
from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SLOW_TEXT = "慢一点"
SLOW_ANSWER = "久等了，这是您的答复。"


def slow_router(delay: float = 1.0) -> Router:
    """Answers SLOW_TEXT after ``delay`` seconds: with a short reply budget the answer is deferred
    and arrives as a customer-service message through the fake WeChat API."""
    router = Router("slow-web-test")

    @router.message(Text(SLOW_TEXT))
    async def slow(ctx: Any) -> str:
        await asyncio.sleep(delay)
        return SLOW_ANSWER

    return router


def need_chromium() -> None:
    """Skip without Debian's chromium on a bare machine; in CI its absence is a failure."""
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk, or make browser-deps)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    need_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
