"""Numbers typed with a Chinese input method in full-width mode (１０) are numbers: the console's
own check said 积分数只能填数字 for ten points typed that way (the server reads them as 10). In real
Chromium: the field is rewritten in ASCII digits and the form goes through."""

from __future__ import annotations

import pytest

from tests.web.console_util import LI, login, start_console, waiting_resident
from tests.web.test_console_browser import PHONE, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


async def test_full_width_digits_are_taken(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    rid = await waiting_resident(svc, await login(svc.http, svc.base, "li"), "o_fullwidth_digits_0001")
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/residents/{rid}/points")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    await page.fill("#amount", "１０")
    await page.fill("#points-told", "参加楼道清扫")
    await page.locator("form:has(#amount) button").last.click()
    await page.wait_for_url("**/points?done=add&n=10*", timeout=TIMEOUT)
    assert await page.locator(".field-error").count() == 0
    assert not problems, problems
    await context.close()
