"""The console's table headers stay on one line on a small laptop (860 px), in real Chromium: a narrow
header (未办结工单, 积分 in the inbox) was broken between its characters (未办结工 / 单, 积 / 分)."""

from __future__ import annotations

import pytest

from tests.web.console_util import LI, say, start_console
from tests.web.test_console_browser import TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser

# For each header of the page's tables: how many lines its text takes.
LINES = """() => [...document.querySelectorAll("table.list thead th")].map((th) => {
  const range = document.createRange();
  range.selectNodeContents(th);
  const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
  return [th.innerText.trim(), tops.size];
})"""


async def test_headers_keep_to_one_line(browser, service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    # a resident whose messages are long enough to squeeze the narrow columns
    assert await say(svc, "o_headers_0001", "3号楼2单元楼道的灯坏了好几天了，晚上黑漆漆的，老人上下楼很不方便，麻烦尽快派人来修一下")
    assert await say(svc, "o_headers_0002", "转人工")
    context, page, problems = await open_page(browser, {"width": 860, "height": 800})
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/handoffs", timeout=TIMEOUT)
    for path in ("/console/inbox", "/console/handoffs", "/console/tickets"):
        await page.goto(svc.base + path)
        await page.wait_for_selector("body[data-live='1'], body[data-ready='1']", timeout=TIMEOUT)
        headers = await page.evaluate(LINES)
        assert headers, path
        assert all(lines <= 1 for _, lines in headers), (path, headers)  # (an empty one has none)
    assert not problems, problems
    await context.close()
