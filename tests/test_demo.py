"""``python -m bot demo load``: demo data on a fresh database, idempotent, readable errors."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot.services.takeover import DEFAULT_CANNED
from bot.storage.db import Database
from bot.storage.models import ApiToken, Message, Resident
from tests.conftest import REPO
from tests.web.console_util import add_users, login


async def bot_cli(*args: str, database_url: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE_URL=database_url, PYTHONIOENCODING="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def counts(database_url: str) -> tuple[int, int, int, list[tuple[str, str | None]]]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            residents = await session.scalar(select(func.count()).select_from(Resident))
            messages = await session.scalar(select(func.count()).select_from(Message))
            tokens = await session.scalar(select(func.count()).select_from(ApiToken))
            rows = await session.execute(select(Resident.openid, Resident.building))
            buildings = [(openid, building) for openid, building in rows]
    finally:
        await db.dispose()
    return int(residents or 0), int(messages or 0), int(tokens or 0), sorted(buildings)


async def test_load_twice_on_a_fresh_database(database_url):
    code, out, err = await bot_cli("db", "upgrade", database_url=database_url)
    assert code == 0, out + err
    code, out, err = await bot_cli("demo", "load", database_url=database_url)
    assert code == 0, out + err
    assert "residents (4 new)" in out and "messages (12 new)" in out
    first = await counts(database_url)
    residents, messages, tokens, buildings = first
    assert residents == 4 and messages == 12
    assert tokens == 0  # tokens are `python -m bot token create`, never demo data
    assert ("o_demo_wangayi_0001", "3号楼") in buildings

    code, out, err = await bot_cli("demo", "load", database_url=database_url)
    assert code == 0, out + err
    assert "residents (0 new)" in out and "messages (0 new)" in out
    assert await counts(database_url) == first


async def test_load_without_upgrade_first(sqlite_url):
    code, out, err = await bot_cli("demo", "load", database_url=sqlite_url)
    assert code == 0, out + err
    residents, messages, _, _ = await counts(sqlite_url)
    assert residents == 4 and messages == 12


async def test_demo_residents_keep_chatting(service_factory, sqlite_url, fake_api):
    """A demo resident's history is ordinary history: the service takes the conversation from there."""
    code, out, err = await bot_cli("demo", "load", database_url=sqlite_url)
    assert code == 0, out + err
    svc = await service_factory(sqlite_url, fake_api)
    s = svc.sender("safe")
    reply = await s.send(svc.http, s.text("o_demo_wangayi_0001", "你好"))
    assert reply.status == 200 and reply.content
    residents, messages, _, _ = await counts(sqlite_url)
    assert residents == 4 and messages > 12  # the same resident, one more exchange


async def test_staff_trying_the_demo_find_canned_replies(service_factory, sqlite_url, fake_api):
    """The demo's console offers the usual canned replies when a conversation is taken over, once
    however often the demo is loaded."""
    for _ in range(2):
        code, out, err = await bot_cli("demo", "load", database_url=sqlite_url)
        assert code == 0, out + err
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("trial", "staff", {}))
    staff = await login(svc.http, svc.base, "trial")
    _, page, _ = await staff.get("/console/canned")
    assert page.count('name="title"') - 1 == len(DEFAULT_CANNED)  # the new-reply form has one too
    _, inbox, _ = await staff.get("/console/inbox")
    rid = re.search(r'data-resident="(\d+)"', inbox)
    assert rid
    status, _, _ = await staff.post(f"/console/conversations/{rid.group(1)}/claim")
    assert status == 303
    _, page, _ = await staff.get(f"/console/conversations/{rid.group(1)}")
    assert 'id="canned-select"' in page and f">{DEFAULT_CANNED[0][0]}</option>" in page


async def test_bad_data_file_names_file_and_line(sqlite_url, tmp_path: Path):
    cases = {
        "residents:\n  - openid: o_a\n    messages:\n      - in: hi\n        out: ho\n": (
            ":4: residents[0].messages[0]: give exactly one of 'in'"
        ),
        "residents:\n  - community: x\n": ":2: residents[0]: 'openid' is required",
        "residents:\n  - openid: o_a\n  - openid: o_a\n": ":3: residents[1]: openid o_a appears twice",
        "coupons: []\n": ":1: unknown section 'coupons'",
        "residents: [1, 2]\n": "residents[0]: each entry must be a mapping",
        "residents:\n  - openid: o_a\n    messages:\n      - in: hi\n        minutes_ago: -3\n": (
            ":4: residents[0].messages[0]: 'minutes_ago' must be a number"
        ),
        "residents:\n  - openid: [unclosed\n": "not valid YAML",
        "- just a list\n": ":1: expected sections",
    }
    for i, (text, expected) in enumerate(cases.items()):
        file = tmp_path / f"bad{i}.yml"
        file.write_text(text, encoding="utf-8")
        code, out, err = await bot_cli("demo", "load", "--file", str(file), database_url=sqlite_url)
        assert code == 2, (text, out, err)
        assert f"{file}" in err and expected in err, (text, err)
        assert "Traceback" not in err
    residents, messages, _, _ = await counts(sqlite_url)
    assert residents == 0 and messages == 0  # nothing half-loaded
    code, out, err = await bot_cli("demo", "load", "--file", str(tmp_path / "missing.yml"), database_url=sqlite_url)
    assert code == 2 and "cannot read" in err
