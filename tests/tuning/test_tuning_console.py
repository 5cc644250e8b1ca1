"""The tuning loop's console pages over HTTP (SQLite and PostgreSQL): an operator decides a
reviewed group in the form, edits an intent and an entry, sees conflicts flagged, the evaluation
fragment, publishes only when confirming, rolls back; staff are refused."""

from __future__ import annotations

import asyncio
import html
import re

from tests.web.console_util import add_users, login

NOT_UNDERSTOOD = "电视老是没信号"
STAFF_CORRECTED = "哎真是烦死了天天这样"  # small talk to the bot: staff saw a report in it


async def test_operator_pages(service):
    await add_users(service.settings.database_url, ("yun", "operator", {}), ("li", "staff", {"department": "物业"}))
    sender = service.sender()
    assert (await service.send(sender.text("oTuningConsole000000000001", NOT_UNDERSTOOD, msg_id=88001))).status == 200
    op = await login(service.http, service.base, "yun")
    staff = await login(service.http, service.base, "li")
    status, page, _ = await staff.get("/console/tuning")
    assert status == 403
    # staff make a ticket from a conversation the bot did not take for a report: a staff correction
    openid = "oTuningConsole000000000002"
    assert (await service.send(sender.text(openid, STAFF_CORRECTED, msg_id=88002))).status == 200
    status, inbox, _ = await staff.get("/console/inbox")
    resident = re.findall(r"/console/conversations/(\d+)", inbox)[0]  # the newest conversation first
    status, _, _ = await staff.post(f"/console/conversations/{resident}/ticket", {"text": STAFF_CORRECTED})
    assert status == 303
    status, page, _ = await op.get("/console/tuning")
    assert status == 200 and NOT_UNDERSTOOD in page and 'href="/console/tuning"' in page and "没听懂" in page
    group = page[page.index(STAFF_CORRECTED):].split("</section>")[0]
    assert "工作人员改建工单" in group and '<option value="complaint" selected>' in group
    mine = page[page.index("<h2>" + NOT_UNDERSTOOD):]
    texts = html.unescape(re.search(r'name="texts" value="([^"]*)"', mine).group(1))  # type: ignore[union-attr]
    assert texts == NOT_UNDERSTOOD
    status, _, resp = await op.post("/console/tuning/review", {"kind": "intent", "texts": texts, "intent": "complaint",
                                                               "action": "intent"})
    assert status == 303 and resp.headers["Location"].startswith("/console/tuning?kind=intent&notice=")
    status, page, _ = await op.get("/console/tuning")
    assert NOT_UNDERSTOOD not in page and "已标注 1 条" in page

    # editors: an example under another intent is a conflict, shown on the draft and the intent page
    status, _, resp = await op.post("/console/tuning/changes", {"op": "example", "intent": "query", "text": NOT_UNDERSTOOD,
                                                                "back": "/console/tuning/intents/query"})
    assert status == 303 and resp.headers["Location"].startswith("/console/tuning/intents/query?notice=")
    status, page, _ = await op.get("/console/tuning/intents/query")
    assert status == 200 and "冲突" in page and NOT_UNDERSTOOD in page
    status, page, _ = await op.get("/console/tuning/draft")
    assert "冲突" in page and '+ 样例 <span class="intent" title="query">咨询办事或政策</span>：' + NOT_UNDERSTOOD in page
    await op.post("/console/tuning/changes", {"op": "example", "intent": "query", "text": NOT_UNDERSTOOD, "add": "0",
                                              "back": "/console/tuning/intents/query"})
    status, page, _ = await op.get("/console/tuning/draft")
    assert "冲突" not in page
    status, _, resp = await op.post("/console/tuning/entries", {
        "id": "community-pool", "question": "社区游泳馆的开放时间？", "answer": "每天9:00-21:00开放。",
        "department": "社区服务中心", "tags": "游泳馆", "alternatives": "游泳馆几点开门\n泳池开放吗"})
    assert status == 303
    status, page, _ = await op.get("/console/tuning/entries?id=community-pool")
    assert "泳池开放吗" in page and "修改 community-pool" in page
    status, page, resp = await op.post("/console/tuning/entries", {"id": "Bad Id", "question": "x", "answer": "y",
                                                                   "department": "z"})
    # Refused in Chinese naming the field, the form as it was sent.
    assert status == 400 and "没有保存：编号「Bad Id」只能用小写英文字母" in html.unescape(page)
    assert 'name="id" value="Bad Id"' in page and "y</textarea>" in page
    status, page, resp = await op.post("/console/tuning/entries", {"id": "community-gym", "question": "健身房在哪",
                                                                   "answer": "在活动中心二楼。", "department": ""})
    assert status == 400 and "没有保存：请填写负责部门。" in page and "在活动中心二楼。</textarea>" in page

    status, page, _ = await op.get("/console/tuning/evaluation")
    assert status == 200 and 'data-src="/console/tuning/evaluation/figures"' in page and 'name="confirm"' in page
    status, figures, _ = await op.get("/console/tuning/evaluation/figures")
    assert status == 200 and "混淆矩阵" in figures and "已复核的消息" in figures and "知识库开发集" in figures
    matrix = figures.split('class="matrix"', 1)[1].split("</table>", 1)[0]
    assert '<th title="complaint">反映问题</th>' in matrix and ">compla<" not in matrix  # names, not cut codes
    row = re.search(r'<tr><td>' + NOT_UNDERSTOOD + r'</td><td><span class="intent" title="([a-z_]+)">超出范围</span> [\d.]+</td>'
                    r'<td class="up"><span class="intent" title="([a-z_]+)">反映问题</span>', figures)
    assert row and row.groups() == ("fallback", "complaint")

    status, _, resp = await op.post("/console/tuning/publish", {"note": "宽带", "expected_active": "0"})
    assert "error=" in resp.headers["Location"]  # not confirmed: nothing published
    status, page, _ = await op.get("/console/tuning/versions")
    assert "还没有发布过版本" in page
    status, _, resp = await op.post("/console/tuning/publish", {"note": "宽带", "expected_active": "0", "confirm": "1"})
    assert status == 303 and "notice=" in resp.headers["Location"]
    while "本进程正在使用 v1" not in (await op.get("/console/tuning/versions"))[1]:  # noqa: ASYNC110 - the watcher
        await asyncio.sleep(0.2)
    status, page, _ = await op.get("/console/tuning/versions")
    assert "yun" in page and 'data-version="1"' in page and "宽带" in page
    status, _, resp = await op.post("/console/tuning/rollback", {})
    assert status == 303
    while "本进程正在使用 v2" not in (await op.get("/console/tuning/versions"))[1]:  # noqa: ASYNC110 - the watcher
        await asyncio.sleep(0.2)
    async with service.http.get(service.base + "/api/v1/tuning/export", headers=op.cookie) as r:
        assert r.status == 200 and r.content_type == "application/zip"
    # The pages' download links are the console's own: a refusal there is a page in Chinese.
    assert 'href="/console/tuning/export?what=active"' in (await op.get("/console/tuning/versions"))[1]
    async with service.http.get(service.base + "/console/tuning/export?what=draft", headers=op.cookie) as r:
        assert r.status == 200 and r.content_type == "application/zip"
    status, page, _ = await staff.get("/console/tuning/export?what=draft")
    assert status == 403 and "没有权限" in page
