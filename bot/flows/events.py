"""Events: subscribe (with scene keys), unsubscribe, SCAN, LOCATION, VIEW, template results, unknown."""

from __future__ import annotations

import logging

from bot.flows.help import menu, shown
from bot.handler.context import Context
from bot.handler.router import Event, Func, Router
from bot.logmask import mask_openid
from bot.services import residents

router = Router("events")
log = logging.getLogger("bot.events")

TEXTS = {
    "welcome": "欢迎关注社区服务中心！\n{menu}",
    "welcome_back": "欢迎回来！\n{menu}",
    "bound": "已为您登记所在楼栋：{community}{building}。以后反映问题时可以不用再说位置啦。",
    "scan": "扫码成功，谢谢！",
}

async def apply_scene(ctx: Context, scene: str) -> str | None:
    """Record a QR scene key; ``building:<社区>/<楼栋>`` binds the resident to a building."""
    if ctx.resident is None:
        return None
    found = await residents.apply_scene(ctx.rt.db, ctx.resident, scene)
    if found is None or not found.building:
        return None
    return TEXTS["bound"].format(community=found.community, building=found.building)


@router.message(Event("subscribe"))
async def subscribe(ctx: Context) -> str:
    bound = await apply_scene(ctx, ctx.inbound.event_key or "")
    welcome = TEXTS["welcome"].format(menu=menu(ctx.rt))
    return f"{welcome}\n\n{bound}" if bound else await shown(ctx, welcome)


@router.message(Event("scan"))
async def scan(ctx: Context) -> str:
    bound = await apply_scene(ctx, ctx.inbound.event_key or "")
    return bound or TEXTS["scan"]


@router.message(Event("unsubscribe"))
async def unsubscribe(ctx: Context) -> None:
    await ctx.fsm.clear()  # the resident module already marked them unsubscribed


@router.message(Event("location"))
async def reported_location(ctx: Context) -> None:
    # Periodic location reports: kept (in the message log), never answered.
    return None


@router.message(Event("view", "templatesendjobfinish", "view_miniprogram"))
async def silent(ctx: Context) -> None:
    if ctx.inbound.event == "templatesendjobfinish":
        log.info("template message to %s: %s", mask_openid(ctx.openid), ctx.inbound.get("Status") or "-")
    return None


@router.message(Func(lambda ctx: ctx.inbound.msg_type == "event", when=lambda p: p.msg_type == "event"))
async def unknown_event(ctx: Context) -> None:
    log.info("unhandled event %r from %s", ctx.inbound.event, mask_openid(ctx.openid))
    return None
