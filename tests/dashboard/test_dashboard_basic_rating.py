"""满意率 counts 基本满意 as satisfied: with one ticket rated 基本满意 the rate is 100% while 满意 is
0 件. The page, the JSON API and the exported 工单指标 table name the rate 满意率（含基本满意） and give
the 基本满意 count beside 满意, so the figures read right together (over HTTP, no browser)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

from tests.dashboard.test_dashboard_api import DAY, NEXT, dashboard, figure, report
from tests.tickets.conftest import Desk
from tests.web.console_util import add_users, login

LABEL = "满意率（含基本满意）"


def card(page: str, name: str) -> tuple[str, str]:
    """A figure card's label and value as the page shows them."""
    found = re.search(rf'data-figure="{name}">\s*<div class="figure-label">([^<]*)</div>\s*'
                      rf'<div class="figure-value">([^<]*)</div>', page)
    assert found, page[page.find("figures"):][:2000]
    return html.unescape(found.group(1)).strip(), html.unescape(found.group(2)).strip()


async def test_basic_rating_alone_reads_as_counted(desk: Desk) -> None:
    ticket = await report(desk, "o_dash_basic", "5号楼门口路灯不亮了")
    desk.clock.advance(timedelta(hours=1))
    assert (await desk.act(ticket, "supervisor", action="answer", resolution="已更换灯泡"))[0] == 200
    assert "已完结" in await desk.say("o_dash_basic", "基本满意")

    data = await dashboard(desk, "tickets", start=DAY, end=NEXT)
    assert data["figures"]["satisfaction_rate"]["label"] == LABEL
    assert figure(data, "satisfaction_rate")[0] == 1.0
    assert figure(data, "satisfied")[0] == 0 and figure(data, "basic")[0] == 1 and figure(data, "rated")[0] == 1

    await add_users(desk.svc.settings.database_url, ("yun", "operator", {}))
    client = await login(desk.svc.http, desk.svc.base, "yun")
    status, page, _ = await client.get(f"/console/dashboard?start={DAY}&end={NEXT}")
    assert status == 200
    assert card(page, "satisfaction_rate") == (LABEL, "100.0%")
    assert card(page, "satisfied") == ("满意", "0 件")
    assert card(page, "basic") == ("基本满意", "1 件")
    assert LABEL + "：" in page  # the definition under 指标口径 names it the same way

    async with desk.svc.http.get(desk.svc.base + "/console/dashboard/export",
                                 params={"section": "tickets", "table": "tickets_figures", "format": "csv",
                                         "start": DAY, "end": NEXT}, headers=client.cookie) as r:
        assert r.status == 200
        rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    values = {row[0]: row[1] for row in rows[2:]}
    assert float(values[LABEL]) == 1.0 and values["满意"] == "0" and values["基本满意"] == "1", rows
    assert "满意率" not in values
