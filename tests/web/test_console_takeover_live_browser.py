"""A conversation's page follows who holds it, live, in real Chromium: a colleague's claim, their
release, a supervisor giving it back to the bot while the user is writing a reply (the reply is
kept, disabled, and the page says it was not sent), and the inbox's 接管中 tags."""

from __future__ import annotations

import pytest

from tests.web.console_util import add_users, login, say
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


async def test_a_conversation_page_follows_who_holds_it(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("wang", "staff", {}), ("li", "staff", {}), ("zhang", "supervisor", {}))
    openid = "o_takeover_live_0001"
    assert await say(svc, openid, "转人工")

    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "wang")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.locator("#handoff-rows tr.handoff a", has_text="只查看").first.click()  # a look, no takeover
    await page.wait_for_url("**/console/conversations/*", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    rid = await page.get_attribute("body", "data-resident")
    assert await page.locator("#claim-btn").count() == 1
    assert "接管会话后可以回复居民" in await page.inner_text("#reply-off")

    # A colleague claims it: who holds it shows, the claim button goes, no reply form for wang.
    li = await login(svc.http, svc.base, "li")
    status, _, _ = await li.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    await page.locator("#claim-state", has_text="li 接管中").wait_for(timeout=TIMEOUT)
    await page.locator("#claim-changed", has_text="li 刚刚接管了这个会话").wait_for(timeout=TIMEOUT)
    assert await page.locator("#claim-btn").count() == 0
    assert await page.locator("#release-btn").count() == 0  # staff end only their own takeover
    assert await page.locator("#reply-text").count() == 0
    assert "li 正在接管这个会话" in await page.inner_text("#reply-off")

    # The colleague gives it back to the bot: wang may claim it again.
    status, _, _ = await li.post(f"/console/conversations/{rid}/release")
    assert status == 303
    await page.locator("#claim-state", has_text="机器人正在回复").wait_for(timeout=TIMEOUT)
    await page.locator("#claim-changed", has_text="交还给机器人").wait_for(timeout=TIMEOUT)
    await page.click("#claim-btn")
    await page.locator("#claim-state", has_text="wang 接管中").wait_for(timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)

    # The resident writes while wang types a reply: the box keeps its text and the focus.
    await page.fill("#reply-text", "您好，我马上")
    assert await say(svc, openid, "楼下的路灯不亮了") is None  # held: the bot is silent
    await page.locator("#messages .msg.in", has_text="楼下的路灯不亮了").wait_for(timeout=TIMEOUT)
    await page.wait_for_timeout(1000)  # the status line's refresh after the message
    assert await page.evaluate("document.activeElement && document.activeElement.id") == "reply-text"
    await page.type("#reply-text", "帮您联系物业")

    # A supervisor ends wang's takeover while wang writes: the draft stays, disabled, and is not sent.
    zhang = await login(svc.http, svc.base, "zhang")
    _, seen, _ = await zhang.get(f"/console/conversations/{rid}")
    assert "结束 wang 的人工服务" in seen  # the supervisor's button says whose takeover it ends
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/release")
    assert status == 303
    await page.locator("#claim-state", has_text="机器人正在回复").wait_for(timeout=TIMEOUT)
    await page.locator("#claim-changed", has_text="您写的回复没有发出").wait_for(timeout=TIMEOUT)
    assert await page.input_value("#reply-text") == "您好，我马上帮您联系物业"
    assert await page.is_disabled("#reply-text") and await page.is_disabled("#send-btn")
    # ... and looks it: a greyed box and button, not a green 发送 that does nothing.
    assert float(await page.eval_on_selector("#send-btn", "b => getComputedStyle(b).opacity")) < 0.6
    assert await page.eval_on_selector("#reply-text", "t => getComputedStyle(t).backgroundColor") != "rgb(255, 255, 255)"
    assert await page.locator("#claim-btn").count() == 1

    # The supervisor takes it: the page says who, the kept draft still cannot be sent.
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    await page.locator("#claim-state", has_text="zhang 接管中").wait_for(timeout=TIMEOUT)
    assert "zhang 正在接管这个会话" in await page.inner_text("#reply-off")
    assert await page.is_disabled("#send-btn")
    assert not any("我马上帮您联系物业" in str(m) for m in await svc.fake_sent(openid))

    # The inbox's tags follow too.
    await page.goto(f"{svc.base}/console/inbox")
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    row = page.locator(f"#inbox-rows tr[data-resident='{rid}']")
    await row.locator(".tag", has_text="zhang 接管中").wait_for(timeout=TIMEOUT)
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/release")
    assert status == 303
    await row.locator(".tag", has_text="接管中").wait_for(state="detached", timeout=TIMEOUT)
    assert not problems, problems
    await context.close()
