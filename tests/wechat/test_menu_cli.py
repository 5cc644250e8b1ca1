"""``python -m bot menu``: checked, pushed to a fake WeChat API started by the test, readable errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from tests.wechat.conftest import WX_APPID, WX_SECRET, FakeControl

REPO = Path(__file__).resolve().parents[2]
MENU = REPO / "bot" / "wechat" / "menu.yml"


async def run_bot(*args: str, base: str, tmp_path: Path, secret: str = WX_SECRET) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "BOT_WECHAT_API_BASE": base,
        "BOT_WECHAT_APPID": WX_APPID,
        "BOT_WECHAT_SECRET": secret,
        "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'menu.sqlite3'}",
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_REDIS_URL": "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_repo_menu_is_a_real_service_menu() -> None:
    data = yaml.safe_load(MENU.read_text(encoding="utf-8"))
    buttons = data["button"]
    assert 1 <= len(buttons) <= 3
    keys = {b.get("key") for top in buttons for b in top.get("sub_button", [top])}
    assert {"REPORT", "POINTS", "COURSES", "GUIDE", "HANDOFF", "MY_TICKETS"} <= keys
    assert any(b.get("type") == "view" for top in buttons for b in top.get("sub_button", [top]))


async def test_menu_push_creates_the_menu(wx_fake: FakeControl, tmp_path: Path) -> None:
    code, out, err = await run_bot("menu", "push", base=wx_fake.base, tmp_path=tmp_path)
    assert code == 0, err
    assert "menu pushed" in out
    pushed = await wx_fake.menu()
    assert pushed == yaml.safe_load(MENU.read_text(encoding="utf-8"))
    assert await wx_fake.calls("/cgi-bin/stable_token") == 1
    # The token went into the shared store: a second push does not ask for a new one.
    code, _, err = await run_bot("menu", "push", "--file", str(MENU), base=wx_fake.base, tmp_path=tmp_path)
    assert code == 0, err
    assert await wx_fake.calls("/cgi-bin/stable_token") == 1


async def test_menu_show_prints_json_and_remote(wx_fake: FakeControl, tmp_path: Path) -> None:
    code, out, err = await run_bot("menu", "show", base=wx_fake.base, tmp_path=tmp_path)
    assert code == 0, err
    assert json.loads(out)["button"][0]["name"] == yaml.safe_load(MENU.read_text("utf-8"))["button"][0]["name"]
    code, out, err = await run_bot("menu", "show", "--remote", base=wx_fake.base, tmp_path=tmp_path)
    assert code == 1 and "46003" in err and "Traceback" not in err  # nothing pushed yet
    await run_bot("menu", "push", base=wx_fake.base, tmp_path=tmp_path)
    code, out, err = await run_bot("menu", "show", "--remote", base=wx_fake.base, tmp_path=tmp_path)
    assert code == 0, err
    assert json.loads(out) == yaml.safe_load(MENU.read_text("utf-8"))


BAD_MENUS = {
    "too_many_top": (
        "button:\n" + "".join(f"  - type: click\n    name: 按钮{i}\n    key: K{i}\n" for i in range(4)),
        ":11:", "at most 3",
    ),
    "too_many_sub": (
        "button:\n  - name: 服务\n    sub_button:\n"
        + "".join(f"      - type: click\n        name: 子{i}\n        key: K{i}\n" for i in range(6)),
        ":19:", "at most 5",
    ),
    "long_top_name": ("button:\n  - type: click\n    name: 社区服务中心办事\n    key: GUIDE\n", ":3:", "bytes"),
    "missing_key": ("button:\n  - name: 服务\n    sub_button:\n      - type: click\n        name: 反映\n",
                    ":4:", "needs a 'key'"),
    "lower_key": ("button:\n  - type: click\n    name: 反映\n    key: report\n", ":4:", "UPPER_SNAKE"),
    "view_without_url": ("button:\n  - type: view\n    name: 官网\n", ":2:", "http(s) 'url'"),
    "bad_type": ("button:\n  - type: clack\n    name: 反映\n    key: REPORT\n", ":2:", "type must be one of"),
    "not_yaml": ("button:\n  - name: [unclosed\n", ":", "not valid YAML"),
    "no_button": ("menu: []\n", ":1:", "'button' list"),
}


@pytest.mark.parametrize("case", sorted(BAD_MENUS))
def test_bad_menu_file_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    from bot.cli import main

    content, where, problem = BAD_MENUS[case]
    bad = tmp_path / "bad_menu.yml"
    bad.write_text(content, encoding="utf-8")
    assert main(["menu", "check", "--file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}{where}" in err
    assert problem in err


async def test_bad_menu_is_not_pushed(wx_fake: FakeControl, tmp_path: Path) -> None:
    content, where, problem = BAD_MENUS["too_many_sub"]
    bad = tmp_path / "bad_menu.yml"
    bad.write_text(content, encoding="utf-8")
    code, _, err = await run_bot("menu", "push", "--file", str(bad), base=wx_fake.base, tmp_path=tmp_path)
    assert code == 2
    assert f"{bad}{where}" in err and problem in err
    assert "Traceback" not in err
    assert await wx_fake.menu() is None
    assert await wx_fake.calls("/cgi-bin/stable_token") == 0


async def test_missing_menu_file(wx_fake: FakeControl, tmp_path: Path) -> None:
    code, _, err = await run_bot("menu", "check", "--file", str(tmp_path / "nope.yml"),
                                 base=wx_fake.base, tmp_path=tmp_path)
    assert code == 2 and "no such file" in err and "Traceback" not in err


async def test_wrong_secret_is_reported_without_the_secret(wx_fake: FakeControl, tmp_path: Path) -> None:
    code, out, err = await run_bot("menu", "push", base=wx_fake.base, tmp_path=tmp_path, secret="WRONG-SECRET-123")
    assert code == 1
    assert "40125" in err
    assert "WRONG-SECRET-123" not in out + err
    assert "Traceback" not in err
