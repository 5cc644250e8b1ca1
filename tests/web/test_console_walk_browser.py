"""What staff meet walking through the console on a phone, in real Chromium: after an action they
see what it did, and no link leads them to a page that refuses them."""

from __future__ import annotations

import pytest

from tests.web.console_util import LI, YUN, add_users, say, start_console
from tests.web.test_console_browser import PHONE, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


async def test_a_ticket_made_for_another_department_says_where_it_went(browser, service_factory, sqlite_url,
                                                                        fake_api):
    # Staff of 物业服务中心 file a litter complaint from a resident's chat; it goes to 环卫所. The
    # page that followed was the new ticket's own, which refuses them: 无权访问, the ticket's number
    # nowhere, and the conversation's list linked it to the same refusal.
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    assert await say(svc, "o_walk_elsewhere_01", "转人工")
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/inbox")
    await page.locator("#inbox-rows a").first.click()
    await page.wait_for_selector("body[data-page='conversation'][data-ready='1']", timeout=TIMEOUT)
    await page.click("#tickets summary")
    await page.fill("#ticket-text", "小区东门垃圾桶满了好几天没人清")
    await page.select_option("#ticket-category", "环境卫生")
    await page.click("#tickets form button")
    await page.wait_for_selector("body[data-page='conversation'][data-ready='1']", timeout=TIMEOUT)
    notice = await page.inner_text("#notice")
    assert "已创建工单 GD" in notice and "环卫所" in notice, notice
    number = notice.split("已创建工单 ", 1)[1].split("，", 1)[0]
    listed = page.locator("#tickets li", has_text=number)
    assert await listed.count() == 1
    assert await listed.locator("a").count() == 0  # its page would refuse li
    # A ticket of li's own department still opens its page.
    await page.click("#tickets summary")
    await page.fill("#ticket-text", "3号楼楼道灯不亮")
    await page.select_option("#ticket-category", "物业服务")
    await page.click("#tickets form button")
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)
    assert "3号楼楼道灯不亮" in await page.inner_text("main")
    assert not problems, problems
    await context.close()


async def test_an_example_added_on_a_phone_is_confirmed_at_the_top(browser, service_factory, sqlite_url, fake_api):
    # An intent has hundreds of examples: the one added lands at the list's end, thousands of
    # pixels below, and the page said nothing, so on a phone nothing seemed to happen.
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, YUN)
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "yun")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/tuning/intents/handoff")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    await page.fill("#new-example", "能不能换个真人跟我说")
    await page.click("form:has(#new-example) button")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    notice = page.locator("p[role=status]", has_text="能不能换个真人跟我说")
    assert "已添加" in await notice.inner_text()
    assert await notice.is_visible() and (await notice.bounding_box() or {}).get("y", 9999) < PHONE["height"]
    # Taken out again from the list: said too.
    await page.locator("ul.examples li", has_text="能不能换个真人跟我说").locator("button").click()
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert "已删除" in await page.locator("p[role=status]").inner_text()
    assert not problems, problems
    await context.close()


async def test_saving_a_canned_reply_says_so(browser, service_factory, sqlite_url, fake_api):
    # 添加 and 保存 reloaded the same page with nothing said: on a phone, scrolled back to the top,
    # staff could not tell whether the reply was kept.
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/canned")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    await page.fill("#canned-new input[name=title]", "师傅出发")
    await page.fill("#canned-new textarea[name=text]", "维修师傅已经出发，大约半小时到。")
    await page.click("#canned-new button")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert (await page.inner_text("#notice")).startswith("已添加")
    kept = page.locator("form.card", has=page.locator("input[value='师傅出发']"))
    await kept.locator("textarea[name=text]").fill("维修师傅已经出发，大约20分钟到。")
    await kept.locator("button", has_text="保存").click()
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert await page.inner_text("#notice") == "已保存。"
    await page.goto(f"{svc.base}/console/notifications")
    assert "超期" in await page.inner_text("#notices-empty")  # what would come here, when
    assert not problems, problems
    await context.close()


async def test_lists_on_a_phone_keep_their_column_names(browser, service_factory, sqlite_url, fake_api):
    # On a phone a list's head is hidden and each row is a card: cells whose templates gave them
    # no label (the knowledge entries, the versions, the evaluation's figures) were bare values
    # (0.960 0.960 0.957 …) with nothing saying which was which.
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, YUN)
    context, page, problems = await open_page(browser, PHONE)
    await log_in(page, svc.base, "yun")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/tuning/entries")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    first = page.locator("table.list tbody tr").first.locator("td")
    assert await first.evaluate_all("tds => tds.map(td => td.dataset.label)") == ["编号", "标准问题", "部门"]
    before = await first.nth(1).evaluate("td => getComputedStyle(td, '::before').content")
    assert "标准问题" in before or "data-label" in before, before
    assert await page.locator("table.list thead").is_hidden()
    assert not problems, problems
    await context.close()
