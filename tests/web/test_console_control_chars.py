"""Invisible control characters typed or pasted into console forms and filters (a NUL, which
PostgreSQL cannot store) are dropped, not stored or failed on: a merchant, a ticket made from a
conversation, a private note and the ticket list's filters, on SQLite and PostgreSQL. Over HTTP."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from tests.web.console_util import ZHANG, add_users, login, start_console, waiting_resident

NUL = "\x00"


async def test_control_characters_are_dropped_from_forms_and_filters(service_factory, database_url, fake_api):
    svc = await start_console(service_factory, database_url, fake_api, ZHANG, redis=True)
    await add_users(database_url, ("root", "admin", {}))
    zhang = await login(svc.http, svc.base, "zhang")
    root = await login(svc.http, svc.base, "root")

    status, page, _ = await root.post("/console/merchants", {"name": f"老王{NUL}理发店\x07", "category": "理发",
                                                            "address": "3号楼底商", "phone": ""})
    assert status < 500, (status, page[:300])
    _, page, _ = await root.get("/console/merchants")
    assert "老王理发店" in html.unescape(page) and NUL not in page
    # a name of control characters only is empty: refused with the field named, nothing stored
    status, page, _ = await root.post("/console/merchants", {"name": NUL + "\x1f", "category": "超市"})
    assert status == 400 and "名称" in page, (status, page[:300])

    rid = await waiting_resident(svc, zhang, "o_control_chars_0001")
    status, page, resp = await zhang.post(f"/console/conversations/{rid}/ticket",
                                          {"text": f"楼道灯{NUL}坏了", "category": "", "place": f"3号楼{NUL}"})
    assert status == 303, (status, page[:300])
    ticket = str(resp.headers["Location"])
    _, page, _ = await zhang.get(ticket)
    assert "楼道灯坏了" in page and NUL not in page
    status, page, _ = await zhang.post(f"/console/conversations/{rid}/notes", {"text": f"已电话{NUL}联系"})
    assert status == 303, (status, page[:300])
    _, page, _ = await zhang.get(f"/console/conversations/{rid}")
    assert "已电话联系" in page

    for query in ("number", "assignee", "status", "department", "grid", "urgency"):
        status, page, _ = await zhang.get(f"/console/tickets?{query}={quote(NUL)}x")
        assert status < 500, (query, status, page[:300])
    status, page, _ = await zhang.get(f"/console/inbox?q={quote(NUL)}")
    assert status < 500, (status, page[:300])
    assert not re.search(r"Traceback|Internal Server Error", page)
