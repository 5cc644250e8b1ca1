"""After a redemption in the chat the resident also gets a QR image of the code: queued with the
reply, made locally as a PNG and uploaded as WeChat media by the outbox worker (off the reply's
path), sent as an image customer-service message. If the upload fails the resident still has the
text code, the redemption stands and the worker tries the upload again later."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import Any

import segno
from PIL import Image
from sqlalchemy import select

from bot import qrcodes
from bot.appkeys import RUNTIME
from bot.qrcodes import PNG_SIGNATURE
from bot.services import points
from bot.storage.db import Database
from bot.storage.models import IssuedCoupon, OutboxMessage
from tests.conftest import Service
from tests.points.helpers import NOW, make_coupon
from tests.points.test_journeys import CODE, Chat, resident_id, start


async def redeem(svc: Service, db: Database, openid: str) -> tuple[str, int]:
    chat = Chat(svc, openid)
    await chat.say("你好")
    rid = await resident_id(db, openid)
    async with db.transaction() as s:
        await points.credit(
            s, resident_id=rid, amount=100, reason="adjust", ref_type="test", ref_id="1", idempotency_key=f"seed-{rid}", now=NOW
        )
    assert "确认" in await chat.say("理发券")
    done = await chat.say("确认")
    match = CODE.search(done)
    assert match and "兑换成功" in done, done
    return match[1], rid


def pixels(image: bytes) -> tuple[tuple[int, int], list[Any]]:
    with Image.open(io.BytesIO(image)) as img:
        grey = img.convert("L")
        return grey.size, [grey.getpixel((x, y)) for y in range(grey.height) for x in range(grey.width)]


def qr_pixels(code: str) -> tuple[tuple[int, int], list[Any]]:
    """The QR symbol of ``code`` as segno's own PNG writer draws it (scale 8, a border of 4)."""
    out = io.BytesIO()
    segno.make(code, error="m", micro=False, mask=qrcodes.MASK).save(out, kind="png", scale=8, border=4)
    return pixels(out.getvalue())


async def images_sent(svc: Service, openid: str) -> list[dict[str, Any]]:
    for _ in range(200):
        images = [m for m in await svc.fake_sent(openid) if m["msgtype"] == "image"]
        if images:
            return images
        await asyncio.sleep(0.05)
    raise AssertionError(f"no image message was sent to {openid}")


async def test_redemption_sends_a_qr_image_of_the_code(service_factory: Any, database_url: str, fake_api: str) -> None:
    svc, _clock, db = await start(service_factory, database_url, fake_api)
    await make_coupon(db, stock=5, price=15)
    openid = "oCouponQrAlpha00000000001"
    code, _ = await redeem(svc, db, openid)

    images = await images_sent(svc, openid)
    assert len(images) == 1
    media_id = images[0]["payload"]["image"]["media_id"]
    async with svc.http.get(f"{fake_api}/fake/calls") as resp:
        assert (await resp.json()).get("/cgi-bin/media/upload") == 1
    uploaded = await svc.runner.app[RUNTIME].api.download_media(media_id)
    assert uploaded.content.startswith(PNG_SIGNATURE) and uploaded.content_type == "image/png"
    assert pixels(uploaded.content) == qr_pixels(code)  # the code's QR symbol, 8 pixels a module

    # The route the pages use renders the same kind of image for a code.
    async with svc.http.get(svc.base + "/merchant/qr.png", params={"code": code}) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert (await resp.read()).startswith(PNG_SIGNATURE)
    async with svc.http.get(svc.base + "/merchant/qr.png", params={"code": "<script>"}) as resp:
        assert resp.status == 400


async def test_upload_failure_keeps_the_text_code_and_is_retried(
    service_factory: Any, database_url: str, fake_api: str
) -> None:
    svc, clock, db = await start(service_factory, database_url, fake_api)
    await make_coupon(db, stock=5, price=15)
    async with svc.http.post(f"{fake_api}/fake/errors", json={"endpoint": "media/upload", "count": 1, "status": 503}) as resp:
        assert resp.status == 200
    openid = "oCouponQrBravo00000000002"
    code, rid = await redeem(svc, db, openid)

    for _ in range(200):  # the worker tries the upload after the reply, and it fails
        async with svc.http.get(f"{fake_api}/fake/calls") as resp:
            if (await resp.json()).get("/cgi-bin/media/upload") == 1:
                break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the QR image was never uploaded")
    async with db.session() as s:
        issued = await s.scalar(select(IssuedCoupon).where(IssuedCoupon.code == code))
        assert issued is not None and issued.status == "issued" and issued.resident_id == rid
        assert await points.balance_of(s, rid) == 85 + 20  # + the welcome points the mall gives, as 查积分 does
    assert code in await Chat(svc, openid).say("我的券")
    assert [m for m in await svc.fake_sent(openid) if m["msgtype"] == "image"] == []

    clock.advance(timedelta(minutes=1))  # past the worker's backoff: uploaded and sent this time
    images = await images_sent(svc, openid)
    assert len(images) == 1
    async with svc.http.get(f"{fake_api}/fake/calls") as resp:
        assert (await resp.json()).get("/cgi-bin/media/upload") == 2
    statuses: list[str] = []
    for _ in range(200):  # the worker records the outcome right after the send
        async with db.session() as s:
            queued = (await s.scalars(select(OutboxMessage).where(OutboxMessage.openid == openid))).all()
        statuses = [q.status for q in queued if q.payload.get("msgtype") == "image"]
        if statuses == ["sent"]:
            break
        await asyncio.sleep(0.05)
    assert statuses == ["sent"]
