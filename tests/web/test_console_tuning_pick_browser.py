"""The review queue's intent list starts on no intent when the bot has no suggestion: the first
intent (反映问题) preselected turned one hasty click on 标注为训练样例 into a complaint example of
whatever the group said. In real Chromium: labelling without a choice sends nothing and says what
to choose; 噪音，不学 needs no intent. Likewise the knowledge queue's list of entries."""

from __future__ import annotations

import pytest

from tests.web.console_util import YUN, say, start_console
from tests.web.test_console_browser import PHONE, TIMEOUT, log_in, open_page
from tests.web.test_console_validation_browser import said, watch_posts

pytestmark = pytest.mark.browser

LOST = "我家鹦鹉飞走了咋办"  # not understood: in the queue without a suggestion
UNKNOWN = "小区健身房晚上几点关门"  # a question the knowledge base has no entry for


async def test_labelling_needs_an_intent_chosen(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, YUN)
    assert await say(svc, "o_tuning_pick_0001", LOST)
    assert await say(svc, "o_tuning_pick_0002", UNKNOWN)
    context, page, problems = await open_page(browser, PHONE)
    posts = watch_posts(page)
    await log_in(page, svc.base, "yun")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/tuning")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    card = page.locator("section.group", has_text=LOST)
    assert await card.locator("select[name=intent]").input_value() == ""
    assert await said(page, f"section.group:has-text('{LOST}') button[value=intent]", posts) == ["请选择意图。"]

    # 噪音，不学 needs no intent
    await card.locator("button[value=noise]").click()
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert "已标为噪音1条" in await page.inner_text("main")
    assert await page.locator("section.group", has_text=LOST).count() == 0

    # the knowledge queue: no entry preselected (the first, an unrelated one, took the phrasing)
    await page.goto(f"{svc.base}/console/tuning?kind=knowledge")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    card = page.locator("section.group", has_text=UNKNOWN)
    assert await card.locator("select[name=entry_id]").input_value() == ""
    button = f"section.group:has-text('{UNKNOWN}') button[value=phrasing]"
    assert await said(page, button, posts) == ["请选择已有条目。"]
    await card.locator("button[value=noise]").click()
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert await page.locator("section.group", has_text=UNKNOWN).count() == 0
    assert not problems, problems
    await context.close()
