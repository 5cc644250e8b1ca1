"""The simulator's JSON routes through HTTP: mounted only in simulator mode, the real wire, bad input."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.web.conftest import SLOW_ANSWER, SLOW_TEXT, slow_router

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND"
    b"\xaeB`\x82"
)
SIM_ROUTES = [
    ("GET", "/simulator"),
    ("GET", "/simulator/static/simulator.js"),
    ("GET", "/simulator/api/config"),
    ("POST", "/simulator/api/send"),
    ("GET", "/simulator/api/messages?openid=o_x"),
    ("POST", "/simulator/api/media"),
    ("GET", "/"),
]


async def call(svc, method: str, path: str, **kwargs):
    async with svc.http.request(method, svc.base + path, **kwargs) as resp:
        text = await resp.text()
        try:
            data = json.loads(text)
        except ValueError:
            data = text
        return resp.status, data


async def send(svc, **payload):
    return await call(svc, "POST", "/simulator/api/send", json=payload)


@pytest.fixture
async def sim(service_factory, sqlite_url, fake_api):
    return await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)


async def test_not_mounted_outside_simulator_mode(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    assert svc.settings.simulator is False
    for method, path in SIM_ROUTES:
        status, _ = await call(svc, method, path, allow_redirects=False)
        assert status in (404, 405), f"{method} {path} answered {status} outside simulator mode"
    status, _ = await call(svc, "POST", "/simulator/api/send", json={"openid": "o_x", "type": "text", "text": "你好"})
    assert status in (404, 405)
    # And nothing of it is on the router at all (whatever path a later change might give it).
    paths = [r.canonical for r in svc.runner.app.router.resources()]
    assert not [p for p in paths if p.startswith("/simulator")], paths


async def test_simulator_routes_are_mounted_in_simulator_mode(sim):
    paths = {r.canonical for r in sim.runner.app.router.resources()}
    assert {"/simulator", "/simulator/api/send", "/simulator/api/messages", "/simulator/api/media"} <= paths


async def test_page_and_assets_are_served_without_cdn(sim):
    status, html = await call(sim, "GET", "/simulator")
    assert status == 200
    assert "居民模拟器" in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere
    for asset in ("simulator.js", "simulator.css"):
        status, body = await call(sim, "GET", f"/simulator/static/{asset}")
        assert status == 200 and body
        assert "https://" not in body
    status, _ = await call(sim, "GET", "/simulator/static/../simulator.py")
    assert status == 404
    status, _ = await call(sim, "GET", "/", allow_redirects=False)
    assert status == 302


async def test_config_lists_modes_menu_and_presets(sim):
    status, data = await call(sim, "GET", "/simulator/api/config")
    assert status == 200
    # with a key /wechat takes encrypted messages only (plaintext needs BOT_WECHAT_ALLOW_PLAINTEXT)
    assert data["modes"] == ["compat", "safe"] and data["default_mode"] == "safe"
    keys = {sub.get("key") for top in data["menu"] for sub in top["sub_button"]}
    assert {"REPORT", "POINTS", "COURSES", "GUIDE", "HANDOFF", "MY_TICKETS"} <= keys
    assert any("新建南路" in p["label"] for p in data["presets"]["locations"])
    assert "o_demo_wangayi_0001" in {o["openid"] for o in data["openids"]}  # the demo residents


async def test_plain_only_without_aes_key(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1, BOT_WECHAT_AES_KEY="")
    status, data = await call(svc, "GET", "/simulator/api/config")
    assert data["modes"] == ["plain"]
    status, data = await send(svc, openid="o_sim_a", mode="safe", type="text", text="你好")
    assert status == 400 and "BOT_WECHAT_AES_KEY" in data["error"]
    status, data = await send(svc, openid="o_sim_a", type="text", text="你好")
    assert status == 200 and data["mode"] == "plain" and data["reply"]["content"].strip()


async def test_plain_with_a_key_only_while_plaintext_is_allowed(service_factory, sqlite_url, fake_api, sim):
    status, data = await send(sim, openid="o_sim_p", mode="plain", type="text", text="你好")
    assert status == 400 and "BOT_WECHAT_ALLOW_PLAINTEXT" in data["error"]
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1, BOT_WECHAT_ALLOW_PLAINTEXT=1)
    status, data = await call(svc, "GET", "/simulator/api/config")
    assert data["modes"] == ["plain", "compat", "safe"]
    status, data = await send(svc, openid="o_sim_p", mode="plain", type="text", text="你好")
    assert status == 200 and data["mode"] == "plain" and data["reply"]["content"].strip()


@pytest.mark.parametrize("mode", ["compat", "safe"])
async def test_every_action_in_every_mode(sim, mode):
    openid = f"o_sim_{mode}"
    status, data = await send(sim, openid=openid, mode=mode, type="text", text="你好")
    assert status == 200, data
    assert data["status"] == "replied" and data["reply"]["content"].strip()
    assert data["mode"] == mode

    # Two clicks within a second are two events, not a retry of one: two different answers.
    status, report = await send(sim, openid=openid, mode=mode, type="click", key="REPORT")
    status, courses = await send(sim, openid=openid, mode=mode, type="click", key="COURSES")
    assert report["reply"]["content"].strip() and courses["reply"]["content"].strip()
    assert report["reply"]["content"] != courses["reply"]["content"]
    assert "<EventKey><![CDATA[COURSES]]></EventKey>" in courses["xml"]

    status, data = await send(
        sim, openid=openid, mode=mode, type="location", lat="40.0768", lng=113.3001, label="平城区新建南路"
    )
    assert status == 200 and "收到您的位置：平城区新建南路" in data["reply"]["content"]

    status, data = await send(
        sim, openid=openid, mode=mode, type="subscribe", scene="building:新建南社区/3号楼"
    )
    assert "已为您登记所在楼栋：新建南社区3号楼" in data["reply"]["content"]
    assert "<EventKey><![CDATA[qrscene_building:新建南社区/3号楼]]></EventKey>" in data["xml"]

    status, data = await send(sim, openid=openid, mode=mode, type="voice", text="你好")
    assert status == 200 and data["reply"]["content"].strip()
    assert "<Recognition><![CDATA[你好]]></Recognition>" in data["xml"]
    status, data = await send(sim, openid=openid, mode=mode, type="voice", text="")
    assert status == 200 and data["reply"]["content"].strip() and "Recognition" not in data["xml"]

    status, uploaded = await call(sim, "POST", "/simulator/api/media?filename=a.png", data=PNG)
    assert status == 200, uploaded
    status, data = await send(sim, openid=openid, mode=mode, type="image", media_id=uploaded["media_id"])
    assert "收到您的图片了" in data["reply"]["content"]

    status, data = await send(sim, openid=openid, mode=mode, type="unsubscribe")
    assert status == 200 and data["status"] == "deferred" and data["reply"] is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"type": "text", "text": ""}, "不能为空"),
        ({"type": "text", "text": "   "}, "不能为空"),
        ({"type": "text", "text": 5}, "必须是文字"),
        ({"type": "text", "text": "长" * 2001}, "太长"),
        ({"type": "location", "lat": "abc", "lng": "1"}, "纬度"),
        ({"type": "location", "lat": "91", "lng": "1"}, "纬度"),
        ({"type": "location", "lat": "40", "lng": "181"}, "经度"),
        ({"type": "location", "lat": "NaN", "lng": "1"}, "纬度"),
        ({"type": "location", "lat": True, "lng": "1"}, "纬度"),
        ({"type": "location"}, "纬度"),
        ({"type": "image"}, "media_id"),
        ({"type": "image", "media_id": "../../etc"}, "media_id"),
        ({"type": "click", "key": ""}, "菜单 key"),
        ({"type": "scan"}, "场景值"),
        ({"type": "teleport"}, "type"),
        ({"type": "text", "text": "hi", "mode": "weird"}, "mode"),
        ({"type": "text", "text": "hi", "openid": ""}, "openid"),
        ({"type": "text", "text": "hi", "openid": "o x<>"}, "openid"),
        ({"type": "text", "text": "hi", "openid": "o" * 65}, "openid"),
        ({"type": "text", "text": "hi", "openid": None}, "openid"),
    ],
)
async def test_bad_input_is_a_400_with_a_reason(sim, payload, reason):
    body = {"openid": "o_sim_bad", **payload}
    status, data = await send(sim, **body)
    assert status == 400, data
    assert reason in data["error"]


async def test_bad_bodies_are_400(sim):
    for body in (b"", b"not json", b"[1, 2]", b"\xff\xfe", b"{" * 10):
        status, data = await call(sim, "POST", "/simulator/api/send", data=body)
        assert status == 400 and data["error"], body
    status, data = await call(sim, "POST", "/simulator/api/send", data=b"{" + b" " * (70 * 1024) + b"}")
    assert status == 400 and "太大" in data["error"]


async def test_media_upload_checks(sim):
    status, data = await call(sim, "POST", "/simulator/api/media", data=b"")
    assert status == 400 and "没有收到" in data["error"]
    status, data = await call(sim, "POST", "/simulator/api/media", data=b"MZ\x90\x00 not a picture")
    assert status == 400 and "JPG" in data["error"]
    big = PNG + b"\x00" * (3 * 1024 * 1024)
    status, data = await call(sim, "POST", "/simulator/api/media?filename=big.png", data=big)
    assert status == 400 and "太大" in data["error"]
    status, data = await call(sim, "POST", "/simulator/api/media?filename=../../x.png", data=PNG)
    assert status == 200 and data["media_id"].startswith("FAKEMEDIA_")
    assert data["content_type"] == "image/png"


async def test_messages_show_deferred_answers(service_factory, sqlite_url, fake_api):
    svc = await service_factory(
        sqlite_url,
        fake_api,
        app_kwargs={"routers": [slow_router(1.0)]},
        BOT_SIMULATOR=1,
        BOT_REPLY_BUDGET=0.3,
    )
    status, data = await send(svc, openid="o_sim_slow", type="text", text=SLOW_TEXT)
    assert status == 200 and data["status"] == "deferred"
    texts: list[str] = []
    for _ in range(100):
        status, data = await call(svc, "GET", "/simulator/api/messages?openid=o_sim_slow&since=0")
        assert status == 200
        texts = [m["text"] for m in data["messages"]]
        if texts:
            break
        await asyncio.sleep(0.1)
    assert texts == [SLOW_ANSWER]
    last = data["last_seq"]
    status, data = await call(svc, "GET", f"/simulator/api/messages?openid=o_sim_slow&since={last}")
    assert data["messages"] == []
    status, data = await call(svc, "GET", "/simulator/api/messages?openid=o_someone_else")
    assert data["messages"] == []
    for bad in ("since=-1", "since=abc", "openid=", "openid=a%20b"):
        query = bad if bad.startswith("openid") else f"openid=o_x&{bad}"
        status, data = await call(svc, "GET", f"/simulator/api/messages?{query}")
        assert status == 400 and data["error"], bad


async def test_without_fake_api_messages_say_why(service_factory, sqlite_url):
    svc = await service_factory(sqlite_url, BOT_SIMULATOR=1)
    status, data = await call(svc, "GET", "/simulator/api/messages?openid=o_x")
    assert status == 409 and "--demo" in data["error"]
    status, data = await call(svc, "POST", "/simulator/api/media", data=PNG)
    assert status == 409
    status, data = await call(svc, "GET", "/simulator/api/config")
    assert data["fake_api"] is False
