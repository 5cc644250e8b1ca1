"""Who may read tickets is the same in the console and the JSON API (docs/console.md's role model):
staff and supervisors handle them; operators read conversations and the dashboard's ticket figures,
not tickets. An operator's token is refused every ticket route with a 403 whose JSON error says why
(and, for an id, before looking it up); the console refuses the ticket pages with its 403 page, and
an operator's conversation page names the resident's tickets without links to pages they may not
open. Over HTTP; the resident reports through /wechat."""

from __future__ import annotations

import re

from tests.api.conftest import Api, assert_error, make_tokens
from tests.web.console_util import add_users, login, say

USERS = (("li", "staff", {"department": "物业服务中心"}), ("yun", "operator", {}))


async def test_operators_are_refused_tickets_in_the_api_as_in_the_console(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, *USERS)
    api = Api(svc, await make_tokens(sqlite_url))
    openid = "o_ticket_roles_0001"
    reply = await say(svc, openid, "3号楼2单元楼道灯坏了好几天了")
    if reply and "联系电话" in reply:  # a report staff may visit for asks for a phone first
        reply = await say(svc, openid, "不留")
    number = re.search(r"GD\d{8}-\d{4}", reply or "")
    assert number, reply
    status, body = await api.get("/tickets", "staff")
    assert status == 200 and [t["number"] for t in body["items"]] == [number.group(0)]
    tid = body["items"][0]["id"]

    # The API: every ticket route refuses an operator, saying why, the same for an id that exists
    # and one that does not (nothing is learnt about ids).
    for method, path, json in (("GET", "/tickets", None), ("GET", f"/tickets/{tid}", None),
                               ("GET", "/tickets/999999", None),
                               ("POST", f"/tickets/{tid}/transitions", {"action": "accept"}),
                               ("POST", f"/tickets/{tid}/comments", {"text": "看一下"}),
                               ("POST", f"/tickets/{tid}/assignment", {"assignee": "yun"})):
        status, body, _ = await api.call(method, path, "operator", json=json)
        message = assert_error(status, body, 403, "forbidden")
        assert "'operator'" in message and "staff and supervisors" in message, message
        assert "/dashboard/tickets" in message, message
        assert body["error"]["details"] == {"role": "operator", "allowed": ["admin", "staff", "supervisor"]}
    for role in ("staff", "supervisor", "admin"):
        assert (await api.get(f"/tickets/{tid}", role))[0] == 200, role
    # What operators do read: the dashboard's ticket figures, the resident and their messages.
    assert (await api.get("/dashboard/tickets", "operator"))[0] == 200
    status, body = await api.get("/residents", "operator")
    assert status == 200 and len(body["items"]) == 1
    # The OpenAPI document says who may call the routes and why others may not.
    doc = await api.openapi()
    listing = doc["paths"]["/tickets"]["get"]
    assert listing["x-roles"] == ["admin", "staff", "supervisor"]
    assert "Not for other roles" in listing["description"] and "operators" in listing["description"]

    # The console agrees: the ticket pages are refused to the operator, with the console's 403 page.
    yun = await login(svc.http, svc.base, "yun")
    for path in ("/console/tickets", f"/console/tickets/{tid}"):
        status, page, _ = await yun.get(path)
        assert status == 403 and "没有权限" in page, (path, status)
    # The operator's conversation page names the ticket, without a link to the page refused to them.
    assert await say(svc, openid, "转人工")
    _, inbox, _ = await yun.get("/console/inbox")
    rid = re.search(r'data-resident="(\d+)"', inbox)
    assert rid, inbox[:300]
    status, page, _ = await yun.get(f"/console/conversations/{rid.group(1)}")
    assert status == 200 and number.group(0) in page
    assert "/console/tickets" not in page, re.findall(r'href="(/console/tickets[^"]*)"', page)
    # Staff see the same ticket linked.
    li = await login(svc.http, svc.base, "li")
    _, page, _ = await li.get(f"/console/conversations/{rid.group(1)}")
    assert f'href="/console/tickets/{tid}"' in page
