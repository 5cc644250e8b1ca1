"""The tuning pages name intents in Chinese, the code after it only in a title or small grey
text: operators read 机器人理解为：handoff · 找工作人员 as English first."""

from __future__ import annotations

import re

from tests.web.console_util import add_users, login

ASKED = "物业费能不能晚几天交"  # then 转人工: queued as 随后转人工
NOT_UNDERSTOOD = "收音机一直沙沙响"


def visible(page: str) -> str:
    """The page's text as read (tags and their attributes dropped)."""
    return re.sub(r"<[^>]+>", "", page)


async def test_intents_are_named_in_chinese(service):
    await add_users(service.settings.database_url, ("yun", "operator", {}))
    sender = service.sender()
    for n, text in enumerate((ASKED, "转人工", NOT_UNDERSTOOD)):
        openid = f"oTuningLabels00000000000{n // 2}"
        assert (await service.send(sender.text(openid, text, msg_id=88100 + n))).status == 200
    op = await login(service.http, service.base, "yun")

    _, page, _ = await op.get("/console/tuning")
    group = page[page.index(NOT_UNDERSTOOD):].split("</section>")[0]
    understood = re.search(r"机器人理解为：(.*?)</p>", group)
    assert understood, group
    assert visible(understood.group(1)) == "超出范围", understood.group(1)
    assert 'title="fallback"' in understood.group(1)  # the code is still there for who wants it
    group = page[page.index(ASKED):].split("</section>")[0]
    understood = re.search(r"机器人理解为：(.*?)</p>", group)
    assert understood and not re.search(r"[a-z]", visible(understood.group(1))), group
    options = re.findall(r'<option value="([a-z_]+)"[^>]*>([^<]+)</option>', group)
    assert ("handoff", "找工作人员") in options and all(not re.search(r"[a-z]", label) for _, label in options)

    # a label and an example in the draft, and the intent's own page
    texts = re.search(r'name="texts" value="([^"]*)"', page[page.index("<h2>" + NOT_UNDERSTOOD):])
    assert texts
    status, _, _ = await op.post("/console/tuning/review", {"kind": "intent", "texts": texts.group(1),
                                                            "intent": "complaint", "action": "intent"})
    assert status == 303
    status, _, _ = await op.post("/console/tuning/changes", {"op": "example", "intent": "handoff", "text": "叫个真人来",
                                                             "back": "/console/tuning/intents/handoff"})
    assert status == 303
    _, page, _ = await op.get("/console/tuning/draft")
    text = visible(page)
    assert f"{NOT_UNDERSTOOD} → 反映问题、报修或投诉" in text and "+ 样例 找工作人员：叫个真人来" in text, text
    assert "handoff · " not in text and "→ complaint" not in text
    assert re.search(r'href="/console/tuning/intents/handoff">找工作人员</a> <small class="muted">handoff</small>', page)
    status, page, _ = await op.get("/console/tuning/intents/handoff")
    assert status == 200 and "<title>调优 · 找工作人员" in page, page[:400]
    assert re.search(r"<h1>找工作人员 <small", page), page[:800]
