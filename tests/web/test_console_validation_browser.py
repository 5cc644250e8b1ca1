"""The consoles' forms say what is missing or wrong in Chinese, beside the field and naming it, in
real Chromium: the browser's own bubbles (English in headless Chromium, no field named, gone in a
moment) never show, and nothing is sent until the form is complete. The server's refusals stay the
source of truth; these only spare staff the round trip and the lost scroll position on a phone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.console_util import LI, ZHANG, add_users, say, start_console
from tests.web.test_console_browser import PHONE, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser


def watch_posts(page: Any) -> list[str]:
    """The forms' submissions the page sends (a POST, or the dashboard's GET form)."""
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    return posts


async def said(page: Any, button: str, posts: list[str]) -> list[str]:
    """Click ``button`` (a selector) of a form left incomplete: the messages shown beside its
    fields; the browser's own validation (a bubble, nothing in the page) shows none."""
    before = len(posts)
    await page.click(button)
    await page.wait_for_timeout(200)
    messages: list[str] = await page.locator(".field-error").all_inner_texts()
    assert len(posts) == before, posts[before:]  # nothing was sent
    return messages


async def test_staff_forms_name_what_is_missing(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    assert await say(svc, "o_validation_0001", "转人工")
    context, page, problems = await open_page(browser, PHONE)
    posts = watch_posts(page)

    await page.goto(f"{svc.base}/login")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert await said(page, "button[type=submit]", posts) == ["请填写用户名。", "请填写密码。"]
    assert await page.evaluate("document.activeElement.id") == "name"
    await page.fill("#name", "li")
    # The message goes as soon as the field is filled in.
    assert await page.locator(".field-error").all_inner_texts() == ["请填写密码。"]
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)

    await page.goto(f"{svc.base}/console/canned")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    form = "#canned-new"
    assert await said(page, f"{form} button", posts) == ["请填写标题。", "请填写内容。"]
    await page.fill(f"{form} input[name=title]", "已派人")
    await page.fill(f"{form} textarea[name=text]", "   ")  # spaces only: the server refuses them too
    assert await said(page, f"{form} button", posts) == ["请填写内容。"]

    await page.goto(f"{svc.base}/console/handoffs")
    await page.locator("#handoff-rows a").first.click()
    await page.wait_for_selector("body[data-page='conversation'][data-ready='1']", timeout=TIMEOUT)
    await page.click("#claim-actions button")
    await page.wait_for_selector("#reply-text", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert await said(page, "#send-btn", posts) == ["请填写回复内容。"]
    assert await page.get_attribute("#reply-text", "aria-invalid") == "true"
    assert await said(page, "#notes button", posts) == ["请填写回复内容。", "请填写备注内容。"]
    await page.click("#tickets summary")
    await page.fill("#ticket-text", "")
    messages = await said(page, "#tickets form button", posts)
    assert "请填写工单内容。" in messages
    # Filled in, the form is sent as before.
    await page.fill("#notes textarea", "夜里来电，明早回电")
    await page.click("#notes button")
    await page.locator("#notes li", has_text="夜里来电").wait_for(timeout=TIMEOUT)
    assert not problems, problems
    await context.close()


async def test_a_tickets_forms_name_what_the_chosen_action_needs(browser, service_factory, sqlite_url, fake_api):
    # 派单 needs a department (or a person), 答复办结 the answer, 回访 the resident's rating: only
    # the server said so, above the page, after a round trip.
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    assert await say(svc, "o_validation_0002", "转人工")
    context, page, problems = await open_page(browser, PHONE)
    posts = watch_posts(page)
    await log_in(page, svc.base, "zhang")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.goto(f"{svc.base}/console/inbox")
    await page.locator("#inbox-rows a").first.click()
    await page.wait_for_selector("body[data-page='conversation'][data-ready='1']", timeout=TIMEOUT)
    await page.click("#tickets summary")
    await page.fill("#ticket-text", "5号楼门口的路面塌了个坑")
    await page.click("#tickets form button")
    await page.wait_for_selector("body[data-page='ticket'][data-ready='1']", timeout=TIMEOUT)

    await page.select_option("#action", "dispatch")
    assert await said(page, "#transition-btn", posts) == ["请选择部门（或填写处理人）。"]
    await page.fill("#assignee", "老周")  # a person instead of a department will do
    assert await said(page, "#transition-btn", []) == []
    await page.locator("#ticket-status", has_text="已派单").wait_for(timeout=TIMEOUT)

    await page.select_option("#action", "answer")
    assert await said(page, "#transition-btn", posts) == ["请填写答复内容。"]
    await page.select_option("#action", "reject")
    assert await said(page, "#transition-btn", posts) == ["请填写不予受理原因。"]
    await page.select_option("#action", "answer")
    await page.fill("#resolution", "已安排修补，请绕行。")
    await page.click("#transition-btn")
    await page.locator("#ticket-status", has_text="已答复").wait_for(timeout=TIMEOUT)

    assert await said(page, "#revisit-btn", posts) == ["请选择居民的评价。"]
    await page.check("#revisit input[value=satisfied]")
    assert await page.locator(".field-error").count() == 0
    assert not problems, problems
    await context.close()


async def test_admin_and_operator_forms_say_what_is_wrong(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("boss", "admin", {}))
    context, page, problems = await open_page(browser, PHONE)
    posts = watch_posts(page)
    await log_in(page, svc.base, "boss")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)

    await page.goto(f"{svc.base}/console/merchants")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    new = page.locator("section.card", has_text="新增商户")
    await new.locator("button").click()
    await page.wait_for_timeout(200)
    assert await new.locator(".field-error").all_inner_texts() == ["请填写名称。"]
    await new.locator("input[name=name]").fill("街角面包房")
    await new.locator("button").click()
    shop = page.locator("section[data-merchant]", has_text="街角面包房")
    await shop.wait_for(timeout=TIMEOUT)
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    sent = len(posts)
    await shop.locator("summary", has_text="新增商户账号").click()
    await shop.locator("input[name=name]").fill("mianbao")
    await shop.locator("input[name=password]").fill("abc")
    await shop.locator("button", has_text="创建账号").click()
    await shop.locator("summary", has_text="新增优惠券").click()
    await shop.locator("input[name=title]").fill("面包九折")
    await shop.locator("input[name=price]").fill("五十")
    await shop.locator("button", has_text="添加优惠券").click()
    await page.wait_for_timeout(200)
    assert await shop.locator(".field-error").all_inner_texts() == [
        "所需积分只能填数字。", "请填写库存。", "初始密码至少8个字符，现在是3个。"]
    assert len(posts) == sent

    await page.goto(f"{svc.base}/console/tuning/entries")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    await page.fill("#entry-form input[name=id]", "Bad id")
    await page.fill("#entry-form input[name=question]", "怎么办理出入证")
    assert await said(page, "#entry-form button", posts) == [
        "编号的格式不对：小写英文字母、数字和 . _ -，至少2个字符，比如 garbage.sorting",
        "请填写答案。", "请填写负责部门。"]
    assert not problems, problems
    await context.close()
