"""The standard middlewares, in order: resident, log, takeover, understand.

(Exactly-once delivery, the dedup step, wraps the whole dispatcher: see ``delivery.py``.)
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.handler.context import Context
from bot.handler.dispatcher import Middleware, Next
from bot.handler.types import Out
from bot.logmask import mask_openid
from bot.storage.models import Message, Resident

log = logging.getLogger("bot.messages")


async def resident(ctx: Context, nxt: Next) -> list[Out]:
    """Load or create the resident by openid; keep subscription and the 48-hour window current."""
    inbound = ctx.inbound
    now = ctx.rt.clock.now()
    for attempt in range(2):
        try:
            async with ctx.rt.db.transaction() as session:
                row = await session.scalar(select(Resident).where(Resident.openid == inbound.openid))
                if row is None:
                    row = Resident(openid=inbound.openid, subscribed=True, subscribed_at=now, created_at=now)
                    session.add(row)
                row.last_inbound_at = now
                if inbound.event == "subscribe":
                    row.subscribed, row.subscribed_at, row.unsubscribed_at = True, now, None
                elif inbound.event == "unsubscribe":
                    row.subscribed, row.unsubscribed_at = False, now
                elif not row.subscribed and inbound.msg_type != "event":
                    row.subscribed = True  # writing to us means they follow the account again
                await session.flush()
            ctx.resident = row
            break
        except IntegrityError:
            if attempt:
                raise  # created concurrently by another request: read it the second time
    return await nxt(ctx)


async def log_message(ctx: Context, nxt: Next) -> list[Out]:
    """Store the inbound message (with intent and confidence when known), whatever happens next."""
    try:
        return await nxt(ctx)
    finally:
        inbound = ctx.inbound
        if ctx.resident is not None:
            async with ctx.rt.db.transaction() as session:
                session.add(
                    Message(
                        resident_id=ctx.resident.id,
                        direction="in",
                        msg_type=inbound.msg_type,
                        event=inbound.event,
                        content=inbound.content,
                        payload=inbound.raw,
                        intent=ctx.intent,
                        confidence=ctx.confidence,
                        dedup_key=inbound.key,
                        created_at=ctx.rt.clock.now(),
                    )
                )
        log.info(
            "in %s %s%s intent=%s conf=%s handler=%s",
            mask_openid(inbound.openid),
            inbound.msg_type,
            f"/{inbound.event}" if inbound.event else "",
            ctx.intent or "-",
            f"{ctx.confidence:.2f}" if ctx.confidence is not None else "-",
            ctx.extra.get("handler", "-"),
        )


async def takeover(ctx: Context, nxt: Next) -> list[Out]:
    """While a staff member has taken over the conversation the bot stays silent."""
    if ctx.resident is not None and ctx.resident.takeover_by:
        ctx.extra["handler"] = "takeover"
        return []
    return await nxt(ctx)


# Menu CLICK keys are routed like intents (bot/wechat/menu.yml defines the keys).
MENU_INTENTS = {
    "REPORT": "complaint",
    "MY_TICKETS": "complaint",
    "POINTS": "coupon",
    "COUPONS": "coupon",
    "COURSES": "course_booking",
    "GUIDE": "query",
    "HANDOFF": "handoff",
    "HELP": "smalltalk",
}


async def understand(ctx: Context, nxt: Next) -> list[Out]:
    """Classify text (and recognised voice) when the intent engine is loaded; map menu keys."""
    language = ctx.rt.language
    if ctx.inbound.event == "click" and ctx.menu_key in MENU_INTENTS:
        ctx.intent, ctx.confidence = MENU_INTENTS[ctx.menu_key], 1.0
    elif ctx.text and language is not None and getattr(language, "intents", None) is not None:
        result = language.intents.classify(ctx.text)
        ctx.understanding = result
        ctx.intent = result.intent
        ctx.confidence = float(result.confidence)
    return await nxt(ctx)


STANDARD: tuple[Middleware, ...] = (resident, log_message, takeover, understand)
