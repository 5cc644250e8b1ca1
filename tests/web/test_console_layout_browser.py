"""The console's forms in real Chromium on a phone and a laptop: a radio button or checkbox sits on
the line of its words (the note-or-reply choice on a ticket, 紧急 on a ticket made from a
conversation), and no page scrolls sideways; the dashboard's figures sit two a row on a small phone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.console_util import add_users, say
from tests.web.test_console_browser import LAPTOP, PHONE, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser
SMALL_PHONE = {"width": 360, "height": 740}


async def same_line(page: Any, label: Any) -> None:
    """The control and its words share one line: the label is one line high and the control sits
    beside the words, not above them."""
    box = await label.bounding_box()
    control = await label.locator("input").bounding_box()
    assert box and control
    line = await label.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 24")
    text = await label.inner_text()
    assert box["height"] < 1.6 * line, f"{text!r} takes {box['height']}px: the control is on a line of its own"
    assert control["x"] < box["x"] + 4 and control["width"] < box["width"] / 2, (text, box, control)


async def test_choices_sit_beside_their_words(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("zhang", "supervisor", {}))
    assert "联系电话" in (await say(svc, "o_layout_choice_0001", "3号楼2单元楼道灯坏了好几天了") or "")  # 物业服务 visits
    reply = await say(svc, "o_layout_choice_0001", "不留")
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    for viewport in (PHONE, LAPTOP):
        context, page, problems = await open_page(browser, viewport)
        await log_in(page, svc.base, "zhang")
        await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
        await page.goto(f"{svc.base}/console/tickets?number={number.group(0)}")
        await page.wait_for_url("**/console/tickets/*", timeout=TIMEOUT)
        for words in ("内部备注", "公开回复"):
            await same_line(page, page.locator("label", has_text=words))
        assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        await page.locator("a", has_text="查看居民会话").click()
        await page.wait_for_url("**/console/conversations/*", timeout=TIMEOUT)
        await page.locator("summary", has_text="从会话创建工单").click()
        await same_line(page, page.locator("label", has_text="紧急"))
        assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        assert not problems, problems
        await context.close()


async def test_the_dashboards_figures_sit_two_a_row_on_a_small_phone(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("yun", "operator", {}))
    context, page, problems = await open_page(browser, SMALL_PHONE)
    await log_in(page, svc.base, "yun")
    await page.wait_for_url(lambda url: "/login" not in url, timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/dashboard")
    cards = page.locator("#section-tickets .figure")
    first, second = await cards.nth(0).bounding_box(), await cards.nth(1).bounding_box()
    assert first and second
    assert abs(first["y"] - second["y"]) < 2 and second["x"] > first["x"] + first["width"] - 1, (first, second)
    assert await page.evaluate("document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
    assert not problems, problems
    await context.close()
