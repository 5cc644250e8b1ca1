"""A resident's points in the console: the balance and the ledger (who was credited what, for what,
by whom), and the staff's manual adjustment — crediting volunteer points after an activity, taking
back points given by mistake — with a reason that the ledger keeps. The resident is always told in
WeChat (the points, the reason staff chose to tell them, the balance after it); the internal note
is never sent. Staff and supervisors
adjust (as on the API, ``POST /api/v1/points/adjustments``); operators only read. Reached from a
conversation's 居民信息 and a ticket's page."""

from __future__ import annotations

import re
import secrets

from aiohttp import web
from sqlalchemy import select

from bot.api.points import MAX_BALANCE, POINTS_ROLES, READ_ROLES
from bot.appkeys import RUNTIME
from bot.services import points
from bot.storage.models import PointsEntry, Resident
from bot.web.console.access import allowed, form_of, page, render, row_of, user_of
from bot.web.console.labels import POINTS_REASONS

MAX_ADJUST = 100_000  # as on the API
NOTE_MAX = 500
LEDGER_SIZE = 100
KEY = re.compile(r"[A-Za-z0-9_-]{8,40}")
# Reasons offered for the resident's message (staff may type their own).
TOLD_REASONS = ("参加社区志愿服务", "活动签到漏记，为您补上", "收回误发的积分", "积分核对更正")


def _staff_name(actor: str | None) -> str:
    """The ledger's actor (``zhang#3``, the account's id kept) as staff read it."""
    return re.sub(r"#\d+$", "", actor or "") or "—"


def _done(direction: str, amount: str, told: bool) -> str:
    """The line after an adjustment (a code in the address, not text anyone could put there)."""
    if direction not in ("add", "take") or not amount.isdigit() or len(amount) > 6:
        return ""
    return (f"已{'增加' if direction == 'add' else '扣减'}{int(amount)}积分，已记入积分明细"
            f"{'，并已通过微信告诉居民' if told else ''}。")


async def view(request: web.Request, *, error: str = "", status: int = 200,
               kept: dict[str, str] | None = None) -> web.Response:
    rt = request.config_dict[RUNTIME]
    resident = await row_of(request, Resident)
    async with rt.db.session() as session:
        balance = await points.balance_of(session, resident.id)
        entries = list((await session.scalars(
            select(PointsEntry).where(PointsEntry.resident_id == resident.id)
            .order_by(PointsEntry.id.desc()).limit(LEDGER_SIZE))).all())
    return render(request, "points.html", status=status, title="居民积分", resident=resident, balance=balance,
                  entries=entries, reasons=POINTS_REASONS, staff_name=_staff_name, error=error,
                  notice="" if error else _done(request.query.get("done", ""), request.query.get("n", ""),
                                                request.query.get("told") == "1"),
                  told_max=points.MAX_TOLD_REASON, told_reasons=TOLD_REASONS,
                  may_adjust=allowed(user_of(request), POINTS_ROLES), kept=kept or {},
                  key=secrets.token_urlsafe(16), max_adjust=MAX_ADJUST, note_max=NOTE_MAX)


@page("GET", "/console/residents/{id}/points", READ_ROLES)
async def ledger(request: web.Request) -> web.StreamResponse:
    return await view(request)


@page("POST", "/console/residents/{id}/points", POINTS_ROLES)
async def adjust(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    resident = await row_of(request, Resident)
    form = await form_of(request)
    kept = {k: form.get(k, "")[:NOTE_MAX + 10] for k in ("direction", "amount", "note", "told")}
    direction = form.get("direction", "")
    raw = form.get("amount", "").strip()
    told = points.told_reason(form.get("told", ""))
    # The note is the staff's own record; without one, the ledger keeps what the resident is told.
    note = " ".join(form.get("note", "").split()) or told
    key = form.get("key", "")

    async def refuse(message: str, status: int = 400) -> web.Response:
        return await view(request, error=message, status=status, kept=kept)

    if direction not in ("add", "take"):
        return await refuse("请选择「增加」还是「扣减」积分。")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ADJUST:
        return await refuse(f"积分数：请填写1到{MAX_ADJUST}之间的整数。")
    if len(told) > points.MAX_TOLD_REASON:
        return await refuse(f"告诉居民的原因：最多{points.MAX_TOLD_REASON}字，详细情况请写在内部备注里。")
    if not note:
        return await refuse("调整原因：请写明为什么调整（比如哪次志愿活动），告诉居民的原因和内部备注至少填一项。")
    if len(note) > NOTE_MAX:
        return await refuse(f"内部备注：最多{NOTE_MAX}字。")
    if not KEY.fullmatch(key):
        return await refuse("页面已过期，请刷新页面后重新提交。")
    amount = int(raw) if direction == "add" else -int(raw)
    user = user_of(request)
    suffix = f"#{user.id}"
    try:
        async with rt.db.transaction() as session:
            balance = await points.lock_account(session, resident.id, rt.clock.now())
            if balance + amount > MAX_BALANCE:
                return await refuse("积分数：加上后超过了积分上限，请核对。")
            # The form's key makes a double click (or a resent form) one adjustment, not two.
            await points.adjust(session, resident_id=resident.id, amount=amount,
                                actor=user.name[: 100 - len(suffix)] + suffix, note=note,
                                request_key=f"console:{user.id}:{key}", now=rt.clock.now(),
                                tell=True, reason=told or None)
    except points.InsufficientPoints as exc:
        return await refuse(f"积分数：扣减不能超过居民现有的积分（现有{exc.balance}分）。", 409)
    raise web.HTTPSeeOther(f"/console/residents/{resident.id}/points?done={direction}&n={int(raw)}"
                           f"&told={int(bool(resident.subscribed))}")
