"""Tickets live in real Chromium: the board shows a resident's new report without a reload, and a
ticket's page follows what another staff member does to it (status, timeline, the actions that
are possible now, the usual next one first) without throwing away a form the user has started
filling in; a ticket sent to another department says so on the staff member's open page; a page
whose session ended (logout in another tab) says it is no longer live."""

from __future__ import annotations

import re

import pytest

from tests.web.console_util import LI, ZHANG, login, reported_ticket, say, start_console
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser

DEPARTMENT = "物业服务中心"


async def test_the_board_and_a_ticket_follow_changes_live(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG, LI)
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "zhang")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/tickets")
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    assert await page.locator("#ticket-list tr.empty").count() == 1

    # A resident reports: the row appears on the open board.
    answer = await say(svc, "o_live_tickets_0001", "5号楼2单元楼道的灯坏了好几天了，晚上很黑")
    if answer and "联系电话" in answer:  # 物业服务 visits: the phone is asked for first
        answer = await say(svc, "o_live_tickets_0001", "不留")
    assert answer and "GD" in answer, answer
    number = re.search(r"GD\d{8}-\d{4}", answer)
    assert number
    row = page.locator(f"#ticket-list tr[data-number='{number.group(0)}']")
    await row.wait_for(timeout=TIMEOUT)
    assert await page.locator("#ticket-list tr.empty").count() == 0

    # The supervisor opens it (dispatched to the department on arrival); the department accepts it
    # from another session: the page follows, and offers the usual next step first.
    await page.locator("td.status", has_text="已派单").first.wait_for(timeout=TIMEOUT)
    await row.locator("a").click()
    await page.wait_for_url("**/console/tickets/*", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    ticket_id = await page.get_attribute("body", "data-ticket")
    assert await page.input_value("#action") == "accept"
    li = await login(svc.http, svc.base, "li")
    status, _, _ = await li.post(f"/console/tickets/{ticket_id}/transition", {"action": "accept"})
    assert status == 303
    await page.locator("#ticket-status", has_text="已接单").wait_for(timeout=TIMEOUT)
    await page.locator("#timeline li", has_text="接单").wait_for(timeout=TIMEOUT)
    await page.locator("#action option[value='start']").wait_for(state="attached", timeout=TIMEOUT)
    assert "可以做的操作已经更新" in await page.inner_text("#ticket-changed")
    assert await page.input_value("#action") == "start"  # the usual next step is offered first

    # A note started here is kept when the department starts work meanwhile: the page says so.
    await page.fill("#note", "已电话联系居民")
    status, _, _ = await li.post(f"/console/tickets/{ticket_id}/transition", {"action": "start"})
    assert status == 303
    await page.locator("#ticket-status", has_text="处理中").wait_for(timeout=TIMEOUT)
    await page.locator("#ticket-changed", has_text="还没有提交").wait_for(timeout=TIMEOUT)
    assert await page.input_value("#note") == "已电话联系居民"

    # A refused form's page (at the form's address) follows the ticket too, keeping the form.
    await page.goto(f"{svc.base}/console/tickets/{ticket_id}")
    await page.select_option("#action", "answer")
    await page.fill("#note", "答复前先核实")
    # The page's own check would stop the empty answer before sending: the server's refusal is sent.
    await page.evaluate("document.getElementById('resolution').removeAttribute('data-required')")
    await page.click("#transition-btn")
    await page.locator("#error", has_text="答复办结需要填写答复内容").wait_for(timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    other = await login(svc.http, svc.base, "zhang")
    status, _, _ = await other.post(f"/console/tickets/{ticket_id}/transition", {"action": "escalate"})
    assert status == 303
    await page.locator("#ticket-status", has_text="已督办").wait_for(timeout=TIMEOUT)
    await page.locator("#ticket-changed", has_text="还没有提交").wait_for(timeout=TIMEOUT)
    assert await page.input_value("#note") == "答复前先核实"

    # Back on the board, the row shows the answer when the department gives it.
    await page.goto(f"{svc.base}/console/tickets")
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    status, _, _ = await li.post(f"/console/tickets/{ticket_id}/transition",
                                 {"action": "answer", "resolution": "已更换灯泡。"})
    assert status == 303
    await row.locator("td.status", has_text="已答复").wait_for(timeout=TIMEOUT)
    assert not problems, problems
    await context.close()


async def test_a_page_whose_session_ended_says_it_is_no_longer_live(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "zhang")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/tickets")
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    # Logged out elsewhere in the browser (another tab): this page stays, its stream ends.
    status = await page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const r = await fetch('/logout', {method: 'POST', body: new URLSearchParams({csrf}), redirect: 'manual'});
        return r.type === 'opaqueredirect' ? 303 : r.status;
    }""")
    assert status == 303
    lost = page.locator("#live-lost", has_text="页面已停止自动更新")
    await lost.wait_for(timeout=TIMEOUT)
    assert await lost.locator("a").get_attribute("href") == "/login?next=%2Fconsole%2Ftickets"
    # A report made now does not reach the page: it says so instead of looking live.
    assert await say(svc, "o_live_lost_0001", "5号楼2单元楼道的灯坏了")
    await page.wait_for_timeout(2500)
    assert await page.locator("#ticket-list tr[data-ticket]").count() == 0
    # Chromium logs the refused reconnection (the 401 page is no event stream): that is the point here.
    assert not [p for p in problems if "EventSource's response" not in p], problems
    await context.close()


async def test_a_ticket_sent_to_another_department_says_so(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG, LI)
    zhang = await login(svc.http, svc.base, "zhang")
    # (物业服务 visits: the phone asked for first is not left)
    ticket, _ = await reported_ticket(svc, zhang, "o_live_moved_0001", "5号楼2单元楼道的灯坏了好几天了，晚上很黑",
                                      phone="不留")
    status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": DEPARTMENT})
    assert status == 303
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.goto(svc.base + ticket)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    status, _, _ = await zhang.post(f"{ticket}/transition", {"action": "dispatch", "department": "环卫所"})
    assert status == 303
    await page.locator("#ticket-changed", has_text="已经转给其他部门").wait_for(timeout=TIMEOUT)
    assert await page.locator("#ticket-side").is_hidden()
    assert not problems, problems
    await context.close()
