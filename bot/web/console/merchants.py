"""Admins manage the points mall's merchants, their console accounts and their coupons."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.appkeys import RUNTIME
from bot.services import accounts
from bot.services.tickets import CHINA
from bot.storage.models import ConsoleUser, Coupon, Merchant
from bot.web.console.access import ADMIN_ONLY, form_of, page, path_id, render

CATEGORIES = ("餐饮", "理发", "超市", "交通", "生活服务", "其他")


async def view(request: web.Request, *, error: str = "", notice: str = "", status: int = 200) -> web.Response:
    async with request.config_dict[RUNTIME].db.session() as session:
        merchants = list((await session.scalars(select(Merchant).order_by(Merchant.id))).all())
        coupons = list((await session.scalars(select(Coupon).order_by(Coupon.id))).all())
        users = list((await session.scalars(
            select(ConsoleUser).where(ConsoleUser.role == "merchant").order_by(ConsoleUser.id))).all())
    return render(request, "merchants.html", status=status, title="商户与优惠券", merchants=merchants,
                  coupons=coupons, users=users, categories=CATEGORIES, error=error, notice=notice)


@page("GET", "/console/merchants", ADMIN_ONLY)
async def merchants(request: web.Request) -> web.StreamResponse:
    return await view(request)


def _text(form: dict[str, str], name: str, limit: int, required: bool = True) -> str | None:
    value = form.get(name, "").strip()
    if not value:
        if required:
            raise ValueError(name)
        return None
    if len(value) > limit:
        raise ValueError(name)
    return value


LABELS = {"name": "名称", "category": "类别", "address": "地址", "phone": "电话", "title": "券名称",
          "price": "所需积分", "stock": "库存", "days": "有效天数", "merchant": "商户", "password": "密码",
          "terms": "使用说明"}


def _bad(field: str) -> str:
    return f"请检查“{LABELS.get(field, field)}”一栏。"


@page("POST", "/console/merchants", ADMIN_ONLY)
async def add_merchant(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    rt = request.config_dict[RUNTIME]
    try:
        name = _text(form, "name", 100)
        category = _text(form, "category", 16)
        address = _text(form, "address", 200, False)
        phone = _text(form, "phone", 32, False)
    except ValueError as exc:
        return await view(request, error=_bad(str(exc)), status=400)
    try:
        async with rt.db.transaction() as session:
            session.add(Merchant(name=name, category=category, address=address, phone=phone, active=True,
                                 created_at=rt.clock.now()))
    except IntegrityError:
        return await view(request, error="已有同名商户。", status=409)
    raise web.HTTPSeeOther("/console/merchants")


@page("POST", "/console/merchants/{id}/active", ADMIN_ONLY)
async def toggle(request: web.Request) -> web.StreamResponse:
    async with request.config_dict[RUNTIME].db.transaction() as session:
        merchant = await session.get(Merchant, path_id(request))
        if merchant is None:
            raise web.HTTPNotFound()
        merchant.active = not merchant.active
    raise web.HTTPSeeOther("/console/merchants")


@page("POST", "/console/merchants/{id}/accounts", ADMIN_ONLY)
async def add_account(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    rt = request.config_dict[RUNTIME]
    try:
        await accounts.add_user(rt.db, form.get("name", ""), "merchant", form.get("password", ""), rt.clock.now(),
                                merchant_id=path_id(request))
    except accounts.AccountError as exc:
        text = str(exc)
        message = ("用户名已存在。" if "exists" in text else "密码至少8位。" if "password" in text
                   else "用户名需要2到64个字母、数字或汉字。" if "name" in text else "没有这个商户。")
        return await view(request, error=message, status=400)
    return await view(request, notice=f"已创建商户账号 {form.get('name', '').strip()}，请把密码当面告诉商户。")


@page("POST", "/console/merchants/{id}/coupons", ADMIN_ONLY)
async def add_coupon(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    rt = request.config_dict[RUNTIME]
    merchant_id = path_id(request)
    try:
        title = _text(form, "title", 100)
        category = _text(form, "category", 16)
        terms = _text(form, "terms", 500, False)
        numbers = {}
        for name, lo, hi in (("price", 0, 1_000_000), ("stock", 0, 1_000_000), ("days", 1, 3650)):
            raw = form.get(name, "").strip()
            if not raw.isdigit() or not lo <= int(raw) <= hi:
                raise ValueError(name)
            numbers[name] = int(raw)
    except ValueError as exc:
        return await view(request, error=_bad(str(exc)), status=400)
    now = rt.clock.now()
    start = datetime.combine(now.astimezone(CHINA).date(), datetime.min.time(), CHINA)
    async with rt.db.transaction() as session:
        if await session.get(Merchant, merchant_id) is None:
            raise web.HTTPNotFound()
        session.add(Coupon(merchant_id=merchant_id, title=title, category=category, price=numbers["price"],
                           stock=numbers["stock"], per_resident_limit=1, valid_from=start,
                           valid_until=start + timedelta(days=numbers["days"]), terms=terms, active=True,
                           created_at=now))
    raise web.HTTPSeeOther("/console/merchants")


@page("POST", "/console/coupons/{id}/active", ADMIN_ONLY)
async def toggle_coupon(request: web.Request) -> web.StreamResponse:
    async with request.config_dict[RUNTIME].db.transaction() as session:
        coupon = await session.get(Coupon, path_id(request))
        if coupon is None:
            raise web.HTTPNotFound()
        coupon.active = not coupon.active
    raise web.HTTPSeeOther("/console/merchants")
