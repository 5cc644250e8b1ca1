"""Residents' own wording reaches the right knowledge entry through the WeChat wire (issue 13).

A missing person is an urgent report in the chat (the complaint flow answers it before the knowledge
base); that the knowledge base never offers death procedures for it is tested in tests/knowledge."""

from __future__ import annotations

from sqlalchemy import select

from bot.storage.db import Database
from bot.storage.models import KnowledgeQuery
from knowledge.base import KnowledgeBase


async def say(svc, openid: str, text: str) -> str:
    s = svc.sender("safe")
    reply = await s.send(svc.http, s.text(openid, text))
    assert reply.status == 200, reply.body
    return reply.content or ""


async def ask(svc, openid: str, text: str) -> str:
    """Ask a question; when the assistant first asks what kind of request it is (the intent engine
    unsure), pick the question option as a resident would."""
    reply = await say(svc, openid, text)
    if "您是想" in reply and "咨询" in reply:
        number = next(ln.split(".")[0] for ln in reply.splitlines() if "咨询" in ln and ln[:1].isdigit())
        reply = await say(svc, openid, number)
    return reply


async def logged(url: str) -> list[KnowledgeQuery]:
    db = Database(url)
    try:
        async with db.session() as s:
            return list((await s.scalars(select(KnowledgeQuery).order_by(KnowledgeQuery.id))).all())
    finally:
        await db.dispose()


LONG = (
    "你好，我是幸福里小区5号楼的住户，姓王，今年七十六了，老伴身体不好常年吃药，儿子在外地上班，"
    "平时家里就我们两个老人，前几天听楼下邻居说现在家里可以签一个社区的医生，定期上门量血压，"
    "我想问一下这个家庭医生怎么签"
)


async def test_long_typo_and_everyday_questions_get_their_entry(service):
    kb = KnowledgeBase.load()
    for n, (text, entry_id) in enumerate(
        [(LONG, "family-doctor"), ("高令补贴在哪申请", "elderly-allowance"), ("暂住证在哪办", "residence-permit-apply")]
    ):
        entry = kb.get(entry_id)
        assert entry is not None
        reply = await ask(service, f"o_kr{n}", text)
        # The answer itself, or the numbered choices with this entry first.
        assert entry.answer.strip()[:20] in reply or f"1. {entry.question}" in reply, reply
    rows = await logged(service.settings.database_url)
    assert [r.decision in ("answer", "choices") for r in rows] == [True, True, True]
    assert [r.candidates[0][0] for r in rows] == ["family-doctor", "elderly-allowance", "residence-permit-apply"]
