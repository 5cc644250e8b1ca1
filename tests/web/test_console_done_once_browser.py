"""What a ticket's action did is said once, in real Chromium: at the top of the page it reloads,
and not again when staff reload that page (the address loses its ?done=)."""

from __future__ import annotations

import pytest

from tests.web.console_util import ZHANG, login, reported_ticket, start_console
from tests.web.test_console_browser import PHONE, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


async def test_a_ticket_action_is_confirmed_once(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, _ = await reported_ticket(svc, zhang, "o_done_once_0001", "5号楼楼道灯坏了好几天了", phone="不留")
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "zhang")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(svc.base + ticket)
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)
    assert await page.locator("#notice").count() == 0
    await page.select_option("#action", "dispatch")
    await page.select_option("#department", "物业服务中心")
    await page.click("#transition-btn")
    await page.wait_for_selector("#notice", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)
    assert await page.inner_text("#notice") == "已派单。"
    box = await page.locator("#notice").bounding_box()
    assert box and box["y"] < PHONE["height"]  # seen without scrolling
    assert "done=" not in page.url and page.url.endswith(ticket), page.url
    await page.reload()
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)
    assert await page.locator("#notice").count() == 0  # said once, not on every reload
    assert not problems, problems
    await context.close()
