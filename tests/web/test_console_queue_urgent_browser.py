"""An emergency in the queue, in real Chromium: red (the 紧急情况 tag, the row's red left border)
while the resident waits for a person; once a colleague takes the conversation over, the row on an
open queue page follows live and says the emergency is being handled (紧急情况 · 处理中, grey, no
red border), so red marks only what still needs someone."""

from __future__ import annotations

import pytest

from tests.web.console_util import LI, WANG, say, start_console
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser

RED = "rgb(217, 48, 38)"  # console.css --red
BORDER = "el => getComputedStyle(el.querySelector('td')).borderLeftColor"


@pytest.mark.browser
async def test_an_emergency_taken_over_no_longer_shows_red(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI, WANG)
    assert await say(svc, "o_queue_urgent_0001", "救命 楼道里着火了 全是烟")
    assert await say(svc, "o_queue_urgent_0002", "转人工")

    # wang watches the queue: the emergency is red, the ordinary request is not.
    wang_context, wang_page, wang_problems = await open_page(browser, LAPTOP)
    await log_in(wang_page, svc.base, "wang")
    await wang_page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await wang_page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    urgent = wang_page.locator("#handoff-rows tr.handoff.urgent")
    assert await urgent.count() == 1
    rid = await urgent.get_attribute("data-resident")
    assert await urgent.locator(".tag.urgent", has_text="紧急情况").count() == 1
    assert await urgent.evaluate(BORDER) == RED
    other = wang_page.locator("#handoff-rows tr.handoff:not(.urgent)")
    assert await other.locator(".tag.urgent").count() == 0
    assert await other.evaluate(BORDER) != RED

    # li takes the emergency over from the queue.
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-live='1']", timeout=TIMEOUT)
    await page.locator(f"#handoff-rows tr.handoff[data-resident='{rid}'] .button", has_text="查看并接管").click()
    await page.wait_for_url(f"**/console/conversations/{rid}", timeout=TIMEOUT)
    await page.locator("#claim-state", has_text="li 接管中").wait_for(timeout=TIMEOUT)

    # wang's queue follows without a reload: still listed as an emergency, now being handled.
    row = wang_page.locator(f"#handoff-rows tr.handoff[data-resident='{rid}']")
    await row.locator("td", has_text="已接管（li）").wait_for(timeout=TIMEOUT)
    assert await row.locator(".tag.urgent").count() == 0
    assert await row.locator(".tag", has_text="紧急情况 · 处理中").count() == 1
    assert await row.evaluate(BORDER) != RED
    # the ordinary request still waits, unchanged
    assert await wang_page.locator("#handoff-rows tr.handoff:not(.urgent) .button", has_text="查看并接管").count() == 1

    # li's own queue says the same after the takeover.
    await page.goto(f"{svc.base}/console/handoffs")
    mine = page.locator(f"#handoff-rows tr.handoff[data-resident='{rid}']")
    await mine.locator(".tag", has_text="紧急情况 · 处理中").wait_for(timeout=TIMEOUT)
    assert await mine.evaluate(BORDER) != RED
    assert not problems, problems
    assert not wang_problems, wang_problems
    await context.close()
    await wang_context.close()
