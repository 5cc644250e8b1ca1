"""The merchant's verification page in real Chromium says the API's refusals in Chinese: an account
without a merchant, and a page whose CSRF token went stale (the API's own words are English)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.console_util import add_users
from tests.web.test_console_browser import PHONE, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


async def verify(page: Any, code: str) -> str:
    await page.fill("#code", code)
    await page.click("#verify button")
    await page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT)
    text: str = await page.inner_text("#result")
    await page.evaluate("document.getElementById('result').hidden = true")
    return text


async def test_the_apis_refusals_are_said_in_chinese(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("boss", "admin", {}))
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "boss")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/merchant")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert await verify(page, "ABCD1234") == "这个账号没有关联商户，请联系社区管理员。"

    async def stale(route: Any) -> None:
        await route.continue_(headers={**route.request.headers, "x-csrf-token": "stale-token"})

    await page.route("**/api/v1/mall/verify", stale)
    assert await verify(page, "ABCD1234") == "页面已过期，请刷新页面后再核销。"
    assert not problems, problems
    await context.close()


async def test_a_short_or_empty_code_is_said_in_chinese_and_an_old_result_goes(browser, service_factory, sqlite_url,
                                                                                fake_api):
    # The browser's own validation bubbles speak the browser's language (English in headless
    # Chromium) and left the previous code's result on the page beside the new code.
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("boss", "admin", {}))
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "boss")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/merchant")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    await page.fill("#code", "ABCD1234")
    await page.click("#verify button")
    await page.locator("#result", has_text="没有关联商户").wait_for(timeout=TIMEOUT)
    await page.fill("#code", "ab")
    assert await page.locator("#result").is_hidden()
    await page.click("#verify button")
    await page.locator("#result", has_text="请输入完整的券码").wait_for(timeout=TIMEOUT)
    await page.fill("#code", "")
    await page.click("#verify button")
    await page.locator("#result", has_text="请输入顾客出示的券码").wait_for(timeout=TIMEOUT)
    assert not problems, problems
    await context.close()
