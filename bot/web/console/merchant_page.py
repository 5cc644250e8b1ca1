"""``/merchant``: a merchant account's view — verify a coupon code (through ``POST
/api/v1/mall/verify`` with the session, so the API's rules hold: another merchant's code answers as
unknown, failures are rate-limited) and today's verifications."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from sqlalchemy import select

from bot.appkeys import RUNTIME
from bot.services.tickets import CHINA
from bot.storage.models import Coupon, IssuedCoupon, Merchant
from bot.web.console.access import MERCHANT, page, render, user_of


async def _today(request: web.Request) -> tuple[Merchant | None, list[tuple[IssuedCoupon, str]]]:
    user = user_of(request)
    rt = request.config_dict[RUNTIME]
    now = rt.clock.now()
    start = datetime.combine(now.astimezone(CHINA).date(), datetime.min.time(), CHINA)
    async with rt.db.session() as session:
        merchant = await session.get(Merchant, user.merchant_id) if user.merchant_id else None
        rows = (await session.execute(
            select(IssuedCoupon, Coupon.title).join(Coupon, Coupon.id == IssuedCoupon.coupon_id)
            .where(IssuedCoupon.merchant_id == user.merchant_id, IssuedCoupon.status == "used",
                   IssuedCoupon.used_at >= start)
            .order_by(IssuedCoupon.used_at.desc()).limit(200)
        )).all() if user.merchant_id else []
    return merchant, [(issued, str(title)) for issued, title in rows]


@page("GET", "/merchant", MERCHANT)
async def merchant_home(request: web.Request) -> web.StreamResponse:
    merchant, rows = await _today(request)
    return render(request, "merchant.html", title="优惠券核销", merchant=merchant, rows=rows,
                  code=request.query.get("code", "")[:32])


@page("GET", "/merchant/today", MERCHANT)
async def merchant_today(request: web.Request) -> web.StreamResponse:
    merchant, rows = await _today(request)
    return render(request, "_verifications.html", merchant=merchant, rows=rows)
