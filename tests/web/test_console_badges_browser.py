"""The navigation's 转人工 badge in real Chromium: it shows how many residents wait for a person
when any page opens, and follows the queue live (a claim takes one off; a claim is no new request);
the live stream behind it, left as it starts, logs no error."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from tests.web.console_util import LI, ZHANG, login, say, start_console
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


async def test_the_badge_counts_the_residents_waiting(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI, ZHANG)
    assert await say(svc, "o_badge_0001", "转人工")
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/tickets")
    badge = page.locator("#handoff-count")
    await page.locator("#handoff-count:visible", has_text=re.compile(r"^1$")).wait_for(timeout=TIMEOUT)

    assert await say(svc, "o_badge_0002", "转人工")
    await page.locator("#handoff-count:visible", has_text=re.compile(r"^2$")).wait_for(timeout=TIMEOUT)

    # A supervisor takes one over elsewhere: one resident still waits.
    zhang = await login(svc.http, svc.base, "zhang")
    _, queue, _ = await zhang.get("/console/handoffs")
    rid = re.search(r'data-resident="(\d+)"', queue)
    assert rid
    status, _, _ = await zhang.post(f"/console/conversations/{rid.group(1)}/claim")
    assert status == 303
    await page.locator("#handoff-count:visible", has_text=re.compile(r"^1$")).wait_for(timeout=TIMEOUT)
    status, _, _ = await zhang.post(f"/console/conversations/{rid.group(1)}/release")
    assert status == 303
    await page.locator("#handoff-count:visible", has_text=re.compile(r"^1$")).wait_for(timeout=TIMEOUT)
    assert await badge.inner_text() == "1"
    assert not problems, problems
    await context.close()


async def test_a_page_left_while_its_stream_starts_is_no_error(service_factory, sqlite_url, fake_api, caplog):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    li = await login(svc.http, svc.base, "li")
    caplog.set_level(logging.ERROR)
    for _ in range(5):  # the console's live stream, left as soon as its headers arrive
        async with svc.http.get(svc.base + "/console/events", headers=li.cookie) as r:
            assert r.status == 200
        await asyncio.sleep(0.3)
    await asyncio.sleep(0.5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
