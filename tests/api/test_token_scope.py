"""A staff token sees what its staff member sees in the console: its department's tickets and those
assigned to it (docs/console.md). Its scope is a department (``token create --department``) or the
console user it was issued for (``--user``: their role, department and name, read at every use);
another department's ticket is a 403 ``out_of_scope`` naming both departments, a ticket that does
not exist a 404. Over HTTP, on SQLite and PostgreSQL; the residents report through /wechat."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bot.api.tokens import create_token, create_user_token
from bot.clock import Clock
from bot.services import accounts
from bot.storage.db import Database
from tests.api.conftest import Api, assert_error
from tests.web.console_util import add_users, login, say

REPO = Path(__file__).resolve().parents[2]
USERS = (("li", "staff", {"department": "物业服务中心"}), ("wang", "staff", {"department": "环卫所"}),
         ("zhang", "supervisor", {}))


async def _report(svc: object, openid: str, text: str) -> str:
    reply = await say(svc, openid, text)
    if reply and "联系电话" in reply:  # a report staff may visit for asks for a phone first
        reply = await say(svc, openid, "不留")
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    return number.group(0)


async def test_staff_tokens_see_their_department_only(service_factory, database_url, fake_api):
    svc = await service_factory(database_url, fake_api)
    await add_users(database_url, *USERS)
    db = Database(database_url)
    try:
        now = Clock().now()
        tokens = {
            "property": (await create_token(db, "物业对接", "staff", now, department="物业服务中心"))[0],
            "wang": (await create_user_token(db, "wang", now))[0],
            "unscoped": (await create_token(db, "old staff", "staff", now))[0],
            "supervisor": (await create_user_token(db, "zhang", now, name="督办接口"))[0],
        }
    finally:
        await db.dispose()
    api = Api(svc, tokens)
    light = await _report(svc, "o_scope_0001", "3号楼2单元楼道灯坏了好几天了")
    rubbish = await _report(svc, "o_scope_0002", "2号楼门口垃圾桶满了没人收")

    async def numbers(token: str, **params: str) -> list[str]:
        body = await api.ok("/tickets", token, **params)
        return sorted(t["number"] for t in body["items"])

    assert await numbers("supervisor") == sorted([light, rubbish])
    assert await numbers("property") == [light]
    assert await numbers("wang") == [rubbish]  # the user's department, 环卫所
    assert await numbers("unscoped") == []  # no department: only what is assigned to it
    by_number = {t["number"]: t for t in (await api.ok("/tickets", "supervisor"))["items"]}
    light_id, rubbish_id = by_number[light]["id"], by_number[rubbish]["id"]
    assert (by_number[light]["department"], by_number[rubbish]["department"]) == ("物业服务中心", "环卫所")

    # Another department's ticket: refused, saying whose it is and what the token's scope is.
    for method, path, body in (("GET", f"/tickets/{rubbish_id}", None),
                               ("POST", f"/tickets/{rubbish_id}/transitions", {"action": "accept"}),
                               ("POST", f"/tickets/{rubbish_id}/comments", {"text": "看一下"}),
                               ("POST", f"/tickets/{rubbish_id}/assignment", {"assignee": "物业对接"})):
        status, answer, _ = await api.call(method, path, "property", json=body)
        message = assert_error(status, answer, 403, "out_of_scope")
        assert "'环卫所'" in message and "'物业服务中心'" in message, message
        assert answer["error"]["details"] == {"ticket_department": "环卫所", "token_department": "物业服务中心"}
    status, answer, _ = await api.call("GET", f"/tickets/{light_id}", "unscoped")
    assert "no department" in assert_error(status, answer, 403, "out_of_scope")
    status, answer = await api.get("/tickets", "property", department="环卫所")
    assert "'环卫所'" in assert_error(status, answer, 403, "out_of_scope")
    status, answer = await api.get("/tickets/999999", "property")
    assert_error(status, answer, 404)
    # Nothing was changed by the refused calls.
    detail = await api.ok(f"/tickets/{rubbish_id}", "supervisor")
    assert detail["status"] == "dispatched" and "comment" not in [e["action"] for e in detail["timeline"]]

    # Its own department's: read and handled; 接单 makes the user (not the token's label) the assignee.
    assert (await api.ok(f"/tickets/{light_id}", "property"))["number"] == light
    status, answer, _ = await api.call("POST", f"/tickets/{rubbish_id}/transitions", "wang", json={"action": "accept"})
    assert status == 200 and answer["assignee"] == "wang", answer
    # Staff do not send a ticket to another department; a supervisor does.
    status, answer, _ = await api.call("POST", f"/tickets/{light_id}/assignment", "property",
                                       json={"department": "环卫所"})
    assert "only a supervisor" in assert_error(status, answer, 403, "out_of_scope")
    status, answer, _ = await api.call("POST", f"/tickets/{light_id}/assignment", "supervisor",
                                       json={"department": "环卫所"})
    assert status == 200 and answer["department"] == "环卫所"
    assert await numbers("property") == [] and await numbers("wang") == sorted([light, rubbish])

    # A token issued for a user follows the user: moved elsewhere it sees elsewhere; disabled, refused.
    db = Database(database_url)
    try:
        await accounts.disable(db, "wang", Clock().now())
    finally:
        await db.dispose()
    status, answer = await api.get("/tickets", "wang")
    assert_error(status, answer, 401, "invalid_token")

    # The console's session through the API has the same scope as the console's pages.
    li = await login(svc.http, svc.base, "li")
    status, page, _ = await li.get("/api/v1/tickets")
    assert status == 200 and json.loads(page)["items"] == []  # 物业服务中心's only ticket went to 环卫所
    status, page, _ = await li.get(f"/api/v1/tickets/{light_id}")
    assert status == 403 and json.loads(page)["error"]["code"] == "out_of_scope"


def test_token_cli_scope(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "BOT_DATA_DIR": str(tmp_path),
           "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=REPO,
                              env=env, timeout=120)

    assert run("db", "upgrade").returncode == 0
    done = run("token", "create", "--name", "物业对接", "--role", "staff", "--department", "物业服务中心")
    assert done.returncode == 0 and "scope: department 物业服务中心" in done.stdout, done
    done = run("token", "create", "--name", "x", "--role", "supervisor", "--department", "物业服务中心")
    assert done.returncode == 2 and "staff token only" in done.stderr, done
    done = run("token", "create", "--name", "old", "--role", "staff")
    assert done.returncode == 0 and "only the tickets assigned to its name" in done.stderr, done
    done = run("token", "create", "--user", "nobody")
    assert done.returncode == 2 and "no console user named 'nobody'" in done.stderr, done
    done = run("token", "create", "--role", "staff")
    assert done.returncode == 2 and "--name and --role" in done.stderr, done
    listing = run("token", "list")
    assert listing.returncode == 0 and "SCOPE" in listing.stdout and "department 物业服务中心" in listing.stdout
    assert "assigned to old only" in listing.stdout, listing.stdout
