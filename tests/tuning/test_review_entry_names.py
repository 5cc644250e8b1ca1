"""The knowledge side of the review queue names entries by the question they answer: the operator
choosing which entry a question rated 没用 belongs to reads 「…？（entry-id）」, not a list of slugs,
and what the bot answered with reads as that entry's question; the form still posts the id."""

from __future__ import annotations

import html
import re

from tests.web.console_util import add_users, login


async def test_entries_are_named_by_their_question(service):
    await add_users(service.settings.database_url, ("yun", "operator", {}))
    sender = service.sender()
    openid = "oTuningConsole000000000041"
    reply = (await service.send(sender.text(openid, "养老金怎么领取", msg_id=88041))).content or ""
    assert "没用" in reply, reply
    assert (await service.send(sender.text(openid, "2", msg_id=88042))).status == 200
    op = await login(service.http, service.base, "yun")
    status, page, _ = await op.get("/console/tuning?kind=knowledge")
    assert status == 200
    page = html.unescape(page)
    group = page[page.index("<h2>养老金怎么领取"):].split("</section>")[0]
    chosen = re.search(r'<option value="([a-z0-9._-]+)" selected>([^<]+)</option>', group)
    assert chosen, group[:2000]
    entry, label = chosen.groups()
    assert label.endswith(f"（{entry}）") and re.search(r"[\u4e00-\u9fff]", label), label
    question = label[: -len(f"（{entry}）")]
    assert f"机器人理解为：{question}" in group, group[:600]
    all_options = re.findall(r'<option value="[a-z0-9._-]+"[^>]*>([^<]+)</option>', group)
    assert len(all_options) > 50 and all(re.search(r"[\u4e00-\u9fff]", o) for o in all_options)
    status, _, resp = await op.post("/console/tuning/review", {"kind": "knowledge", "texts": "养老金怎么领取",
                                                               "entry_id": entry, "action": "phrasing"})
    assert status == 303, resp.headers
    status, page, _ = await op.get("/console/tuning?kind=knowledge")
    assert "<h2>养老金怎么领取" not in html.unescape(page)
