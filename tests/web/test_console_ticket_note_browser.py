"""A ticket's 说明 says who reads it, in real Chromium: with 派单, 接单, 开始处理 and 上报督办 the
resident gets it in the progress message (会随进展推送给居民); with 答复办结, 不予受理, 重新办理 and
完结 the push is that action's own text and the note stays on the timeline (只记入处理记录). The
hint follows the action chosen, and what reaches the resident's WeChat is what the hint said."""

from __future__ import annotations

import pytest

from tests.web.console_util import ZHANG, login, reported_ticket, sent_texts, start_console, wait_sent
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser

OPENID = "o_ticket_note_0001"


async def hint(page) -> str:
    """The visible hint beside 说明."""
    told, kept = page.locator("#note-told"), page.locator("#note-kept")
    assert await told.count() == 1 and await kept.count() == 1
    shown = [await h.inner_text() for h in (told, kept) if await h.is_visible()]
    assert len(shown) == 1, shown
    return shown[0]


async def test_the_note_says_whether_the_resident_reads_it(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, number = await reported_ticket(svc, zhang, OPENID, "5号楼2单元楼道灯坏了好几天了", phone="不留")
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "zhang")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(svc.base + ticket)
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)

    await page.select_option("#action", "dispatch")
    assert await hint(page) == "会随进展推送给居民"
    await page.select_option("#action", "reject")
    assert await hint(page) == "只记入处理记录，居民看不到"
    await page.select_option("#action", "dispatch")
    await page.select_option("#department", "物业服务中心")
    await page.fill("#note", "电工明天上午上门")
    await page.click("#transition-btn")
    await page.wait_for_selector("#notice", timeout=TIMEOUT)
    await wait_sent(svc, OPENID, "工作人员说明：电工明天上午上门")

    # The page reloaded on 接单 (the next step): its hint is right before any change of action.
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)
    assert await page.locator("#action").input_value() == "accept"
    assert await hint(page) == "会随进展推送给居民"
    await page.select_option("#action", "answer")
    assert await hint(page) == "只记入处理记录，居民看不到"
    await page.fill("#resolution", "已更换5号楼2单元楼道灯泡，恢复照明。")
    await page.fill("#note", "换了两个灯泡，材料费走物业维修基金")
    await page.click("#transition-btn")
    await page.wait_for_selector("#notice", timeout=TIMEOUT)
    texts = await wait_sent(svc, OPENID, "已更换5号楼2单元楼道灯泡")
    assert not any("维修基金" in t for t in texts), texts  # as the hint said
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)
    assert "维修基金" in await page.inner_text("#ticket-main, main")  # kept on the timeline
    assert number and not any("维修基金" in t for t in await sent_texts(svc, OPENID))
    assert not problems, problems
    await context.close()
