"""Operators read conversations; staff handle them (docs/console.md's role model): an operator's
claim, reply, release, private note, canned reply or ticket from a conversation is refused by the
server with the console's 403 page in Chinese, and the conversation's page offers none of them."""

from __future__ import annotations

from tests.web.console_util import LI, YUN, login, say, start_console, waiting_resident


async def test_operators_read_conversations_but_cannot_handle_them(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, LI, YUN)
    openid = "o_operator_reads_0001"
    yun = await login(svc.http, svc.base, "yun")
    rid = await waiting_resident(svc, yun, openid)

    # The operator reads the conversation, without the buttons and forms that handle it.
    status, page, _ = await yun.get(f"/console/conversations/{rid}")
    assert status == 200 and "转人工" in page
    for handle in ('id="claim-btn"', f'action="/console/conversations/{rid}/reply"',
                   f'action="/console/conversations/{rid}/notes"', f'action="/console/conversations/{rid}/ticket"'):
        assert handle not in page, handle
    assert "运营账号只能查看会话" in page
    # The queue offers them a look, not a takeover (staff's button says 查看并接管), also when it refreshes.
    for path in ("/console/handoffs", "/console/handoffs/rows"):
        status, page, _ = await yun.get(path)
        assert status == 200 and f'href="/console/conversations/{rid}">查看</a>' in page, path
        assert "查看并接管" not in page, path
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
    _, page, _ = await li.get("/console/handoffs/rows")
    assert f'action="/console/conversations/{rid}/claim"' in page and "查看并接管</button>" in page
    _, page, _ = await li.get(f"/console/conversations/{rid}")
    assert "机器人正在回复" in page and "<b>yun</b>" not in page  # no note of the operator's
    status, _, _ = await li.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    _, page, _ = await li.get("/console/canned")
    assert "问候" not in page


async def test_operators_have_no_notifications_link_nor_page(service_factory, sqlite_url, fake_api):
    """通知 are tickets' reminders and escalations, each a link to a ticket operators may not open:
    their nav has no 通知, and the page (an old bookmark) is a 403 saying why; staff keep both."""
    svc = await start_console(service_factory, sqlite_url, fake_api, LI, YUN)
    yun = await login(svc.http, svc.base, "yun")
    for path in ("/console/inbox", "/console/dashboard"):
        status, page, _ = await yun.get(path)
        assert status == 200 and 'href="/console/inbox"' in page, path
        assert 'href="/console/notifications"' not in page and "notice-count" not in page, path
    status, page, _ = await yun.get("/console/notifications")
    assert status == 403 and "通知是工单的办理提醒和督办" in page and "没有权限" in page
    status, page, _ = await yun.post("/console/notifications/1/read", {})
    assert status == 403 and "没有权限" in page

    li = await login(svc.http, svc.base, "li")
    status, page, _ = await li.get("/console/inbox")
    assert status == 200 and 'href="/console/notifications"' in page
    status, page, _ = await li.get("/console/notifications")
    assert status == 200 and "<h1>通知</h1>" in page
