"""The simulator page in real Chromium: a tester chats, clicks the menu, sends a location, follows
through a building's QR code, uploads a picture and sees a deferred customer-service message."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.web.conftest import SLOW_ANSWER, SLOW_TEXT, slow_router
from tests.web.test_simulator_api import PNG

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "var" / "screenshots"
TIMEOUT = 15_000


def sample_picture() -> bytes:
    """A small PNG photo stand-in (a dark corridor with a lamp), or the 1-pixel PNG without Pillow."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return PNG
    image = Image.new("RGB", (160, 120), (60, 64, 72))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 90, 160, 120), fill=(110, 100, 90))
    draw.ellipse((70, 8, 90, 28), fill=(250, 230, 140))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def open_simulator(browser, base: str, **context_args):
    context = await browser.new_context(locale="zh-CN", **context_args)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    await page.goto(f"{base}/simulator")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    return context, page, problems


async def expect_bot_bubble(page, text: str, *, custom: bool = False) -> None:
    selector = ".msg.bot.custom .bubble" if custom else ".msg.bot .bubble"
    await page.locator(selector, has_text=text).last.wait_for(timeout=TIMEOUT)


async def expect_new_answer(page, before: int) -> str:
    """The text of the answer after the ``before`` bot bubbles already shown (whatever the flows say)."""
    answer = page.locator(".msg.bot .bubble").nth(before)
    await answer.wait_for(timeout=TIMEOUT)
    text = (await answer.inner_text()).strip()
    assert text
    return text




async def test_simulator_in_chromium(browser, service_factory, sqlite_url, fake_api, tmp_path: Path):
    svc = await service_factory(
        sqlite_url,
        fake_api,
        app_kwargs={"routers": [slow_router(1.0)]},
        BOT_SIMULATOR=1,
        BOT_REPLY_BUDGET=0.5,
    )
    context, page, problems = await open_simulator(browser, svc.base, viewport={"width": 1100, "height": 900})

    # A random openid, remembered across reloads; safe mode by default (the service has an AES key).
    openid = await page.input_value("#openid-input")
    assert openid.startswith("o_sim_")
    assert await page.input_value("#mode-select") == "safe"

    # Text.
    await page.fill("#text-input", "你好")
    await page.click("#send-btn")
    await page.locator(".msg.me .bubble", has_text="你好").wait_for(timeout=TIMEOUT)
    await expect_new_answer(page, 0)

    # Menu click: 办事指南 → 办事指南 (GUIDE); the click is noted and answered. (反映问题 would start
    # the complaint flow, which then takes the location and the picture below as part of the report.)
    await page.get_by_role("button", name="办事指南").click()
    await page.get_by_role("menuitem", name="办事指南").click()
    await page.locator(".note", has_text="点击菜单「办事指南」").wait_for(timeout=TIMEOUT)
    await expect_new_answer(page, 1)

    # Location from the preset.
    await page.click("#tools-toggle")
    await page.click("#tool-location")
    assert "新建南路" in await page.input_value("#loc-label")
    await page.click("#loc-send")
    await expect_bot_bubble(page, "收到您的位置：山西省大同市平城区新建南路")

    # Follow through a building's QR code: the reply names the bound building.
    await page.click("#tools-toggle")
    await page.click("#tool-subscribe")
    await page.fill("#scene-input", "building:新建南社区/3号楼")
    await page.click("#subscribe-send")
    await expect_bot_bubble(page, "已为您登记所在楼栋：新建南社区3号楼")

    # A picture: uploaded to the fake WeChat API, then sent as an image message.
    picture = tmp_path / "楼道.png"
    picture.write_bytes(sample_picture())
    await page.set_input_files("#image-file", str(picture))
    await page.locator(".msg.me .bubble img").last.wait_for(timeout=TIMEOUT)
    await expect_bot_bubble(page, "收到您的图片了")

    # A slow answer: the passive reply is "success", the answer arrives as a customer-service message.
    await page.fill("#text-input", SLOW_TEXT)
    await page.press("#text-input", "Enter")
    await page.locator(".note", has_text="稍后通过客服消息回复").wait_for(timeout=TIMEOUT)
    await expect_bot_bubble(page, SLOW_ANSWER, custom=True)
    assert await page.locator(".msg.bot.custom .tag", has_text="客服消息").count() == 1
    sent = await svc.fake_sent(openid)
    assert [m["payload"]["text"]["content"] for m in sent] == [SLOW_ANSWER]

    # Bad input gets a readable note, not a broken page.
    await page.click("#tools-toggle")
    await page.click("#tool-location")
    await page.fill("#loc-lat", "北纬四十度")
    await page.click("#loc-send")
    await page.locator(".note.error", has_text="纬度").wait_for(timeout=TIMEOUT)
    assert await page.locator("#location-form").is_visible()  # kept open to correct the input
    await page.click("#tools-toggle")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "simulator.png"))

    # Reload: same openid, the conversation is still there, the deferred message is not repeated.
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    assert await page.input_value("#openid-input") == openid
    await page.wait_for_timeout(2500)  # at least one poll
    assert await page.locator(".msg.bot.custom").count() == 1
    assert await page.locator(".msg.bot .bubble", has_text="已为您登记所在楼栋").count() == 1

    # The refused location is the one failed request; nothing else went wrong.
    assert [p for p in problems if "status of 400" not in p] == []
    await context.close()


async def test_simulator_on_a_phone_screen(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)
    context, page, problems = await open_simulator(
        browser, svc.base, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    await page.fill("#text-input", "你好")
    await page.click("#send-btn")
    await expect_new_answer(page, 0)
    # The phone fills the screen; the composer and the menu stay on it.
    box = await page.locator("#phone").bounding_box()
    assert box is not None and box["width"] == 390
    menu = await page.locator("#menu").bounding_box()
    assert menu is not None and menu["y"] + menu["height"] <= 844 + 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "simulator-mobile.png"))

    # Become a demo resident from the settings: the identity line follows, the chat starts afresh.
    await page.click("#settings-toggle")
    await page.fill("#openid-input", "o_demo_wangayi_0001")
    await page.press("#openid-input", "Tab")
    await page.locator("#identity", has_text="o_demo_wangayi_0001").wait_for(timeout=TIMEOUT)
    assert await page.locator(".msg").count() == 0
    await page.fill("#openid-input", "not valid!")
    await page.press("#openid-input", "Tab")
    await page.locator(".note.error", has_text="openid").wait_for(timeout=TIMEOUT)
    assert await page.input_value("#openid-input") == "o_demo_wangayi_0001"
    assert problems == []
    await context.close()
