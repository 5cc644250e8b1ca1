"""What the bot tells residents to send must work: every 回复“…” / 发送“…” / 发“…” / 说“…” /
输入“…” in the resident-facing texts (flows' and services' TEXTS, bot/rules, the intents' help,
knowledge answers) is collected from the source and sent through ``/wechat`` (signed and
encrypted, as WeChat sends it) — once with nothing going on, and for the phrases whose offering
reply is cheap to reach, right after that reply. The reply must not be the fallback (帮不上忙), a
clarifying question (我不太确定您的意思), the list of what the assistant does (unless the phrase is
帮助) or a 没找到“…” echo of the phrase. A new text offering a phrase that does not work fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.services import tickets
from tests.conversations import script
from tests.conversations.script import Conversation
from tests.conversations.test_conversations import Run, Suite, suite  # noqa: F401  (the suite's service)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (
    *sorted((ROOT / "bot" / "flows").glob("*.py")),
    *sorted((ROOT / "bot" / "services").glob("*.py")),
    ROOT / "bot" / "texts.py",
    *sorted((ROOT / "bot" / "rules").glob("*.yml")),
    ROOT / "intents" / "data" / "intents.yml",
    *sorted((ROOT / "knowledge" / "entries").glob("*.yml")),
)
# 回复“满意”“基本满意”或“不满意”: a verb, then one or more quoted phrases joined by 、 或 和.
# An example given with it is sent as well: 回复“取消”加序号，比如“取消1”.
OFFER = re.compile(
    r"(?:回复|发送|发|说|输入)((?:“[^“”\n]{1,16}”(?:[、，,]?(?:或者?|和)?)?)+"
    r"(?:[^“”。\n]{0,8}(?:比如|例如|如)“[^“”\n]{1,16}”)?)"
)
QUOTED = re.compile(r"“([^“”\n]{1,16})”")
# Quoted words that stand for what the resident fills in, with what a resident would send.
FILLED = {"单位+工作单位名称": "单位 区税务局"}

pytestmark = pytest.mark.asyncio(loop_scope="module")


def offered() -> dict[str, list[str]]:
    """Phrase → the files offering it."""
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for m in OFFER.finditer(text):
            for phrase in QUOTED.findall(m.group(1)):
                if "{" in phrase:  # a placeholder filled in at run time
                    continue
                phrase = FILLED.get(phrase, phrase)
                where = str(path.relative_to(ROOT))
                found.setdefault(phrase, [])
                if where not in found[phrase]:
                    found[phrase].append(where)
    return found


OFFERED = offered()

# Where a phrase is offered, for those cheap to reach: the messages sent before it. The first
# message's reply must offer the phrase (so a context that no longer leads there fails too).
CONTEXTS: dict[str, list[list[str]]] = {
    "帮助": [["嗯嗯"]],
    "转人工": [["今天股票涨了吗"]],
    "积分商城": [["查积分"], ["我的券"]],
    "怎么赚积分": [["查积分"]],
    "餐饮": [["积分商城"]],
    "理发": [["积分商城"]],
    "超市": [["积分商城"]],
    "交通": [["积分商城"]],
    "有什么课": [["我的预约"]],
    "查进度": [["小区东门的路灯不亮了"]],
    "预约": [["有什么课", "2"]],
    "取消预约": [["有什么课", "3", "预约"]],
    "确认取消": [["有什么课", "3", "预约", "取消预约"]],
    "不了": [["有什么课", "3", "预约", "取消预约"]],
    "算了": [["楼道灯坏了", "哎呀"]],
    "继续": [["楼道灯坏了", "等一下 我先问问积分"]],
    "确认": [["查积分", "积分商城", "3"], ["小区东门的路灯不亮了", "撤回"]],
    "取消": [["查积分", "积分商城", "3"]],
    "我的券": [["查积分", "积分商城", "3", "确认"]],
    "不用": [["小区东门的路灯不亮了", "撤回"]],
    "不留": [["我家厨房水管漏水了 3号楼2单元501"]],
    "课程": [["有什么课", "算了"]],
    "取消1": [["有什么课", "3", "预约", "我的预约"]],
    "下一页": [["积分商城"]],
    "候补": [["剪纸班", "预约"]],
    "是": [["八段锦", "预约"]],
    "不是": [["八段锦", "预约"]],
    # 回复数字 after a numbered list.
    "1": [["积分商城"], ["有什么课"]],
}

BAD = {
    "帮不上忙": "the fallback",
    "我不太确定您的意思": "a clarifying question",
}
# With nothing going on, no phrase offered is a problem to report (餐饮 asked where it is).
PLACE_QUESTION = "请告诉我具体位置"
MENU = "我是社区服务小助手，可以帮您"


def check(where: str, phrase: str, reply: str, fresh: bool = False) -> None:
    shown = reply.replace("\n", " | ")
    assert reply, f"{where}: no reply"
    for mark, what in BAD.items():
        assert mark not in reply, f"{where}: {phrase!r} got {what}: {shown!r}"
    if phrase != "帮助":
        assert MENU not in reply, f"{where}: {phrase!r} got the list of what the assistant does: {shown!r}"
    assert f"没找到“{phrase}”" not in reply, f"{where}: {phrase!r} got 没找到: {shown!r}"
    if fresh:
        assert PLACE_QUESTION not in reply, f"{where}: {phrase!r} was taken for a problem to report: {shown!r}"


def _run(service: Suite, name: str, index: int) -> Run:
    return Run(service, Conversation(f"offered{name}", index, name, "plain", [], None, []))


async def say(run: Run, where: str, text: str) -> str:
    step: dict[str, Any] = {"say": text, "expect": {"contains": []}}
    return await run.send(where, step)


async def test_phrases_are_found() -> None:
    """The collector sees the phrases of the texts (guards the regular expression itself)."""
    for phrase in ("帮助", "我的券", "取消预约", "查进度", "怎么赚积分", "继续", "转人工", "满意", "基本满意", "不满意"):
        assert phrase in OFFERED, (phrase, sorted(OFFERED))
    for phrase in CONTEXTS:
        if phrase.isdigit():
            continue
        assert phrase in OFFERED, f"{phrase!r} has a context but no text offers it any more"


PHRASES = sorted(OFFERED)


@pytest.mark.parametrize("phrase", PHRASES)
async def test_offered_phrase_with_nothing_going_on(suite: Suite, phrase: str) -> None:  # noqa: F811
    run = _run(suite, "none", PHRASES.index(phrase))
    where = f"{phrase!r} (offered in {', '.join(OFFERED[phrase])}) with nothing going on [{suite.name}]"
    check(where, phrase, await say(run, where, phrase), fresh=True)


CONTEXT_CASES = [(p, i, before) for p, befores in CONTEXTS.items() for i, before in enumerate(befores)]


@pytest.mark.parametrize(("phrase", "n", "before"), CONTEXT_CASES,
                         ids=[f"{p}-{'-'.join(b)}" for p, _, b in CONTEXT_CASES])
async def test_offered_phrase_right_after_its_offer(suite: Suite, phrase: str, n: int,  # noqa: F811
                                                    before: list[str]) -> None:
    run = _run(suite, "ctx", CONTEXT_CASES.index((phrase, n, before)))
    where = f"{phrase!r} after {before} [{suite.name}]"
    reply = ""
    for text in before:
        reply = await say(run, where, text)
    offers = f"“{phrase}”" in reply or (phrase.isdigit() and "回复数字" in reply)
    assert offers, f"{where}: the reply before does not offer it: {reply!r}"
    check(where, phrase, await say(run, where, phrase))


def _rating_words() -> list[str]:
    """What the push of an answered report offers: its quoted words and the numbers standing for them."""
    text = tickets.TEXTS["answered"]
    numbers = re.search(r"数字\s*([\d、，, ]+)", text)
    return [*QUOTED.findall(text), *(re.findall(r"\d", numbers.group(1)) if numbers else [])]


RATING_WORDS = _rating_words()


@pytest.mark.parametrize("phrase", RATING_WORDS)
async def test_offered_phrase_after_an_answered_report(suite: Suite, phrase: str) -> None:  # noqa: F811
    """满意 / 基本满意 / 不满意 / 1 / 2 / 3 right after the push saying the report was answered."""
    run = _run(suite, "rated", RATING_WORDS.index(phrase))
    where = f"{phrase!r} after the answered push [{suite.name}]"
    await say(run, where, "小区东门的路灯不亮了")
    since = await suite.last_seq()
    await run.staff(where, {"staff": {"action": "answer", "resolution": "已更换灯泡"}})

    async def pushed() -> str:
        texts = [m["payload"].get("text", {}).get("content", "") for m in await suite.sent(run.openid(None), since)]
        assert any(f"“{phrase}”" in t or (phrase.isdigit() and "数字" in t) for t in texts), texts
        return "\n".join(texts)

    await script.eventually(pushed)
    check(where, phrase, await say(run, where, phrase))
