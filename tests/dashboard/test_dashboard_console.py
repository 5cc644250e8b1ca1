"""The dashboard page over HTTP (no browser): bad dates and bad export requests are refused with
the reason, a table downloads as CSV with a byte-order mark for Excel."""

from __future__ import annotations

from tests.web.console_util import add_users, login


async def test_bad_period_and_export_requests(service_factory, sqlite_url, fake_api) -> None:
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("yun", "operator", {}))
    client = await login(svc.http, svc.base, "yun")
    # A wrong period: the dashboard for the usual period, with a line naming the field in Chinese.
    status, html, _ = await client.get("/console/dashboard?start=2026-02-30")
    assert status == 400 and "开始日期要写成 2026-11-20 这样的日期" in html and 'id="section-tickets"' in html
    assert "must be" not in html
    status, html, _ = await client.get("/console/dashboard?start=2026-12-01&end=2026-11-01")
    assert status == 400 and "结束日期要晚于开始日期" in html and "must be" not in html
    status, html, _ = await client.get("/console/dashboard?start=2026-11-01&end=2026-12-01")
    assert status == 200 and 'id="table-tickets_by_category"' in html and "echarts.min.js" in html
    for query, word in (("section=nope&table=x&format=csv", "section"),
                        ("section=tickets&table=tickets_per_day&format=pdf", "format"),
                        ("section=tickets&table=nope&format=csv", "table")):
        status, html, _ = await client.get(f"/console/dashboard/export?{query}")
        assert status == 400 and word in html, (query, html[-300:])
    async with svc.http.get(svc.base + "/console/dashboard/export",
                            params={"section": "residents", "table": "messages_by_intent", "format": "csv",
                                    "start": "2026-11-01", "end": "2026-11-08"},
                            headers=client.cookie) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        assert 'filename="dashboard-messages_by_intent-2026-11-01_2026-11-08.csv"' in r.headers["Content-Disposition"]
        body = await r.read()
    assert body.startswith("\ufeff".encode())
    lines = body.decode("utf-8-sig").splitlines()
    assert "2026-11-01" in lines[0] and lines[1] == "意图,本期,上期"
    async with svc.http.get(svc.base + "/static/vendor/echarts.min.js") as r:
        assert r.status == 200 and len(await r.read()) > 500_000
