"""The dashboard (驾驶舱) in real Chromium: residents report in the chat, a supervisor answers
through the API, residents rate in the chat; an operator sees those figures, the ECharts charts
drawn, and downloads tables as CSV and XLSX; a staff member is refused. With
BOT_UPDATE_SCREENSHOTS=1 the page goes to docs/screenshots/dashboard.png."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.web.console_util import add_users, login
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page, say, shot

pytestmark = pytest.mark.browser

NUMBER = re.compile(r"GD\d{8}-\d{4}")


async def ticket_ids(client: Any) -> dict[str, int]:
    async with client.http.get(client.base + "/api/v1/tickets", headers=client.cookie) as r:
        assert r.status == 200
        return {t["number"]: t["id"] for t in (await r.json())["items"]}


async def act(client: Any, ticket_id: int, **body: Any) -> None:
    async with client.http.post(f"{client.base}/api/v1/tickets/{ticket_id}/transitions", json=body,
                                headers={**client.cookie, "X-CSRF-Token": client.csrf}) as r:
        assert r.status == 200, await r.text()


async def test_operator_sees_the_figures_charts_and_downloads(browser, service_factory, sqlite_url, fake_api, tmp_path: Path):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("zhang", "supervisor", {}), ("yun", "operator", {}),
                    ("li", "staff", {"department": "物业服务中心"}))
    numbers = {}
    for openid, text in (("o_dash_b_01", "5号楼门口路灯不亮了"), ("o_dash_b_02", "7号楼门口路灯不亮了，晚上很黑"),
                         ("o_dash_b_03", "9号楼门口路灯不亮了")):
        reply = await say(svc, openid, text)
        found = NUMBER.search(reply or "")
        assert found, reply
        numbers[openid] = found.group(0)
    zhang = await login(svc.http, svc.base, "zhang")
    ids = await ticket_ids(zhang)
    for openid in ("o_dash_b_01", "o_dash_b_02"):
        ticket_id = ids[numbers[openid]]
        async with svc.http.get(f"{svc.base}/api/v1/tickets/{ticket_id}", headers=zhang.cookie) as r:
            if (await r.json())["status"] == "submitted":
                await act(zhang, ticket_id, action="dispatch", department="城管市政科")
        await act(zhang, ticket_id, action="answer", resolution="已更换灯泡")
    assert "已完结" in (await say(svc, "o_dash_b_01", "满意") or "")
    assert "重新办理" in (await say(svc, "o_dash_b_02", "不满意") or "")

    context, page, problems = await open_page(browser, LAPTOP, accept_downloads=True)
    await log_in(page, svc.base, "yun")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    await page.click("nav a:has-text('驾驶舱')")
    await page.wait_for_url("**/console/dashboard", timeout=TIMEOUT)
    await page.wait_for_selector("body[data-charts='1']", timeout=TIMEOUT)

    async def value(name: str) -> str:
        return str(await page.locator(f"[data-figure='{name}'] .figure-value").inner_text()).strip()

    assert await value("new") == "3 件"
    assert await value("open_now") == "2 件"  # the reopened one and the untouched one
    assert await value("satisfaction_rate") == "50.0%"  # one 满意 of two ratings
    assert await value("resolution_rate") == "33.3%"
    assert await value("reopen_rate") == "33.3%"
    assert await value("rated") == "2 件"
    # Every chart with data is drawn on a canvas by ECharts; one without says so instead of empty axes.
    charts = page.locator(".chart[data-chart]")
    assert await charts.count() >= 6
    for i in range(await charts.count()):
        chart = charts.nth(i)
        if "chart-empty" in (await chart.get_attribute("class") or ""):
            assert await chart.inner_text() == "这段时间没有数据。"
            assert await chart.locator("canvas").count() == 0
        else:
            await chart.locator("canvas").first.wait_for(timeout=TIMEOUT)
    await page.locator("#table-tickets_per_day .chart canvas").first.wait_for(timeout=TIMEOUT)
    empty = page.locator("#table-coupons_by_merchant .chart")  # no coupon redeemed in this test
    assert await empty.inner_text() == "这段时间没有数据。", await empty.inner_html()
    await shot(page, "dashboard")

    # CSV: the tickets per category, this period's counts add up to the three reports.
    box = page.locator("#table-tickets_by_category")
    async with page.expect_download() as info:
        await box.locator("a", has_text="CSV").click()
    download = await info.value
    path = tmp_path / download.suggested_filename
    await download.save_as(path)
    assert path.name.startswith("dashboard-tickets_by_category-") and path.suffix == ".csv"
    text = path.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][:3] == ["类别", "本期", "上期"], rows
    assert sum(int(r[1]) for r in rows[2:]) == 3
    # XLSX: the ticket figures, with the satisfaction rate as a fraction.
    async with page.expect_download() as info:
        await page.locator("#table-tickets_figures a", has_text="XLSX").click()
    download = await info.value
    path = tmp_path / download.suggested_filename
    await download.save_as(path)
    sheet = load_workbook(path).active
    assert sheet is not None
    values = {row[0]: row[1] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["新建工单"] == 3 and values["满意率（含基本满意）"] == 0.5 and values["基本满意"] == 0
    assert not problems, problems
    await context.close()

    # A staff member has no link to it and is refused.
    context, page, problems = await open_page(browser, LAPTOP)
    await log_in(page, svc.base, "li")
    await page.wait_for_url("**/console/**", timeout=TIMEOUT)
    assert await page.locator("nav a:has-text('驾驶舱')").count() == 0
    response = await page.goto(f"{svc.base}/console/dashboard")
    assert response is not None and response.status == 403
    assert "没有权限" in await page.content()
    async with svc.http.get(f"{svc.base}/console/dashboard/export?section=tickets&table=tickets_figures&format=csv",
                            headers=(await login(svc.http, svc.base, "li")).cookie) as r:
        assert r.status == 403
    await context.close()
