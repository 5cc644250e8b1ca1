"""A knowledge entry's link is sent to residents under its answer (详细说明：…), so the tuning loop
takes only a web address (http:// or https://, no spaces): the console form refuses another with
the field named in Chinese and keeps what was typed, the API with a 400 naming the field. Over
HTTP on SQLite."""

from __future__ import annotations

import html

from tests.api.conftest import Api, make_tokens
from tests.web.console_util import add_users, login

ENTRY = {"id": "community-pool", "question": "社区游泳馆的开放时间？", "answer": "每天9:00-21:00开放。",
         "department": "社区服务中心", "tags": "游泳馆"}


async def test_an_entrys_link_must_be_a_web_address(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("yun", "operator", {}))
    op = await login(svc.http, svc.base, "yun")
    for link in ("javascript:alert(1)", "见社区公告栏", "https://", "https://example.cn/a b"):
        status, page, _ = await op.post("/console/tuning/entries", {**ENTRY, "link": link})
        page = html.unescape(page)
        assert status == 400, (link, status)
        assert "链接要写成 https:// 或 http:// 开头的网址" in page and link in page, link
    status, _, resp = await op.post("/console/tuning/entries", {**ENTRY, "link": "https://example.cn/pool?x=1"})
    assert status == 303 and "notice=" in resp.headers["Location"]

    api = Api(svc, await make_tokens(sqlite_url))
    entry = {**ENTRY, "tags": ["游泳馆"], "link": "ftp://example.cn/x"}
    status, body, _ = await api.call("POST", "/tuning/draft/changes", "operator",
                                     json={"changes": [{"op": "entry", "entry": entry}]})
    assert status == 400 and "link" in body["error"]["message"], body
