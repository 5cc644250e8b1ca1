"""A message that is only a course's name (书法, 花艺吧) goes to that course; the filter that tells
extracts the message's entities only when the message could be such a name: a short message that
names no course (谢谢, 查进度, 5号楼) costs no extraction."""

from __future__ import annotations

from typing import Any

from bot.flows.courses import _only_a_course
from bot.handler.context import Context
from bot.handler.state import FSM, StateRecord
from bot.messages import Inbound
from intents.engine import IntentEngine
from intents.entities import Entities


def _context(engine: IntentEngine, text: str) -> Context:
    inbound = Inbound(openid="o_bare", account="gh_x", msg_type="text", create_time=1, msg_id=1, content=text)
    ctx = Context(inbound=inbound, rt=None, fsm=FSM(StateRecord()))  # type: ignore[arg-type]
    ctx.understanding = engine.classify(text)
    return ctx


def test_a_bare_course_name_is_found(engine: IntentEngine) -> None:
    for text in ("书法", "花艺吧", "太极拳课", "合唱班", "葫芦丝的"):
        assert _only_a_course(_context(engine, text)), text


def test_a_short_message_naming_no_course_extracts_nothing(engine: IntentEngine) -> None:
    for text in ("谢谢", "查进度", "5号楼", "我的券", "转人工", "积分商城", "书法课在哪上"):
        ctx = _context(engine, text)
        assert not _only_a_course(ctx), text
        found: Any = ctx.understanding.found
        assert not isinstance(found, Entities), f"{text}: entities extracted"
