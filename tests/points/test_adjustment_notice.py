"""A resident is told in WeChat when staff adjust their points through the JSON API: how many
points were added or taken, the reason staff chose to tell them, and the balance after it — never
the staff's note. Once per adjustment (a repeated request sends nothing more); ``notify: false``
(bulk seeding) sends nothing; a resident who unfollowed is sent nothing; one whose 48-hour window
had closed reads it in front of the answer to their next message."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.api.conftest import Api, assert_error, make_tokens
from tests.web.console_util import say, sent_texts, wait_sent

ADJUST = "/points/adjustments"


async def start(service_factory: Any, database_url: str, fake_api: str) -> Api:
    return Api(await service_factory(database_url, fake_api), await make_tokens(database_url))


async def resident(api: Api, openid: str) -> tuple[int, int]:
    """The resident (made by their first message) and their balance."""
    assert await say(api.svc, openid, "你好")
    found = await api.ok("/residents", "staff", q=openid)
    rid = found["items"][0]["id"]
    return rid, (await api.ok(f"/points/residents/{rid}", "staff"))["balance"]


async def adjust(api: Api, body: dict[str, Any], token: str = "staff") -> tuple[int, Any]:
    status, data, _ = await api.call("POST", ADJUST, token, json=body)
    return status, data


async def test_the_resident_is_told_of_an_adjustment_never_the_note(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    openid = "o_points_told_0001"
    rid, start_balance = await resident(api, openid)
    body = {"resident_id": rid, "amount": 30, "note": "王主任电话确认，内部核对单号17",
            "reason_for_resident": "参加12月6日楼道清扫志愿服务。", "request_key": "told-1"}
    status, entry = await adjust(api, body)
    assert status == 201, entry
    texts = await wait_sent(api.svc, openid, "增加了30积分")
    told = [t for t in texts if "积分" in t and "增加了30" in t]
    assert len(told) == 1, texts
    assert "原因：参加12月6日楼道清扫志愿服务。" in told[0], told[0]  # one full stop, not two
    assert f"调整后您共有{start_balance + 30}积分" in told[0], told[0]
    assert not any("王主任" in t or "单号" in t for t in texts), texts

    # The same request again: the stored entry, no second message.
    status, again = await adjust(api, body)
    assert status == 201 and again["id"] == entry["id"]

    # Taking points, with no reason to tell: the amount and the balance, and whom to ask.
    status, _ = await adjust(api, {"resident_id": rid, "amount": -10, "note": "重复发放，扣回"}, "supervisor")
    assert status == 201
    texts = await wait_sent(api.svc, openid, "扣减了您的10积分")
    taken = next(t for t in texts if "扣减了您的10积分" in t)
    assert "原因" not in taken and "重复发放" not in taken and f"{start_balance + 20}积分" in taken, taken
    assert "转人工" in taken
    await asyncio.sleep(1.5)  # the outbox would have sent a second copy by now
    texts = await sent_texts(api.svc, openid)
    assert sum("增加了30积分" in t for t in texts) == 1, texts

    # Bulk seeding sends nothing.
    status, _ = await adjust(api, {"resident_id": rid, "amount": 100, "note": "benchmark seed", "notify": False})
    assert status == 201
    await asyncio.sleep(1.5)
    assert not any("增加了100积分" in t for t in await sent_texts(api.svc, openid))
    assert (await api.ok(f"/points/residents/{rid}", "staff"))["balance"] == start_balance + 120

    # A blank or too long reason is refused, naming the field.
    for bad in ("  ", "很长" * 21):
        message = assert_error(*await adjust(api, {"resident_id": rid, "amount": 1, "note": "x",
                                                   "reason_for_resident": bad}), 400)
        assert "reason_for_resident" in message, message
    assert_error(*await adjust(api, {"resident_id": rid, "amount": 1, "note": "x", "notify": "yes"}), 400)


async def test_unfollowed_and_closed_window(service_factory, database_url, fake_api):
    api = await start(service_factory, database_url, fake_api)
    s = api.svc.sender()

    # Unfollowed: nothing is sent (WeChat would refuse it), the points are still adjusted.
    gone = "o_points_told_gone"
    rid, _ = await resident(api, gone)
    assert (await s.send(api.svc.http, s.event(gone, "unsubscribe"))).status == 200
    status, _ = await adjust(api, {"resident_id": rid, "amount": 5, "note": "补记", "reason_for_resident": "补记签到"})
    assert status == 201
    await asyncio.sleep(1.5)
    assert not any("积分" in t for t in await sent_texts(api.svc, gone))

    # The 48-hour window closed (WeChat refuses the message): shown before the next answer.
    late = "o_points_told_late"
    rid, start_balance = await resident(api, late)
    async with api.svc.http.post(f"{api.svc.fake_api}/fake/errors",
                                 json={"endpoint": "message/custom/send", "count": 1, "errcode": 45015}) as r:
        assert r.status == 200
    status, _ = await adjust(api, {"resident_id": rid, "amount": 8, "note": "补记",
                                   "reason_for_resident": "活动签到漏记，为您补上"})
    assert status == 201
    await asyncio.sleep(1.5)
    assert not any("增加了8积分" in t for t in await sent_texts(api.svc, late))
    reply = await say(api.svc, late, "你好")
    assert reply and "增加了8积分" in reply and "活动签到漏记" in reply, reply
    assert f"调整后您共有{start_balance + 8}积分" in reply
