"""``python -m bot chat`` through a subprocess against the running service, stdin piped."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from tests.conftest import REPO, free_port
from tests.web.conftest import SLOW_ANSWER, SLOW_TEXT, slow_router
from tests.web.test_simulator_api import PNG

PYTHON = sys.executable


def chat_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a developer whose settings match the server's (what `make run` gives)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(
        BOT_WECHAT_TOKEN=settings.wechat_token,
        BOT_WECHAT_APPID=settings.wechat_appid,
        BOT_WECHAT_AES_KEY=settings.wechat_aes_key,
        PYTHONIOENCODING="utf-8",
    )
    env.update(extra)
    return env


async def chat(args: list[str], stdin: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "bot",
        "chat",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode("utf-8")), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8"), err.decode("utf-8")


def answers(out: str) -> list[str]:
    """Each answer the CLI printed (first line), in order."""
    return [line for line in out.splitlines() if line.startswith(("助手：", "助手[客服消息]："))]


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
async def test_conversation_over_the_real_wire(service_factory, sqlite_url, fake_api, tmp_path: Path, mode):
    # Plaintext is 明文模式, without an EncodingAESKey (with one the server takes only encrypted messages).
    keyless = {"BOT_WECHAT_AES_KEY": ""} if mode == "plain" else {}
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1, **keyless)
    picture = tmp_path / "photo.png"
    picture.write_bytes(PNG)
    script = "\n".join(
        [
            "你好",
            "/location 40.0768 113.3001 平城区新建南路",
            "/subscribe building:新建南社区/3号楼",
            f"/image {picture}",
            "/click REPORT",  # starts the complaint flow: the voice text is the report
            "/voice 楼道灯不亮",
            "不留",  # 物业服务's staff visit: a phone is asked for first
            "/unsubscribe",
        ]
    )
    code, out, err = await chat(
        ["--url", svc.base, "--openid", f"o_cli_{mode}", "--mode", mode], script, chat_env(svc.settings)
    )
    assert code == 0, err
    assert err == ""
    shown = answers(out)
    assert len(shown) == 7, out  # every message but the unsubscribe is answered
    assert all(line.split("：", 1)[1].strip() for line in shown)
    assert "收到您的位置：平城区新建南路" in out
    assert "已为您登记所在楼栋：新建南社区3号楼" in out
    assert "收到您的图片了" in out
    assert "联系电话" in shown[-2]
    assert "GD" in shown[-1]  # the report became a ticket


async def test_deferred_answer_arrives_as_customer_service_message(service_factory, sqlite_url, fake_api):
    svc = await service_factory(
        sqlite_url,
        fake_api,
        app_kwargs={"routers": [slow_router(1.0)]},
        BOT_SIMULATOR=1,
        BOT_REPLY_BUDGET=0.3,
    )
    code, out, err = await chat(
        ["--url", svc.base, "--openid", "o_cli_slow"], f"{SLOW_TEXT}\n", chat_env(svc.settings)
    )
    assert code == 0, err
    assert "customer-service message" in out  # the passive reply was "success"
    assert out.count(f"助手[客服消息]：{SLOW_ANSWER}") == 1, out
    assert [m["payload"]["text"]["content"] for m in await svc.fake_sent("o_cli_slow")] == [SLOW_ANSWER]


async def test_reads_the_fake_api_directly_without_simulator(service_factory, sqlite_url, fake_api):
    svc = await service_factory(
        sqlite_url, fake_api, app_kwargs={"routers": [slow_router(1.0)]}, BOT_REPLY_BUDGET=0.3
    )
    env = chat_env(svc.settings, BOT_WECHAT_API_BASE=fake_api)
    code, out, err = await chat(["--url", svc.base, "--openid", "o_cli_direct"], f"{SLOW_TEXT}\n", env)
    assert code == 0, err
    assert out.count(f"助手[客服消息]：{SLOW_ANSWER}") == 1, out


async def test_bad_lines_are_explained_and_the_chat_goes_on(service_factory, sqlite_url, fake_api, tmp_path):
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)
    not_a_picture = tmp_path / "notes.txt"
    not_a_picture.write_text("hello")
    script = "\n".join(
        [
            "/location abc 113",
            "/location 40",
            "/image /no/such/file.png",
            f"/image {not_a_picture}",
            "/click",
            "/teleport home",
            "",
            "   ",
            "//不是命令",
            "/help",
            "/quit",
            "this line is never sent",
        ]
    )
    code, out, err = await chat(["--url", svc.base, "--openid", "o_cli_bad"], script, chat_env(svc.settings))
    assert code == 0, err
    assert "纬度" in err
    assert "usage: /location" in err
    assert "/no/such/file.png: cannot read" in err
    assert "not a JPG, PNG, GIF or WebP image" in err
    assert "usage: /click" in err
    assert "unknown command /teleport" in err
    assert "Traceback" not in err
    assert "/image PATH" in out  # the help
    assert len(answers(out)) == 1  # only "//不是命令" was sent (as text "/不是命令")


async def test_server_not_running_is_a_readable_error():
    port = free_port()
    code, _out, err = await chat(
        ["--url", f"http://127.0.0.1:{port}"], "你好\n", chat_env(Settings())
    )
    assert code == 1
    assert f"cannot reach the server at http://127.0.0.1:{port}" in err
    assert "make run" in err
    assert "Traceback" not in err


async def test_plaintext_to_a_server_with_a_key_is_explained(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)
    code, _out, err = await chat(["--url", svc.base, "--mode", "plain"], "你好\n", chat_env(svc.settings))
    assert code == 1
    assert "HTTP 403" in err and "encrypt_type=aes" in err and "Traceback" not in err


async def test_settings_that_differ_from_the_server_are_explained(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)
    env = chat_env(svc.settings, BOT_WECHAT_TOKEN="notTheServersToken")
    code, _out, err = await chat(["--url", svc.base, "--mode", "plain"], "你好\n", env)
    assert code == 1
    assert "HTTP 403" in err and "BOT_WECHAT_TOKEN" in err


async def test_encrypted_mode_without_a_key_is_refused():
    env = chat_env(Settings(), BOT_WECHAT_AES_KEY="")
    code, _out, err = await chat(["--url", "http://127.0.0.1:9", "--mode", "safe"], "", env)
    assert code == 2
    assert "BOT_WECHAT_AES_KEY" in err
    code, _out, err = await chat(["--url", "http://127.0.0.1:9", "--openid", "bad openid!"], "", env)
    assert code == 2 and "--openid" in err
