"""The staff console in real Chromium: login, a resident's 转人工 appearing live, claim → reply
(through the fake WeChat API) → the bot silent → release → the bot answers again, the 48-hour
refusal, a ticket answered from the board with the resident notified, a staff member refused
another department's ticket, admins setting up a merchant and the merchant verifying a coupon on a
phone. With BOT_UPDATE_SCREENSHOTS=1 (``make screenshots``) the main pages go to docs/screenshots/."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.clock import Clock
from bot.services import coupons, points, reports
from bot.services import tickets as ticket_svc
from bot.services.dispatch import rules_for
from bot.storage.db import Database
from bot.storage.models import Coupon, Resident
from tests.conftest import REPO
from tests.web.console_util import LI, PASSWORD, ZHANG, say, start_console, wait_sent

pytestmark = pytest.mark.browser

SHOTS = REPO / "docs" / "screenshots"
TIMEOUT = 20_000
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


async def open_page(browser: Any, viewport: dict[str, int], **kw: Any) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(locale="zh-CN", viewport=viewport, **kw)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # Refused requests the test makes on purpose (401, 403, 409) are logged by Chromium as errors.
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    return context, page, problems


async def log_in(page: Any, base: str, name: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


async def shot(page: Any, name: str) -> None:
    """Screenshots for the docs, only when asked for (``make screenshots``): a test run leaves the
    tree as it found it."""
    if os.environ.get("BOT_UPDATE_SCREENSHOTS") != "1":
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


async def test_handoff_claim_reply_release_and_48_hours(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    context, page, problems = await open_page(browser, LAPTOP)

    # A wrong password, then the right one.
    await log_in(page, svc.base, "zhang", "not-the-password")
    await page.locator(".error", has_text="用户名或密码不正确").wait_for(timeout=TIMEOUT)
    await shot(page, "login")
    await log_in(page, svc.base, "zhang")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)

    # A resident asks for a person: the row appears without a reload.
    openid = "o_console_browser_0001"
    await say(svc, openid, "你好")
    answer = await say(svc, openid, "转人工")
    assert answer
    row = page.locator("#handoff-rows tr.handoff", has_text="转人工")
    await row.wait_for(timeout=TIMEOUT)
    await shot(page, "handoffs")

    # Claim (查看并接管 opens the conversation taken over), reply: the fake WeChat API receives
    # the customer-service message.
    await row.locator(".button", has_text="查看并接管").click()
    await page.locator("#claim-state", has_text="zhang 接管中").wait_for(timeout=TIMEOUT)
    await page.fill("#reply-text", "您好，我是社区的张主管，请问遇到了什么问题？")
    await page.click("#send-btn")
    await wait_sent(svc, openid, "我是社区的张主管")

    # While claimed the bot is silent; the resident's message shows in the console live.
    assert await say(svc, openid, "楼道的灯坏了三天了") is None
    await page.locator("#messages .msg.in", has_text="楼道的灯坏了三天了").wait_for(timeout=TIMEOUT)
    await page.locator("#messages .msg.custom", has_text="张主管").wait_for(timeout=TIMEOUT)
    await shot(page, "conversation")

    # Release: the bot answers again.
    await page.click("#release-btn")
    await page.locator("#claim-state", has_text="机器人正在回复").wait_for(timeout=TIMEOUT)
    assert await say(svc, openid, "你好")

    # The 48-hour window: the resident's last message long ago, a reply is refused with the reason.
    await page.click("#claim-btn")
    db = Database(sqlite_url)
    try:
        async with db.transaction() as session:
            await session.execute(update(Resident).where(Resident.openid == openid)
                                  .values(last_inbound_at=Clock().now() - timedelta(hours=49)))
    finally:
        await db.dispose()
    before = len(await svc.fake_sent(openid))
    await page.reload()
    await page.locator("#window-state", has_text="已关闭").wait_for(timeout=TIMEOUT)
    await page.fill("#reply-text", "这条发不出去")
    await page.click("#send-btn")
    await page.locator("#error", has_text="超过48小时").wait_for(timeout=TIMEOUT)
    await asyncio.sleep(0.5)
    assert len(await svc.fake_sent(openid)) == before
    assert not problems, problems
    await context.close()


async def test_a_message_between_rendering_and_the_live_stream_is_shown(browser, service_factory, sqlite_url, fake_api):
    # The live stream starts after the page is rendered; a message stored in between is not an
    # event of the stream, and must still appear without a reload.
    svc = await start_console(service_factory, sqlite_url, fake_api, ("wang", "staff", {}))
    openid = "o_console_browser_gap_01"
    await say(svc, openid, "你好")
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "wang")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/inbox")
    await page.locator("#inbox-rows tr[data-resident] a").first.click()
    await page.wait_for_url("**/console/conversations/*", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)

    held = asyncio.Event()
    release = asyncio.Event()

    async def hold_events(route: Any) -> None:
        held.set()
        await release.wait()
        await route.continue_()

    await page.route("**/console/events", hold_events)
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    await asyncio.wait_for(held.wait(), TIMEOUT / 1000)
    await say(svc, openid, "我家水管漏水了")  # rendered already, the stream not yet started
    release.set()
    await page.locator("#messages .msg.in", has_text="我家水管漏水了").wait_for(timeout=TIMEOUT)
    assert not problems, problems
    await context.close()


async def make_ticket(url: str, openid: str, text: str, category: str) -> tuple[int, str]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            resident = Resident(openid=openid, building="3号楼", last_inbound_at=Clock().now())
            session.add(resident)
        async with db.session() as session:
            resident = (await session.scalars(select(Resident).where(Resident.openid == openid))).one()
        report = await reports.create(
            db, ticket_svc.NewTicket(text=text, resident=resident, building="3号楼", category=category,
                                     confidence=1.0, contact_phone="13912345678"),
            rules_for(None), Clock().now())
        return report.id, report.number
    finally:
        await db.dispose()


async def test_ticket_answered_on_the_board_and_other_departments_refused(
    browser, service_factory, sqlite_url, fake_api
):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    openid = "o_console_ticket_0001"
    ticket_id, number = await make_ticket(sqlite_url, openid, "3号楼2单元楼道灯不亮，晚上很黑", "物业服务")
    other_id, _ = await make_ticket(sqlite_url, "o_console_ticket_0002", "小区门口垃圾没人清运", "环境卫生")
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "li")
    await page.goto(f"{svc.base}/console/tickets?status=dispatched")
    row = page.locator("#ticket-list tr", has_text=number)
    await row.wait_for(timeout=TIMEOUT)
    assert "138****" not in await page.content() and "13912345678" not in await page.content()
    assert await page.locator("#ticket-list tr", has_text="垃圾").count() == 0  # another department's
    await shot(page, "tickets")
    await row.locator("a").first.click()
    await page.wait_for_url(f"**/console/tickets/{ticket_id}", timeout=TIMEOUT)
    options = await page.locator("#action option").evaluate_all("els => els.map(e => e.value)")
    assert "answer" in options and "close" not in options and "reject" not in options
    await page.select_option("#action", "answer")
    await page.fill("#resolution", "已更换楼道灯泡，请您查看。")
    await shot(page, "ticket")
    await page.click("#transition-btn")
    await page.locator("#ticket-status", has_text="已答复").wait_for(timeout=TIMEOUT)
    await page.locator("#timeline", has_text="已更换楼道灯泡").wait_for(timeout=TIMEOUT)
    await wait_sent(svc, openid, "已办结")

    # Another department's ticket: refused, by page and by post.
    response = await page.goto(f"{svc.base}/console/tickets/{other_id}")
    assert response is not None and response.status == 403
    assert "不属于您的部门" in await page.content()
    assert not problems, problems
    await context.close()


async def test_admin_sets_up_a_merchant_who_verifies_on_a_phone(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ("root", "admin", {}))
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "root")
    await page.goto(f"{svc.base}/console/merchants")
    form = page.locator("form[action='/console/merchants']")
    await form.locator("input[name=name]").fill("老王理发店")
    await form.locator("input[name=address]").fill("幸福路12号")
    await form.locator("button").click()
    card = page.locator("section[data-merchant]", has_text="老王理发店")
    await card.wait_for(timeout=TIMEOUT)
    await card.locator("summary", has_text="新增优惠券").click()
    coupon_form = card.locator("form[action$='/coupons']")
    await coupon_form.locator("input[name=title]").fill("理发立减10元")
    await coupon_form.locator("input[name=price]").fill("50")
    await coupon_form.locator("input[name=stock]").fill("20")
    await coupon_form.locator("button").click()
    await page.locator("section[data-merchant]", has_text="理发立减10元").wait_for(timeout=TIMEOUT)
    card = page.locator("section[data-merchant]", has_text="老王理发店")
    await card.locator("summary", has_text="新增商户账号").click()
    account_form = card.locator("form[action$='/accounts']")
    await account_form.locator("input[name=name]").fill("shop")
    await account_form.locator("input[name=password]").fill(PASSWORD)
    await account_form.locator("button").click()
    await page.locator(".ok", has_text="已创建商户账号 shop").wait_for(timeout=TIMEOUT)
    await shot(page, "merchants")
    await context.close()

    # A resident redeems the coupon (through the services, as the chat does).
    db = Database(sqlite_url)
    now = Clock().now()
    try:
        async with db.transaction() as session:
            session.add(Resident(openid="o_console_coupon_0001", last_inbound_at=now))
        async with db.session() as session:
            resident_id = (await session.scalars(select(Resident.id))).one()
            coupon_id = (await session.scalars(select(Coupon.id))).one()
        async with db.transaction() as session:
            await points.adjust(session, resident_id=resident_id, amount=100, actor="test", note="测试",
                                request_key="console-test-points", now=now)
        redemption = await coupons.redeem(db, resident_id=resident_id, coupon_id=coupon_id,
                                          request_key="console-test-redeem", now=now)
        code = redemption.issued.code
    finally:
        await db.dispose()

    context, page, problems = await open_page(browser, PHONE, is_mobile=True, has_touch=True)
    await page.goto(f"{svc.base}/merchant")
    await page.wait_for_url("**/login**", timeout=TIMEOUT)
    await page.fill("#name", "shop")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/merchant", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    await page.fill("#code", "WRONG999")
    await page.click("#verify button")
    await page.locator("#result.bad", has_text="本店没有这个券码").wait_for(timeout=TIMEOUT)
    await page.fill("#code", code.lower())
    await page.click("#verify button")
    await page.locator("#result.ok", has_text="核销成功").wait_for(timeout=TIMEOUT)
    await page.locator("#today-count", has_text="1").wait_for(timeout=TIMEOUT)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    await shot(page, "merchant-phone")
    assert not problems, problems
    await context.close()


async def test_canned_reply_edited_then_picked_fills_the_reply(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    openid = "o_console_canned_b_01"
    assert await say(svc, openid, "转人工")
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)

    # Add one, edit its text on the page.
    await page.goto(f"{svc.base}/console/canned")
    add = page.locator("form.card", has_text="新增快捷回复")
    await add.locator("input[name=title]").fill("维修预约")
    await add.locator("textarea[name=text]").fill("师傅明天上午上门，请家里留人。")
    await add.locator("button").click()
    mine = page.locator("form.card:has(input[name=title][value='维修预约'])")
    await mine.wait_for(timeout=TIMEOUT)
    await mine.locator("textarea[name=text]").fill("师傅明天下午两点上门，请家里留人。")
    await mine.locator("button", has_text="保存").click()
    await page.wait_for_url("**/console/canned?done=saved", timeout=TIMEOUT)
    assert await page.locator("form.card:has(input[name=title][value='维修预约']) textarea").input_value() \
        == "师傅明天下午两点上门，请家里留人。"

    # Picking it in a conversation fills the reply, which is sent as written.
    await page.goto(f"{svc.base}/console/handoffs")
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)  # the rows' first refresh done
    await page.locator("#handoff-rows tr.handoff .button", has_text="查看并接管").first.click()
    await page.locator("#claim-state", has_text="li 接管中").wait_for(timeout=TIMEOUT)
    await page.select_option("#canned-select", label="维修预约")
    assert await page.input_value("#reply-text") == "师傅明天下午两点上门，请家里留人。"
    await page.click("#send-btn")
    await wait_sent(svc, openid, "师傅明天下午两点上门")
    assert not problems, problems
    await context.close()
