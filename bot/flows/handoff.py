"""A resident asks for a person: the request is recorded (intent ``handoff`` in the message log,
where the staff console's queue finds it) and the resident is told what happens next."""

from __future__ import annotations

from bot.handler.context import Context
from bot.handler.router import Intent, Router

router = Router("handoff")

TEXTS = {
    "handoff": (
        "好的，已经帮您通知社区工作人员，看到后会尽快在这里回复您（工作日白天回复较快）。\n"
        "您可以先把想办的事说一下，工作人员来了就能直接处理。"
    ),
}


@router.message(Intent("handoff"))
async def handoff(ctx: Context) -> str:
    return TEXTS["handoff"]
