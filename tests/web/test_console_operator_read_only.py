"""Operators read conversations; staff handle them (docs/console.md's role model): an operator's
claim, reply, release, private note, canned reply or ticket from a conversation is refused by the
server with the console's 403 page in Chinese, and the conversation's page offers none of them."""

from __future__ import annotations

import re

from tests.web.console_util import add_users, login, say

USERS = (("li", "staff", {"department": "物业服务中心"}), ("yun", "operator", {}))


async def test_operators_read_conversations_but_cannot_handle_them(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, *USERS)
    openid = "o_operator_reads_0001"
    assert await say(svc, openid, "转人工")
    yun = await login(svc.http, svc.base, "yun")
    _, inbox, _ = await yun.get("/console/inbox")
    found = re.search(r'data-resident="(\d+)"', inbox)
    assert found, inbox[:500]
    rid = found.group(1)

    # The operator reads the conversation, without the buttons and forms that handle it.
    status, page, _ = await yun.get(f"/console/conversations/{rid}")
    assert status == 200 and "转人工" in page
    for handle in ('id="claim-btn"', f'action="/console/conversations/{rid}/reply"',
                   f'action="/console/conversations/{rid}/notes"', f'action="/console/conversations/{rid}/ticket"'):
        assert handle not in page, handle
    assert "运营账号只能查看会话" in page
    status, page, _ = await yun.get("/console/canned")
    assert status == 200 and 'action="/console/canned"' not in page

    # Sent anyway (an old page, a hand-made request), each is refused by the server, in Chinese.
    for path, form in ((f"/console/conversations/{rid}/claim", {}),
                       (f"/console/conversations/{rid}/reply", {"text": "您好"}),
                       (f"/console/conversations/{rid}/notes", {"text": "备注"}),
                       (f"/console/conversations/{rid}/release", {}),
                       (f"/console/conversations/{rid}/ticket", {"text": "楼道灯坏了"}),
                       ("/console/canned", {"title": "问候", "text": "您好"})):
        status, page, _ = await yun.post(path, form)
        assert status == 403, (path, status)
        assert "没有权限处理会话" in page and "工作人员" in page, path

    # Nothing was taken: the bot still answers, and staff may claim the conversation.
    assert await say(svc, openid, "你好")
    li = await login(svc.http, svc.base, "li")
    _, page, _ = await li.get(f"/console/conversations/{rid}")
    assert "机器人正在回复" in page and "<b>yun</b>" not in page  # no note of the operator's
    status, _, _ = await li.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    _, page, _ = await li.get("/console/canned")
    assert "问候" not in page
