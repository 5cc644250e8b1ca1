"""The resident's 积分明细 in WeChat shows a staff adjustment with the reason staff chose to tell
them (reason_for_resident), never the internal note; an adjustment without one reads 工作人员调整.
Through the JSON API and the WeChat endpoint, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.conftest import Api, make_tokens
from tests.web.console_util import say


async def test_the_statement_shows_the_reason_told_never_the_note(service_factory, database_url, fake_api):
    api = Api(await service_factory(database_url, fake_api), await make_tokens(database_url))
    openid = "o_points_statement_01"
    assert await say(api.svc, openid, "你好")
    rid = (await api.ok("/residents", "staff", q=openid))["items"][0]["id"]
    status, entry, _ = await api.call("POST", "/points/adjustments", "staff", json={
        "resident_id": rid, "amount": 15, "note": "王主任电话确认，内部单号17",
        "reason_for_resident": " 活动签到漏记，补上。", "request_key": "statement-1"})
    assert status == 201 and entry["reason_for_resident"] == "活动签到漏记，补上", entry
    status, _, _ = await api.call("POST", "/points/adjustments", "supervisor", json={
        "resident_id": rid, "amount": -5, "note": "重复发放，扣回", "request_key": "statement-2", "notify": False})
    assert status == 201
    account = await api.ok(f"/points/residents/{rid}", "staff")
    assert [e["reason_for_resident"] for e in account["entries"][:2]] == [None, "活动签到漏记，补上"]

    reply = await say(api.svc, openid, "积分明细") or ""
    lines = reply.splitlines()
    assert any(line.endswith("工作人员调整：活动签到漏记，补上 +15") for line in lines), reply
    assert any(line.endswith("工作人员调整 -5") for line in lines), reply
    assert "王主任" not in reply and "单号" not in reply and "重复发放" not in reply
