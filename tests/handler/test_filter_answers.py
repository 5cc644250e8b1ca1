"""A filter may answer with a plain bool, any truth value (a regular expression's match or None) or
an awaitable; a handler registered with one filter or several routes alike either way. (The
filters here come first, in the state phase, before the product's own handlers.)"""

from __future__ import annotations

import re

from bot.handler.context import Context
from bot.handler.router import PHASE_STATE, Func, MsgType, Router


def answers_router() -> Router:
    router = Router("answers")

    def said(word: str) -> Func:
        async def check(ctx: Context) -> bool:
            return ctx.text == word

        return Func(check, phase=PHASE_STATE)

    @router.message(Func(lambda ctx: None, phase=PHASE_STATE))
    async def not_this(ctx: Context) -> str:
        return "不该回答"

    @router.message(MsgType("text"), Func(lambda ctx: re.match("多个", ctx.text)))  # a match or None
    async def several(ctx: Context) -> str:
        return "多个条件"

    @router.message(MsgType("text"), said("等待多个"))
    async def awaited_of_several(ctx: Context) -> str:
        return "多个条件等到了"

    @router.message(Func(lambda ctx: re.match("匹配", ctx.text), phase=PHASE_STATE))
    async def matched(ctx: Context) -> str:
        return "匹配到了"

    @router.message(said("异步"))
    async def awaited(ctx: Context) -> str:
        return "等到了"

    return router


async def test_filters_answering_truth_values_or_awaitables(service_factory, database_url, fake_api):
    svc = await service_factory(database_url, fake_api, app_kwargs={"routers": [answers_router()]})
    sender = svc.sender("safe")
    said = {}
    for i, text in enumerate(["匹配", "异步", "多个", "多个等待", "等待多个", "你好"]):
        said[text] = (await sender.send(svc.http, sender.text(f"o_answers_{i}", text))).content
    assert said["匹配"] == "匹配到了"
    assert said["异步"] == "等到了"
    assert said["多个"] == said["多个等待"] == "多个条件"  # the match of a prefix
    assert said["等待多个"] == "多个条件等到了"
    assert said["你好"] not in ("不该回答", "匹配到了", "等到了", "多个条件", "多个条件等到了")
