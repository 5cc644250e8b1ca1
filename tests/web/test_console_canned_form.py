"""Canned replies over HTTP: an empty list says what the page is for, and a new reply refused for
a missing title names the field and keeps the text typed."""

from __future__ import annotations

from tests.web.console_util import LI, login, start_console


async def test_empty_canned_replies_and_a_refused_new_one(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI)
    li = await login(svc.http, svc.base, "li")
    status, page, _ = await li.get("/console/canned")
    assert status == 200 and 'id="canned-empty"' in page and "还没有快捷回复" in page
    status, page, _ = await li.post("/console/canned", {"title": " ", "text": "维修师傅已经出发，请在家等候。"})
    assert status == 400 and "标题需要1到64个字。" in page
    assert "维修师傅已经出发，请在家等候。</textarea>" in page
