"""An image the assistant sends (a coupon's QR code) shows as a picture in the simulator, not as
"[图片]": the messages route gives its URL, which serves the image from the (fake) WeChat API."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.qrcodes import PNG_SIGNATURE
from bot.storage.db import Database
from bot.storage.models import Coupon, Merchant


async def call(svc: Any, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with svc.http.request(method, svc.base + path, **kwargs) as resp:
        body = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, json.loads(body)
        return resp.status, body


async def _coupon(sqlite_url: str) -> None:
    now = datetime.now(UTC)
    db = Database(sqlite_url)
    try:
        async with db.transaction() as session:
            merchant = Merchant(name="模拟器测试店", category="理发", created_at=now)
            session.add(merchant)
            await session.flush()
            session.add(Coupon(merchant_id=merchant.id, title="模拟器测试券", category="理发", price=10, stock=5,
                               per_resident_limit=1, valid_from=now - timedelta(days=1),
                               valid_until=now + timedelta(days=30), created_at=now))
    finally:
        await db.dispose()


async def test_coupon_qr_image_is_shown(service_factory: Any, sqlite_url: str, fake_api: str) -> None:
    sim = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)
    await _coupon(sqlite_url)
    openid = "o_sim_qr"
    for text, expected in (("兑换模拟器测试券", "确认"), ("确认", "兑换成功")):
        status, data = await call(sim, "POST", "/simulator/api/send",
                                  json={"openid": openid, "type": "text", "text": text})
        assert status == 200 and expected in data["reply"]["content"], data
    image: dict[str, Any] = {}
    for _ in range(100):
        status, data = await call(sim, "GET", "/simulator/api/messages", params={"openid": openid, "since": "0"})
        assert status == 200, data
        image = next((m for m in data["messages"] if m["msgtype"] == "image"), {})
        if image:
            break
        await asyncio.sleep(0.05)
    assert image.get("image", "").startswith("/simulator/api/media/"), image
    status, body = await call(sim, "GET", image["image"])
    assert status == 200 and body.startswith(PNG_SIGNATURE)
    status, data = await call(sim, "GET", "/simulator/api/media/unknown-media-id")
    assert status == 404 and "error" in data
    status, data = await call(sim, "GET", "/simulator/api/media/..%2F..%2Fetc")
    assert status == 404


@pytest.mark.browser
async def test_coupon_qr_image_in_chromium(browser: Any, service_factory: Any, sqlite_url: str, fake_api: str) -> None:
    from tests.web.test_simulator_browser import TIMEOUT, open_simulator

    sim = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)
    await _coupon(sqlite_url)
    context, page, problems = await open_simulator(browser, sim.base, viewport={"width": 420, "height": 860})
    for text in ("兑换模拟器测试券", "确认"):
        await page.fill("#text-input", text)
        await page.click("#send-btn")
        await page.locator(".msg.bot .bubble", has_text="兑换成功" if text == "确认" else "确认兑换").last.wait_for(
            timeout=TIMEOUT)
    picture = page.locator(".msg.bot.custom .bubble img")
    await picture.wait_for(timeout=TIMEOUT)
    await page.wait_for_function(
        "() => { const i = document.querySelector('.msg.bot.custom .bubble img'); return i && i.naturalWidth > 0; }",
        timeout=TIMEOUT,
    )
    assert "[图片]" not in await page.locator(".msg.bot.custom .bubble").last.inner_text()
    assert problems == []
    await context.close()
