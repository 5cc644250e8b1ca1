"""The queue's 查看并接管 and the waiting badge, in real Chromium and over HTTP: the button opens
the conversation taken over (no second click on 接管会话); a colleague quicker to it is said in
Chinese on the page it opens; once someone has the resident, the red 居民要求人工 badge goes from
the conversation page (also live, on a colleague's open page), and a request still marked waiting
while the conversation is held is neither in the navigation's count nor offered for takeover."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import update

from bot.storage.db import Database
from bot.storage.models import HandoffRequest
from tests.web.console_util import LI, WANG, ZHANG, Client, login, say, start_console
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

BADGE = re.compile(r'<span class="tag urgent"[^>]*>居民要求人工</span>')


async def waiting_count(client: Client) -> int:
    """How many residents wait, as the console's live stream says when it starts."""
    async with client.http.get(client.base + "/console/events", headers=client.cookie) as r:
        assert r.status == 200
        while not (line := (await r.content.readline()).decode()).startswith("data:"):
            assert line, "the stream ended before its ready event"
    return int(json.loads(line[5:])["waiting"])


@pytest.mark.browser
async def test_view_and_take_over_is_one_click(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI, WANG)
    openid = "o_queue_claim_0001"
    assert await say(svc, openid, "转人工")

    # wang has the conversation open: the red badge says the resident waits.
    wang_context, wang_page, wang_problems = await open_page(browser, LAPTOP)
    await log_in(wang_page, svc.base, "wang")
    await wang_page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    rid = await wang_page.get_attribute("#handoff-rows tr.handoff", "data-resident")
    await wang_page.goto(f"{svc.base}/console/conversations/{rid}")
    await wang_page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    assert await wang_page.locator("#claim-status .tag.urgent", has_text="居民要求人工").count() == 1

    # li clicks 查看并接管 once: the conversation opens, taken over, ready for a reply.
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)  # the rows' first refresh done
    await page.locator("#handoff-rows tr.handoff .button", has_text="查看并接管").click()
    await page.wait_for_url(f"**/console/conversations/{rid}", timeout=TIMEOUT)
    await page.locator("#claim-state", has_text="li 接管中").wait_for(timeout=TIMEOUT)
    assert await page.locator("#claim-btn").count() == 0
    assert await page.locator("#reply-text").count() == 1
    assert await page.locator("#claim-status", has_text="居民要求人工").count() == 0

    # wang's open page follows: li holds it, and the resident no longer waits.
    await wang_page.locator("#claim-state", has_text="li 接管中").wait_for(timeout=TIMEOUT)
    await wang_page.locator("#claim-status .tag.urgent", has_text="居民要求人工").wait_for(
        state="detached", timeout=TIMEOUT)
    # The queue says who has it and offers a look only.
    await page.goto(f"{svc.base}/console/handoffs")
    row = page.locator(f"#handoff-rows tr.handoff[data-resident='{rid}']")
    await row.locator("td", has_text="已接管（li）").wait_for(timeout=TIMEOUT)
    assert await row.locator(".button", has_text="查看并接管").count() == 0
    assert not problems, problems
    assert not wang_problems, wang_problems
    await context.close()
    await wang_context.close()


async def test_a_colleague_quicker_to_the_queue_is_said(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI, ZHANG)
    assert await say(svc, "o_queue_claim_0002", "转人工")
    li = await login(svc.http, svc.base, "li")
    zhang = await login(svc.http, svc.base, "zhang")
    _, rows, _ = await li.get("/console/handoffs/rows")
    rid = re.search(r'data-resident="(\d+)"', rows)
    assert rid and "查看并接管" in rows
    form = re.search(rf'<form method="post" action="(/console/conversations/{rid.group(1)}/claim)"', rows)
    assert form, rows  # the button posts the claim itself
    status, _, _ = await zhang.post(form.group(1))
    assert status == 303

    # li's queue was a moment old: the click opens the conversation, saying who was quicker.
    status, _, resp = await li.post(form.group(1), {"from": "queue"})
    assert status == 303
    where = resp.headers["Location"]
    assert where.startswith(f"/console/conversations/{rid.group(1)}")
    status, page, _ = await li.get(where)
    assert status == 200
    assert "zhang 已经先接管了这个会话" in page and "只有接管人可以回复居民" in page
    assert 'id="reply-text"' not in page and not BADGE.search(page)

    # Released meanwhile: the page says so, and li may take it over.
    status, _, _ = await zhang.post(f"/console/conversations/{rid.group(1)}/release")
    assert status == 303
    _, page, _ = await li.get(where)
    assert "现在已交还机器人" in page and 'id="claim-btn"' in page


async def test_a_held_conversation_is_not_waiting(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    assert await say(svc, "o_queue_claim_0003", "转人工")
    li = await login(svc.http, svc.base, "li")
    _, rows, _ = await li.get("/console/handoffs/rows")
    rid = re.search(r'data-resident="(\d+)"', rows)
    assert rid
    _, page, _ = await li.get(f"/console/conversations/{rid.group(1)}")
    assert BADGE.search(page)  # waiting: the red badge
    assert await waiting_count(li) == 1

    status, _, _ = await li.post(f"/console/conversations/{rid.group(1)}/claim")
    assert status == 303
    _, page, _ = await li.get(f"/console/conversations/{rid.group(1)}")
    assert "li 接管中" in page and not BADGE.search(page)
    assert await waiting_count(li) == 0

    # A request recorded as the claim was made (the resident's 转人工 crossing it) still says
    # waiting: the conversation is held all the same, and nobody is offered to take it over.
    db = Database(sqlite_url)
    try:
        async with db.transaction() as session:
            await session.execute(update(HandoffRequest).where(HandoffRequest.resident_id == int(rid.group(1)))
                                  .values(status="waiting", claimed_by=None))
    finally:
        await db.dispose()
    _, page, _ = await li.get(f"/console/conversations/{rid.group(1)}")
    assert not BADGE.search(page)
    _, rows, _ = await li.get("/console/handoffs/rows")
    assert "查看并接管" not in rows and "已接管（li）" in rows
    assert await waiting_count(li) == 0
