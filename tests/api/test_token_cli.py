"""``python -m bot token …`` as a user runs it, against the database the service uses."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import select

from bot.storage.db import Database
from bot.storage.models import ApiToken
from tests.api.conftest import Api, assert_error
from tests.conftest import REPO


async def bot_cli(database_url: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "BOT_DATABASE_URL": database_url,
        "BOT_DATA_DIR": str(tmp_path / "data"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_create_use_list_revoke(service_factory, database_url, tmp_path):
    code, out, err = await bot_cli(database_url, tmp_path, "db", "upgrade")
    assert code == 0, err
    code, out, err = await bot_cli(database_url, tmp_path, "token", "create", "--name", "前台 小李", "--role", "staff")
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("csb_") and len(secret) > 40
    assert "will not be shown again" in out

    # stored hashed: the secret is nowhere in the table
    db = Database(database_url)
    try:
        async with db.session() as s:
            row = (await s.scalars(select(ApiToken))).one()
    finally:
        await db.dispose()
    assert row.role == "staff" and row.name == "前台 小李"
    assert secret not in (row.token_hash, row.prefix) and secret.startswith(row.prefix)
    assert len(row.token_hash) == 64

    svc = await service_factory(database_url)
    api = Api(svc, {})
    status, body, _ = await api.call("GET", "/me", secret)
    assert status == 200 and body["role"] == "staff" and body["name"] == "前台 小李"

    code, out, err = await bot_cli(database_url, tmp_path, "token", "list")
    assert code == 0 and row.prefix in out and "前台 小李" in out and secret not in out
    assert "UTC" in out.splitlines()[1]  # the last use is shown

    code, out, err = await bot_cli(database_url, tmp_path, "token", "revoke", row.prefix)
    assert code == 0 and "revoked token" in out, err
    status, body, _ = await api.call("GET", "/me", secret)
    assert_error(status, body, 401, "invalid_token")
    code, out, err = await bot_cli(database_url, tmp_path, "token", "revoke", str(row.id))
    assert code == 0 and "already revoked" in out

    code, out, err = await bot_cli(database_url, tmp_path, "token", "list", "--active")
    assert code == 0 and row.prefix not in out and "no tokens" in out


async def test_readable_errors(sqlite_url, tmp_path):
    # before `db upgrade`: says what to do, no traceback
    code, out, err = await bot_cli(sqlite_url, tmp_path, "token", "create", "--name", "x", "--role", "admin")
    assert code == 1 and "db upgrade" in err and "Traceback" not in err
    assert (await bot_cli(sqlite_url, tmp_path, "db", "upgrade"))[0] == 0

    code, out, err = await bot_cli(sqlite_url, tmp_path, "token", "create", "--name", "x", "--role", "boss")
    assert code == 2 and "boss" in err and "merchant" in err and "Traceback" not in err
    code, out, err = await bot_cli(sqlite_url, tmp_path, "token", "create", "--name", "  ", "--role", "staff")
    assert code == 2 and "name" in err and "Traceback" not in err
    code, out, err = await bot_cli(sqlite_url, tmp_path, "token", "create", "--name", "n" * 101, "--role", "staff")
    assert code == 2 and "100" in err
    for which in ("42", "99999999999999999999999"):
        code, out, err = await bot_cli(sqlite_url, tmp_path, "token", "revoke", which)
        assert code == 1 and "no token" in err and "Traceback" not in err, (which, err)
    code, out, _ = await bot_cli(sqlite_url, tmp_path, "token", "list")
    assert code == 0 and "no tokens" in out
