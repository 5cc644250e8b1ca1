"""Issue 16's "done when" for the tuning loop, in real Chromium against two server processes on
one database (``python -m bot serve`` twice; SQLite and PostgreSQL): an operator labels a reviewed message, sees the
evaluation change, publishes, and both running servers classify that message the new way without
a restart; rollback restores the previous behaviour in both; a "don't know" question becomes a
new knowledge entry and is answered afterwards. With BOT_UPDATE_SCREENSHOTS=1 the pages go to
docs/screenshots/."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import create_pg_database, drop_pg_database, need_service
from tests.ops.helpers import Cluster, Server
from tests.web.console_util import add_users
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page, shot

pytestmark = pytest.mark.browser

NOT_UNDERSTOOD = "电视老是没信号"  # fallback with the packaged data
UNKNOWN_QUESTION = "社区游泳馆几点开门"  # the knowledge base has no answer
POOL_ANSWER = "社区游泳馆每天9:00-21:00开放，周一下午闭馆清洁。"
_openids = (f"oTuningBrowser{n:012d}" for n in itertools.count(1))
_msg_ids = itertools.count(77_000_001)


@pytest.fixture(params=["sqlite", "postgres"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path, fake_api: str) -> AsyncIterator[Cluster]:
    """Server processes on one database: a SQLite file, or a fresh PostgreSQL database."""
    name = ""
    if request.param == "postgres":
        need_service("PostgreSQL", "127.0.0.1", 5432)
        name = await create_pg_database()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    async with aiohttp.ClientSession() as http:
        c = Cluster(tmp_path, url, fake_api, http)
        try:
            yield c
        finally:
            await c.close()
            if name:
                await drop_pg_database(name)


async def intent_of(page: Any, cluster: Cluster, server: Server, text: str) -> str:
    """What ``server`` makes of ``text`` now: a new resident says it; the logged intent, read
    through the JSON API with the operator's console session."""
    openid = next(_openids)
    status, _ = await cluster.say(server, openid, text, msg_id=next(_msg_ids))
    assert status == 200
    resp = await page.request.get(f"{server.base}/api/v1/messages?direction=in&limit=20")
    assert resp.ok
    items = (await resp.json())["items"]
    return str(next(m["intent"] for m in items if m["openid"] == openid))


async def serving(page: Any, server: Server, version: int) -> None:
    """Wait (bounded by the test's timeout) until ``server`` serves ``version``: its own version
    page says so."""
    while True:
        resp = await page.request.get(f"{server.base}/api/v1/tuning/draft")
        if (await resp.json())["served"] == version:
            return
        await page.wait_for_timeout(300)


async def publish(page: Any, base: str, note: str) -> int:
    await page.goto(f"{base}/console/tuning/evaluation")
    await page.wait_for_selector("#figures[data-loaded='1']", timeout=120_000)
    await page.fill("input[name=note]", note)
    await page.click("#publish")  # not confirmed: the browser itself refuses (required checkbox)
    assert page.url.endswith("/console/tuning/evaluation")
    await page.check("#confirm")
    await page.click("#publish")
    await page.wait_for_url("**/console/tuning/versions**")
    row = page.locator("#versions tr.active")
    return int((await row.get_attribute("data-version")) or 0)


@pytest.mark.timeout(600)
async def test_label_publish_rollback_and_a_new_entry_with_two_servers(browser, cluster: Cluster):
    a = await cluster.serve()
    b = await cluster.serve()
    await add_users(cluster.database_url, ("yun", "operator", {}))
    await cluster.say(a, next(_openids), NOT_UNDERSTOOD, msg_id=next(_msg_ids))
    await cluster.say(b, next(_openids), NOT_UNDERSTOOD + "？", msg_id=next(_msg_ids))
    _, before = await cluster.say(b, next(_openids), UNKNOWN_QUESTION, msg_id=next(_msg_ids))
    assert POOL_ANSWER not in before

    context, page, problems = await open_page(browser, LAPTOP)
    page.set_default_timeout(TIMEOUT)
    await log_in(page, a.base, "yun")
    await page.wait_for_url("**/console**")
    assert await intent_of(page, cluster, a, NOT_UNDERSTOOD) == "fallback"

    # review: both phrasings are one group; label it
    await page.goto(f"{a.base}/console/tuning")
    group = page.locator("section.group", has_text=NOT_UNDERSTOOD).first
    assert "3 条" in await group.locator("h2").inner_text()  # two phrasings, three messages
    await shot(page, "tuning-review")
    await group.locator("select[name=intent]").select_option("complaint")
    await group.locator("button[value=intent]").click()
    await page.wait_for_selector("p.ok")
    assert await page.locator("section.group", has_text=NOT_UNDERSTOOD).count() == 0

    # the evaluation changes: the reviewed message, fallback before, complaint in the draft
    await page.goto(f"{a.base}/console/tuning/evaluation")
    await page.wait_for_selector("#figures[data-loaded='1']", timeout=120_000)
    row = page.locator("table.reviewed tr", has_text=NOT_UNDERSTOOD).first
    cells = [await c.inner_text() for c in await row.locator("td").all()]
    assert cells[1].startswith("超出范围") and cells[2].startswith("反映问题"), cells  # names, codes in titles
    recall = page.locator("details[data-set=reviewed] tr[data-intent=complaint] td").nth(3)
    assert (await recall.inner_text()).strip() == "0.00 / 1.00"
    await shot(page, "tuning-evaluation")

    v1 = await publish(page, a.base, "宽带慢是报修")
    await shot(page, "tuning-versions")
    for server in (a, b):  # both processes, no restart
        await serving(page, server, v1)
        assert await intent_of(page, cluster, server, NOT_UNDERSTOOD) == "complaint"

    # one click rolls back, in both processes
    await page.click("#rollback")
    await page.wait_for_selector("p.ok")
    v2 = int((await page.locator("#versions tr.active").get_attribute("data-version")) or 0)
    assert v2 == v1 + 1
    for server in (a, b):
        await serving(page, server, v2)
        assert await intent_of(page, cluster, server, NOT_UNDERSTOOD) == "fallback"

    # a "don't know" question becomes a new entry, answered afterwards (asked through the other server)
    await page.goto(f"{a.base}/console/tuning?kind=knowledge")
    group = page.locator("section.group", has_text=UNKNOWN_QUESTION).first
    await group.locator("details.new-entry summary").click()
    await group.locator("input[name=entry_id]").fill("community-pool")
    await group.locator("input[name=question]").fill("社区游泳馆的开放时间？")
    await group.locator("textarea[name=answer]").fill(POOL_ANSWER)
    await group.locator("input[name=department]").fill("社区服务中心")
    await group.locator("input[name=tags]").fill("游泳馆, 开放时间")
    await group.locator("details.new-entry button").click()
    await page.wait_for_selector("p.ok")
    await page.goto(f"{a.base}/console/tuning/entries?id=community-pool")
    assert UNKNOWN_QUESTION in await page.locator("textarea[name=alternatives]").input_value()
    v3 = await publish(page, a.base, "游泳馆")
    for server in (a, b):
        await serving(page, server, v3)
    _, after = await cluster.say(b, next(_openids), UNKNOWN_QUESTION, msg_id=next(_msg_ids))
    assert POOL_ANSWER in after
    assert not problems, problems
    await context.close()
