"""Residents and their message history, after real WeChat messages through /wechat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.api.paging import encode_cursor
from bot.clock import ManualClock
from tests.api.conftest import Api, assert_error, check_schema, make_tokens, response_schema

A, B, C = "oApiTestAlpha0000000000001", "oApiTestBravo0000000000002", "oApiTestCharlie00000000003"


async def populate(api: Api) -> None:
    sender = api.svc.sender("safe")
    for openid, text in ((A, "你好"), (B, "楼道灯坏了"), (A, "谢谢")):
        reply = await api.svc.send(sender.text(openid, text), "safe")
        assert reply.status == 200
    assert (await api.svc.send(sender.event(C, "subscribe", "qrscene_building:阳光社区/3号楼"), "safe")).status == 200
    assert (await api.svc.send(sender.event(B, "unsubscribe"), "safe")).status == 200


async def by_openid(api: Api) -> dict[str, dict[str, Any]]:
    page = await api.ok("/residents")
    return {r["openid"]: r for r in page["items"]}


async def test_list_detail_and_filters(api: Api):
    await populate(api)
    doc = await api.openapi()
    page = await api.ok("/residents")
    check_schema(doc, response_schema(doc, "/residents"), page)
    assert page["next_cursor"] is None
    ids = [r["id"] for r in page["items"]]
    assert ids == sorted(ids) and len(ids) == 3
    residents = await by_openid(api)
    assert set(residents) == {A, B, C}
    assert residents[B]["subscribed"] is False and residents[B]["unsubscribed_at"] is not None
    assert residents[C]["building"] == "3号楼" and residents[C]["community"] == "阳光社区"

    unsubscribed = await api.ok("/residents", subscribed="false")
    assert [r["openid"] for r in unsubscribed["items"]] == [B]
    subscribed = await api.ok("/residents", subscribed="true")
    assert {r["openid"] for r in subscribed["items"]} == {A, C}
    in_building = await api.ok("/residents", building="3号楼")
    assert [r["openid"] for r in in_building["items"]] == [C]
    assert (await api.ok("/residents", community="阳光社区", building="4号楼"))["items"] == []
    assert [r["openid"] for r in (await api.ok("/residents", q="oApiTestB"))["items"]] == [B]
    assert len((await api.ok("/residents", q="oApiTest"))["items"]) == 3
    # the openid prefix is exact: case matters and LIKE wildcards are literal
    assert (await api.ok("/residents", q="oapitest"))["items"] == []
    assert (await api.ok("/residents", q="oApi%"))["items"] == []
    assert (await api.ok("/residents", q="oApi_est"))["items"] == []

    detail = await api.ok(f"/residents/{residents[A]['id']}", "operator")
    check_schema(doc, response_schema(doc, "/residents/{id}"), detail)
    assert detail["openid"] == A
    assert detail["message_count"] >= 4  # two in, two replies
    assert datetime.fromisoformat(detail["last_message_at"]).tzinfo is not None


async def test_paging_walks_every_resident_once(api: Api):
    sender = api.svc.sender()
    openids = [f"oApiPaging{i:016d}" for i in range(7)]
    for openid in openids:
        assert (await api.svc.send(sender.text(openid, "你好"))).status == 200
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = await api.ok("/residents", **params)
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(r["openid"] for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == openids and pages == 3
    # a filter and a cursor together
    first = await api.ok("/residents", limit=2, q="oApiPaging")
    second = await api.ok("/residents", limit=2, q="oApiPaging", cursor=first["next_cursor"])
    assert [r["openid"] for r in second["items"]] == openids[2:4]


async def test_message_history_newest_first_and_paged(api: Api):
    sender = api.svc.sender("compat")
    texts = [f"第{i}条消息" for i in range(5)]
    for text in texts:
        assert (await api.svc.send(sender.text(A, text), "compat")).status == 200
    resident = (await by_openid(api))[A]
    doc = await api.openapi()
    everything = await api.ok(f"/residents/{resident['id']}/messages", "staff")
    check_schema(doc, response_schema(doc, "/residents/{id}/messages"), everything)
    items = everything["items"]
    keys = [(datetime.fromisoformat(m["created_at"]), m["id"]) for m in items]
    assert keys == sorted(keys, reverse=True)
    inbound = [m for m in items if m["direction"] == "in"]
    assert [m["content"] for m in inbound] == list(reversed(texts))
    assert all(m["openid"] == A and m["resident_id"] == resident["id"] for m in items)
    assert all(m["msg_type"] == "text" and "intent" in m and "confidence" in m for m in inbound)
    assert any(m["direction"] == "out" for m in items)  # the replies are part of the history

    only_in = await api.ok(f"/residents/{resident['id']}/messages", direction="in")
    assert only_in["items"] == inbound

    walked: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await api.ok(f"/residents/{resident['id']}/messages", **params)
        walked.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == items


async def test_unknown_residents_and_bad_parameters(api: Api):
    await populate(api)
    for path in ("/residents/999999", "/residents/999999/messages", "/residents/0", "/residents/2147483648"):
        assert_error(*(await api.get(path)), 404, "not_found")
    message = assert_error(*(await api.get("/residents/abc")), 400, "bad_param")
    assert "id" in message
    cases = [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"subscribed": "maybe"}, "subscribed"),
        ({"q": ""}, "q"),
        ({"building": "x" * 65}, "building"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": encode_cursor("residents", [2**31])}, "cursor"),  # beyond the id column
        ({"cursor": encode_cursor("residents", [-1])}, "cursor"),
        ({"cursor": encode_cursor("residents", ["1"])}, "cursor"),
        ({"cursor": encode_cursor("residents", [1, 2])}, "cursor"),
    ]
    for params, name in cases:
        status, body = await api.get("/residents", **params)
        message = assert_error(status, body, 400)
        assert name in message, (params, message)
    status, body, _ = await api.call("GET", "/residents", params=[("limit", "1"), ("limit", "2")])
    assert "more than once" in assert_error(status, body, 400)
    status, body = await api.get("/residents", subscibed="true")
    message = assert_error(status, body, 400, "unknown_param")
    assert "subscibed" in message and "subscribed" in message
    # a cursor from another list is refused
    sender = api.svc.sender()
    for i in range(3):
        await api.svc.send(sender.text(A, f"hello {i}"))
    resident = (await by_openid(api))[A]
    messages = await api.ok(f"/residents/{resident['id']}/messages", limit=1)
    status, body = await api.get("/residents", cursor=messages["next_cursor"])
    assert_error(status, body, 400, "bad_cursor")


async def test_last_inbound_time_is_kept_to_the_minute(service_factory, sqlite_url, fake_api):
    """Each message moves the resident's last-inbound time (the 48-hour window) unless it moved less
    than a minute ago: a conversation does not rewrite the resident's row with every message."""
    clock = ManualClock(datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    svc = await service_factory(sqlite_url, fake_api, app_kwargs={"clock": clock})
    api = Api(svc, await make_tokens(sqlite_url))
    sender = svc.sender()

    async def last_inbound() -> datetime:
        (resident,) = (await api.ok("/residents"))["items"]
        return datetime.fromisoformat(resident["last_inbound_at"])

    first = clock.now()
    assert (await svc.send(sender.text(A, "你好"))).status == 200
    assert await last_inbound() == first
    clock.advance(timedelta(seconds=50))
    assert (await svc.send(sender.event(A, "CLICK", "HELP"))).status == 200
    assert await last_inbound() == first
    clock.advance(timedelta(seconds=20))
    assert (await svc.send(sender.text(A, "谢谢"))).status == 200
    assert await last_inbound() == clock.now()
    # A clock that went back (another process's, or corrected) is not "less than a minute ago".
    clock.advance(timedelta(minutes=-5))
    assert (await svc.send(sender.text(A, "在吗"))).status == 200
    assert await last_inbound() == clock.now()
