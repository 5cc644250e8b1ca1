"""The navigation's 转人工 badge in real Chromium: it shows how many residents wait for a person
when any page opens, and follows the queue live (a claim takes one off; a claim is no new request)."""

from __future__ import annotations

import re

import pytest

from tests.web.console_util import add_users, login, say
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


async def test_the_badge_counts_the_residents_waiting(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("li", "staff", {"department": "物业服务中心"}), ("zhang", "supervisor", {}))
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
