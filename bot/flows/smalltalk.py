"""Greetings, thanks and chit-chat: a warm word, and what the assistant can do."""

from __future__ import annotations

from bot.flows.help import menu
from bot.handler.context import Context
from bot.handler.router import Intent, Router

router = Router("smalltalk")

TEXTS = {
    "thanks": "不客气！还有什么需要帮忙的，随时跟我说。",
    "bye": "好的，祝您生活愉快！有事随时找我。",
    "greeting": "您好！{menu}",
    # Anything else said in passing (好吧, 不留, 我今年82了): a word back, not the whole menu again.
    "other": "嗯嗯，我在呢。有什么需要帮忙的，直接跟我说就行；回复“帮助”看看我能做什么。",
}

THANKS = ("谢", "感谢", "辛苦", "多谢", "thank")
BYE = ("再见", "拜拜", "晚安", "bye")
GREETING = ("你好", "您好", "在吗", "在不在", "哈喽", "hello", "hi", "早上好", "下午好", "晚上好")


@router.message(Intent("smalltalk"))
async def smalltalk(ctx: Context) -> str:
    text = ctx.text.lower()
    if any(w in text for w in THANKS):
        return TEXTS["thanks"]
    if any(w in text for w in BYE):
        return TEXTS["bye"]
    if any(w in text for w in GREETING) or not text:
        return TEXTS["greeting"].format(menu=menu(ctx.rt).removeprefix("您好，"))
    return TEXTS["other"]
