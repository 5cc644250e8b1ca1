"""The tuning pages' own behaviour in real Chromium, one server in the test's process (SQLite):
the evaluation page's waiting indicator is drawn with CSS (an emoji is a tofu box without a
colour-emoji font) and publishing waits for the figures; the versions page follows this process's
switch to a just-published version without a reload."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.appkeys import RUNTIME
from tests.web.console_util import add_users, say
from tests.web.test_console_browser import LAPTOP, TIMEOUT, log_in, open_page

pytestmark = pytest.mark.browser

NOT_UNDERSTOOD = "电视老是没信号"  # fallback with the packaged data


def symbols(text: str) -> list[str]:
    """Characters a console font may lack: pictographs, dingbats and other symbol blocks."""
    return [c for c in text if 0x2190 <= ord(c) <= 0x2BFF or 0x1F000 <= ord(c) <= 0x1FAFF or ord(c) == 0xFE0F]


@pytest.mark.timeout(300)
async def test_evaluation_spinner_and_versions_without_reload(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("yun", "operator", {}))
    await say(svc, "oTuningPages000000000001", NOT_UNDERSTOOD)
    language = svc.runner.app[RUNTIME].language
    context, page, problems = await open_page(browser, LAPTOP)
    page.set_default_timeout(TIMEOUT)
    await log_in(page, svc.base, "yun")
    await page.wait_for_url("**/console**")

    # the operator labels the message, so the draft has something to publish
    await page.goto(f"{svc.base}/console/tuning")
    group = page.locator("section.group", has_text=NOT_UNDERSTOOD).first
    await group.locator("select[name=intent]").select_option("complaint")
    await group.locator("button[value=intent]").click()
    await page.wait_for_selector("p.ok")

    # while the figures are computed, the page shows a drawn indicator, not a glyph
    released = asyncio.Event()

    async def hold(route: Any) -> None:
        await released.wait()
        await route.continue_()

    await page.route("**/console/tuning/evaluation/figures", hold)
    await page.goto(f"{svc.base}/console/tuning/evaluation")
    loading = page.locator("#figures .loading")
    await loading.wait_for()
    looks = await loading.evaluate("""el => {
        const before = getComputedStyle(el, '::before'), after = getComputedStyle(el, '::after');
        return {before: before.content, after: after.content, width: parseFloat(before.width) || 0,
                ring: before.borderTopStyle, text: el.textContent};
    }""")
    assert not symbols(looks["before"] + looks["after"] + looks["text"]), looks
    assert looks["width"] > 0 and looks["ring"] == "solid", looks
    assert await page.locator("#publish").is_disabled()  # "I have seen the evaluation" needs it shown
    released.set()
    await page.wait_for_selector("#figures[data-loaded='1']", timeout=120_000)
    assert await page.locator("#publish").is_enabled()
    await page.unroute("**/console/tuning/evaluation/figures")

    # publish while this process cannot switch yet: the versions page says it is switching, then
    # follows the switch on its own (the page is not loaded again)
    gate = asyncio.Event()
    switch = language.switch

    async def held_switch(*args: Any, **kwargs: Any) -> None:
        await gate.wait()
        await switch(*args, **kwargs)

    language.switch = held_switch
    try:
        await page.fill("input[name=note]", "电视是报修")
        await page.check("#confirm")
        await page.click("#publish")
        await page.wait_for_url("**/console/tuning/versions**")
        assert "数据文件" in await page.locator("#serving").inner_text()
        await page.evaluate("window.sameDocument = true")
        gate.set()
        await page.locator("#serving", has_text="本进程正在使用 v1").wait_for(timeout=120_000)
        assert await page.locator("#switching").count() == 0
        assert await page.evaluate("window.sameDocument === true")
    finally:
        gate.set()
        language.switch = switch
    assert not problems, problems
    await context.close()


@pytest.mark.timeout(300)
async def test_discarding_the_draft_asks_first(browser, service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("yun", "operator", {}))
    await say(svc, "oTuningPages000000000002", NOT_UNDERSTOOD)
    context, page, problems = await open_page(browser, LAPTOP)
    page.set_default_timeout(TIMEOUT)
    await log_in(page, svc.base, "yun")
    await page.wait_for_url("**/console**")
    await page.goto(f"{svc.base}/console/tuning")
    group = page.locator("section.group", has_text=NOT_UNDERSTOOD).first
    await group.locator("select[name=intent]").select_option("complaint")
    await group.locator("button[value=intent]").click()
    await page.wait_for_selector("p.ok")
    await page.goto(f"{svc.base}/console/tuning/draft")
    asked: list[str] = []

    async def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    await page.evaluate("window.sameDocument = true")
    page.once("dialog", lambda d: asyncio.ensure_future(answer(d, False)))
    await page.click("#discard")  # waits for a navigation the click started, had it started one
    await page.wait_for_load_state()
    assert await page.evaluate("window.sameDocument === true")  # not submitted
    assert asked and "不能恢复" in asked[0], asked
    assert await page.locator("#discard").count() == 1 and NOT_UNDERSTOOD in await page.inner_text("body")
    page.once("dialog", lambda d: asyncio.ensure_future(answer(d, True)))
    async with page.expect_navigation():
        await page.click("#discard")
    await page.locator("p.ok", has_text="草稿已清空").wait_for()
    assert await page.locator("#discard").count() == 0
    assert not problems, problems
    await context.close()
