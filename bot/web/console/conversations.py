"""Residents' conversations in the console: the handoff queue, the inbox, one conversation (claim,
reply, notes, canned replies, a ticket from the conversation, release), and the live event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import and_, case, func, select

from bot.appkeys import RUNTIME
from bot.services import handoff, places, reports, staff_notices, takeover
from bot.services import tickets as ticket_svc
from bot.services.dispatch import rules_for
from bot.storage.models import (
    ConversationClaim,
    HandoffRequest,
    Message,
    PointsBalance,
    Resident,
    StaffNotification,
    Ticket,
    TicketEvent,
)
from bot.web.console.access import (
    CONVERSATIONS,
    READ_ONLY_FOR_OPERATORS,
    SECURITY_HEADERS,
    STAFF,
    current_session,
    error_page,
    form_of,
    page,
    render,
    user_of,
)
from bot.wechat.errors import WeChatError

REASONS = {"asked": "居民要求人工", "urgent": "紧急情况", "not_understood": "连续两次没听懂",
           "unhelpful": "回答被评为没用"}
HANDOFF_STATUS = {"waiting": "等待接管", "claimed": "已接管", "closed": "已结束"}
POLL = 1.0
log = logging.getLogger("bot.web.console")
KEEPALIVE = 15.0
SESSION_CHECK = 5.0  # an open stream ends this long at most after its session does (logout, expiry)
CLAIMS_READ = 5000  # conversations held at once that the live stream follows


def _int(raw: str, default: int | None = None) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return value if 0 < value < 2**31 else default


def ticket_place(ticket: Ticket) -> str:
    """Where a ticket is, as staff read it: "3号楼1单元502室", a location's label or text, or ""."""
    parts = []
    for value, suffix in ((ticket.building, "号楼"), (ticket.unit, "单元"), (ticket.room, "室")):
        if value:
            parts.append(f"{value}{suffix}" if value.isdigit() else value)
    if parts:
        return "".join(parts)
    location = ticket.location or {}
    return str(location.get("label") or location.get("text") or "")


async def open_ticket_places(session: Any, resident_ids: set[int]) -> dict[int, tuple[Ticket, str]]:
    """Each resident's open ticket staff most need to find (an emergency first, then the newest)
    that has a place, with that place: the queue shows it where the resident bound no building."""
    if not resident_ids:
        return {}
    rows = (await session.scalars(
        select(Ticket).where(Ticket.resident_id.in_(resident_ids), Ticket.status.in_(ticket_svc.OPEN_STATUSES))
        .order_by(case((Ticket.urgency == "urgent", 0), else_=1), Ticket.id.desc()).limit(20 * len(resident_ids))
    )).all()
    found: dict[int, tuple[Ticket, str]] = {}
    for ticket in rows:
        place = ticket_place(ticket)
        if ticket.resident_id is not None and place and ticket.resident_id not in found:
            found[ticket.resident_id] = (ticket, place)
    return found


@dataclass
class QueueItem:
    request: HandoffRequest
    resident: Resident
    ticket: Ticket | None = None
    place: str = ""

    @property
    def reason_label(self) -> str:
        return REASONS.get(self.request.reason, self.request.reason)

    @property
    def waiting(self) -> bool:
        """Nobody has the resident yet: a request recorded while a colleague was claiming the
        conversation is no longer waiting either."""
        return is_waiting(self.request, self.resident.takeover_by)

    @property
    def status_label(self) -> str:
        if self.request.status == "waiting" and not self.waiting:
            return HANDOFF_STATUS["claimed"]
        return HANDOFF_STATUS.get(self.request.status, self.request.status)

    @property
    def holder(self) -> str:
        return self.request.claimed_by or ("" if self.waiting else self.resident.takeover_by or "")


def is_waiting(request: HandoffRequest | None, held_by: str | None) -> bool:
    """Whether a resident's request still waits for a person: it is open, nobody claimed it, and
    nobody holds the conversation. What the queue's 查看并接管, the conversation page's red
    reason badge and the navigation's count all show."""
    return request is not None and request.status == "waiting" and not held_by


async def queue(request: web.Request) -> list[QueueItem]:
    db = request.config_dict[RUNTIME].db
    rows = await handoff.open_requests(db)
    async with db.session() as session:
        ids = {r.resident_id for r in rows}
        residents = {r.id: r for r in (await session.scalars(select(Resident).where(Resident.id.in_(ids)))).all()}
        places = await open_ticket_places(session, ids)
        # An emergency reported before its place was given: its number, so staff find the ticket
        # (and make no second one from the conversation) while the place is still to come.
        unplaced = ids - set(places)
        emergencies: dict[int, Ticket] = {}
        if unplaced:
            for t in (await session.scalars(
                select(Ticket).where(Ticket.resident_id.in_(unplaced), Ticket.urgency == "urgent",
                                     Ticket.status.in_(ticket_svc.OPEN_STATUSES)).order_by(Ticket.id.desc())
            )).all():
                if t.resident_id is not None:
                    emergencies.setdefault(t.resident_id, t)
    items = []
    for r in rows:
        if r.resident_id in residents:
            ticket, place = places.get(r.resident_id, (emergencies.get(r.resident_id), ""))
            items.append(QueueItem(r, residents[r.resident_id], ticket, place))
    return items


@page("GET", "/console", CONVERSATIONS | {"merchant"})
async def home(request: web.Request) -> web.StreamResponse:
    from bot.web.console.login import home_of

    raise web.HTTPSeeOther(home_of(user_of(request).role))


@page("GET", "/console/handoffs", CONVERSATIONS)
async def handoffs(request: web.Request) -> web.StreamResponse:
    return render(request, "handoffs.html", title="转人工队列", items=await queue(request),
                  now=request.config_dict[RUNTIME].clock.now())


@page("GET", "/console/handoffs/rows", CONVERSATIONS)
async def handoff_rows(request: web.Request) -> web.StreamResponse:
    """The queue's rows, for the live page."""
    return render(request, "_handoff_rows.html", items=await queue(request),
                  now=request.config_dict[RUNTIME].clock.now())


@dataclass
class InboxItem:
    resident: Resident
    last: Message
    open_tickets: int
    points: int
    intents: list[tuple[str, float]]
    place: str = ""


async def inbox_items(request: web.Request, limit: int = 50) -> list[InboxItem]:
    db = request.config_dict[RUNTIME].db
    async with db.session() as session:
        latest = (await session.execute(
            select(Message.resident_id, func.max(Message.id).label("last"))
            .group_by(Message.resident_id).order_by(func.max(Message.id).desc()).limit(limit)
        )).all()
        ids = [r.resident_id for r in latest]
        if not ids:
            return []
        residents = {r.id: r for r in (await session.scalars(select(Resident).where(Resident.id.in_(ids)))).all()}
        last = {m.id: m for m in (await session.scalars(
            select(Message).where(Message.id.in_([r.last for r in latest])))).all()}
        open_counts = {int(rid or 0): int(n) for rid, n in (await session.execute(
            select(Ticket.resident_id, func.count()).where(
                Ticket.resident_id.in_(ids), Ticket.status.in_(ticket_svc.OPEN_STATUSES))
            .group_by(Ticket.resident_id))).all()}
        balances: dict[int, int] = dict((await session.execute(
            select(PointsBalance.resident_id, PointsBalance.balance).where(PointsBalance.resident_id.in_(ids))
        )).all())
        recent = (await session.execute(
            select(Message.resident_id, Message.intent, Message.confidence)
            .where(Message.resident_id.in_(ids), Message.direction == "in", Message.intent.is_not(None),
                   Message.id > max(0, min(r.last for r in latest) - 2000))
            .order_by(Message.id.desc())
        )).all()
        places = await open_ticket_places(session, set(ids))
    intents: dict[int, list[tuple[str, float]]] = {}
    for rid, intent, conf in recent:
        got = intents.setdefault(rid, [])
        if len(got) < 3:
            got.append((str(intent), conf or 0.0))
    return [
        InboxItem(residents[r.resident_id], last[r.last], open_counts.get(r.resident_id, 0),
                  balances.get(r.resident_id, 0), intents.get(r.resident_id, []),
                  places[r.resident_id][1] if r.resident_id in places else "")
        for r in latest if r.resident_id in residents and r.last in last
    ]


@page("GET", "/console/inbox", CONVERSATIONS)
async def inbox(request: web.Request) -> web.StreamResponse:
    return render(request, "inbox.html", title="会话", items=await inbox_items(request))


@page("GET", "/console/inbox/rows", CONVERSATIONS)
async def inbox_rows(request: web.Request) -> web.StreamResponse:
    return render(request, "_inbox_rows.html", items=await inbox_items(request))


async def _resident(request: web.Request) -> Resident:
    rid = _int(request.match_info.get("id", ""))
    if rid is None:
        raise web.HTTPNotFound()
    async with request.config_dict[RUNTIME].db.session() as session:
        resident = await session.get(Resident, rid)
    if resident is None:
        raise web.HTTPNotFound()
    return resident


async def _messages(request: web.Request, resident_id: int, limit: int = 100) -> list[Message]:
    async with request.config_dict[RUNTIME].db.session() as session:
        rows = list((await session.scalars(
            select(Message).where(Message.resident_id == resident_id).order_by(Message.id.desc()).limit(limit)
        )).all())
    rows.reverse()
    return rows


async def conversation_view(request: web.Request, *, error: str = "", status: int = 200,
                            draft: str = "") -> web.Response:
    rt = request.config_dict[RUNTIME]
    resident = await _resident(request)
    if not error and request.query.get("taken"):  # the queue's 查看并接管, a colleague quicker
        holder = await takeover.holder(rt.db, resident.id)
        if holder is not None and holder.user_name != user_of(request).name:
            error = f"{holder.user_name} 已经先接管了这个会话，您现在只能查看；只有接管人可以回复居民。"
        elif holder is None:
            error = "有其他工作人员先接管了这个会话，现在已交还机器人；需要时可以再点“接管会话”。"
    async with rt.db.session() as session:
        balance = await session.scalar(
            select(PointsBalance.balance).where(PointsBalance.resident_id == resident.id)) or 0
        open_request = await session.scalar(
            select(HandoffRequest).where(HandoffRequest.resident_id == resident.id,
                                         HandoffRequest.status.in_(handoff.OPEN)))
        tickets = list((await session.scalars(
            select(Ticket).where(Ticket.resident_id == resident.id).order_by(Ticket.id.desc()).limit(10))).all())
        placed = await open_ticket_places(session, {resident.id})
    rules = rules_for(rt.settings.data_dir)
    from bot.web.console.tickets import may_see  # tickets.py imports this module

    # Another department's tickets are listed without a link to the page that would refuse this user.
    openable = {t.id for t in tickets if may_see(user_of(request), t)}
    made = next((t for t in tickets if str(t.id) == request.query.get("made")), None) if not error else None
    notice = "" if made is None else (
        f"已创建工单 {made.number}，已派给{made.department}办理；不是您部门的工单，您看不到它的详情。"
        if made.department else f"已创建工单 {made.number}，等待主管分派；分派前只有主管能看到它的详情。")
    return render(
        request, "conversation.html", status=status, title="会话详情", resident=resident, notice=notice,
        openable=openable,
        place=placed[resident.id][1] if resident.id in placed else "",
        ticket_places={t.id: ticket_place(t) for t in tickets},
        messages=await _messages(request, resident.id), notes=await takeover.notes(rt.db, resident.id),
        balance=balance, tickets=tickets, error=error, draft=draft, categories=sorted(rules.categories),
        statuses=STATUS_LABELS, **await _claim_state(request, resident, open_request),
    )


async def _claim_state(request: web.Request, resident: Resident,
                       open_request: HandoffRequest | None) -> dict[str, Any]:
    """What ``_claim_state.html`` shows: who holds the conversation, the 48-hour window, why the
    resident asked for a person, and whether this user may reply."""
    rt = request.config_dict[RUNTIME]
    claim = await takeover.holder(rt.db, resident.id)
    mine = claim is not None and claim.user_name == user_of(request).name
    # The red reason badge says the resident waits for a person: not once someone took them over.
    waiting = open_request if is_waiting(open_request, claim.user_name if claim else None) else None
    return {"claim": claim, "mine": mine, "window": takeover.window(resident, rt.clock.now()),
            "open_request": waiting, "reasons": REASONS, "now": rt.clock.now(),
            "canned": await takeover.canned(rt.db) if mine else []}


STATUS_LABELS = {
    "submitted": "待分派", "dispatched": "已派单", "accepted": "已接单", "in_progress": "处理中",
    "answered": "已答复", "closed": "已完结", "reopened": "重新办理", "escalated": "已督办", "rejected": "不予受理",
}


@page("GET", "/console/conversations/{id}", CONVERSATIONS)
async def conversation(request: web.Request) -> web.StreamResponse:
    return await conversation_view(request)


@page("GET", "/console/conversations/{id}/claim-state", CONVERSATIONS)
async def claim_state(request: web.Request) -> web.StreamResponse:
    """Who holds the conversation and what this user may do (the status line, the claim or release
    button, the reply form or why there is none), for the live page when it changes hands."""
    resident = await _resident(request)
    async with request.config_dict[RUNTIME].db.session() as session:
        open_request = await session.scalar(
            select(HandoffRequest).where(HandoffRequest.resident_id == resident.id,
                                         HandoffRequest.status.in_(handoff.OPEN)))
    return render(request, "_claim_state.html", resident=resident, part=None, draft="",
                  **await _claim_state(request, resident, open_request))


@page("GET", "/console/conversations/{id}/messages", CONVERSATIONS)
async def conversation_messages(request: web.Request) -> web.StreamResponse:
    resident = await _resident(request)
    return render(request, "_messages.html", messages=await _messages(request, resident.id), resident=resident)


IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
IMAGE_MAX = 10 * 1024 * 1024  # WeChat's limit for an image message


@page("GET", "/console/conversations/{id}/images/{mid}", CONVERSATIONS)
async def conversation_image(request: web.Request) -> web.StreamResponse:
    """A picture the resident sent, fetched from WeChat's media API (WeChat keeps it 3 days), so
    staff who took the conversation over see what the resident showed them; not stored here."""
    rt = request.config_dict[RUNTIME]
    resident = await _resident(request)
    mid = _int(request.match_info["mid"])
    message = None
    if mid is not None:
        async with rt.db.session() as session:
            message = await session.get(Message, mid)
    if (message is None or message.resident_id != resident.id or message.direction != "in"
            or message.msg_type != "image"):
        raise web.HTTPNotFound()
    media_id = str((message.payload or {}).get("MediaId") or "")
    gone = "这张图片已经取不到了（微信只保存3天）。"
    if not media_id or rt.api is None:
        return error_page(request, 404, gone)
    try:
        media = await rt.api.download_media(media_id, max_bytes=IMAGE_MAX)
    except (WeChatError, aiohttp.ClientError, TimeoutError) as exc:
        log.info("console: image of message %s not fetched: %s", message.id, type(exc).__name__)
        return error_page(request, 404, gone)
    content_type = media.content_type.split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        return error_page(request, 404, gone)
    return web.Response(body=media.content, content_type=content_type,
                        headers={"Cache-Control": "private, max-age=3600"})


def _back(resident: Resident, anchor: str = "") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/console/conversations/{resident.id}{anchor}")


@page("POST", "/console/conversations/{id}/claim", STAFF, READ_ONLY_FOR_OPERATORS)
async def claim(request: web.Request) -> web.StreamResponse:
    """Take the conversation over: its page's 接管会话, and the queue's 查看并接管 (``from=queue``),
    which opens the conversation taken over, or, when a colleague was quicker, opens it saying so."""
    rt = request.config_dict[RUNTIME]
    resident = await _resident(request)
    try:
        await takeover.claim(rt.db, resident.id, user_of(request).name, rt.clock.now())
    except takeover.TakeoverError as exc:
        if exc.code == "held" and (await form_of(request)).get("from") == "queue":
            raise web.HTTPSeeOther(f"/console/conversations/{resident.id}?taken=1") from None
        return await conversation_view(request, error=exc.message, status=409)
    raise _back(resident)


@page("POST", "/console/conversations/{id}/release", STAFF, READ_ONLY_FOR_OPERATORS)
async def release(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    resident = await _resident(request)
    me = user_of(request)
    who = None if me.role in ("supervisor", "admin") else me.name
    try:
        await takeover.release(rt.db, resident.id, who, rt.clock.now())
    except takeover.TakeoverError as exc:
        return await conversation_view(request, error=exc.message, status=409)
    raise _back(resident)


@page("POST", "/console/conversations/{id}/reply", STAFF, READ_ONLY_FOR_OPERATORS)
async def reply(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    resident = await _resident(request)
    text = (await form_of(request)).get("text", "")
    try:
        await takeover.reply(rt.db, resident.id, user_of(request).name, text, rt.clock.now())
    except takeover.TakeoverError as exc:
        return await conversation_view(request, error=exc.message, status=409, draft=text[:takeover.MAX_REPLY])
    raise _back(resident, "#reply")


@page("POST", "/console/conversations/{id}/notes", STAFF, READ_ONLY_FOR_OPERATORS)
async def note(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    resident = await _resident(request)
    try:
        await takeover.add_note(rt.db, resident.id, user_of(request).name,
                                (await form_of(request)).get("text", ""), rt.clock.now())
    except takeover.TakeoverError as exc:
        return await conversation_view(request, error=exc.message, status=400)
    raise _back(resident, "#notes")


@page("POST", "/console/conversations/{id}/ticket", STAFF, READ_ONLY_FOR_OPERATORS)
async def ticket_from_conversation(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    resident = await _resident(request)
    form = await form_of(request)
    rules = rules_for(rt.settings.data_dir)
    text = form.get("text", "").strip()
    category = form.get("category") or None
    if not text or len(text) > 2000:
        return await conversation_view(request, error="工单内容需要1到2000个字。", status=400)
    if category is not None and category not in rules.categories:
        return await conversation_view(request, error="请选择列表中的类别。", status=400)
    urgency = "urgent" if form.get("urgency") == "urgent" else "normal"
    # Where: what staff wrote under 地点 (楼栋单元室 or any place), else an address in the text, else
    # the resident's building. A place written that is no address (a road, the estate's gate) is not
    # in the resident's building; a unit and room alone are.
    where = " ".join(form.get("place", "").split())[:200]
    place = places.from_text(where) or places.from_text(text) or {}
    own = resident.building if place or not where else None
    new = ticket_svc.NewTicket(
        text=text, resident=resident, channel="console", building=place.get("building") or own,
        unit=place.get("unit"), room=place.get("room"), location={"text": where} if where else None,
        category=category, confidence=1.0 if category else None, urgency=urgency,
        actor=f"session:{user_of(request).name}",
    )
    try:
        report = await reports.create(rt.db, new, rules, rt.clock.now())
    except ticket_svc.TicketError as exc:  # its message is English, for the API
        return await conversation_view(request, status=400, error="工单内容需要1到2000个字。"
                                       if exc.code == "empty_text" else "工单没有创建，请刷新页面后重试。")
    from bot.web.console.tickets import may_see  # tickets.py imports this module

    async with rt.db.session() as session:
        made = await session.get(Ticket, report.id)
    if made is not None and not may_see(user_of(request), made):
        # Dispatched to another department: its page would refuse this user; say where it went.
        raise web.HTTPSeeOther(f"/console/conversations/{resident.id}?made={report.id}#tickets")
    raise web.HTTPSeeOther(f"/console/tickets/{report.id}")


# -- canned replies ----------------------------------------------------------------------------


@page("GET", "/console/canned", CONVERSATIONS)
async def canned(request: web.Request) -> web.StreamResponse:
    return render(request, "canned.html", title="快捷回复", items=await takeover.canned(request.config_dict[RUNTIME].db),
                  notice=CANNED_DONE.get(request.query.get("done", ""), ""))


# What a save did, said at the top of the page it reloads (the same page, else, as before it).
CANNED_DONE = {"added": "已添加，接管会话回复居民时可以在“选择快捷回复”里选用。", "saved": "已保存。", "deleted": "已删除。"}


@page("POST", "/console/canned", STAFF, READ_ONLY_FOR_OPERATORS)
async def save_canned(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    form = await form_of(request)
    try:
        done = "deleted" if form.get("delete") else "saved" if form.get("id") else "added"
        if form.get("delete"):
            reply_id = _int(form.get("id", ""))
            if reply_id is not None:
                await takeover.delete_canned(rt.db, reply_id)
        else:
            await takeover.save_canned(rt.db, _int(form.get("id", "")), form.get("title", ""),
                                       form.get("text", ""), user_of(request).name, rt.clock.now())
    except takeover.TakeoverError as exc:
        kept = {} if form.get("id") else {"title": form.get("title", "")[:64], "text": form.get("text", "")[:600]}
        return render(request, "canned.html", status=400, title="快捷回复", error=exc.message,
                      items=await takeover.canned(rt.db), kept=kept)
    raise web.HTTPSeeOther(f"/console/canned?done={done}")


# -- notifications and the live stream -----------------------------------------------------------


def _visible(user: Any) -> Any:
    return staff_notices.visible_to(user.role, user.name, user.role == "admin") if user.department is None else (
        staff_notices.visible_to(user.role, user.name, user.role == "admin")
        | (StaffNotification.assignee == user.department)
    )


# Notices are tickets' reminders and escalations, each a link to its ticket: staff's, as tickets are.
NOT_FOR_OPERATORS = "通知是工单的办理提醒和督办，由工作人员和主管处理；运营账号不处理工单，没有权限查看通知。"


@page("GET", "/console/notifications", STAFF, refused=NOT_FOR_OPERATORS)
async def notifications(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    async with request.config_dict[RUNTIME].db.session() as session:
        rows = list((await session.scalars(
            select(StaffNotification).where(_visible(user)).order_by(StaffNotification.id.desc()).limit(100)
        )).all())
    return render(request, "notifications.html", title="通知", items=rows)


@page("POST", "/console/notifications/{nid}/read", STAFF, refused=NOT_FOR_OPERATORS)
async def read_notification(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    nid = _int(request.match_info["nid"])
    if nid is not None:
        async with rt.db.transaction() as session:
            await staff_notices.mark_read(session, nid, _visible(user_of(request)), rt.clock.now())
    raise web.HTTPSeeOther("/console/notifications")


async def _marks(request: web.Request, user: Any) -> dict[str, Any]:
    async with request.config_dict[RUNTIME].db.session() as session:
        message = await session.scalar(select(func.max(Message.id))) or 0
        # Waiting: nobody claimed the request, nor holds the conversation (is_waiting).
        queue_mark = (await session.execute(
            select(func.count(), func.max(HandoffRequest.updated_at),
                   func.sum(case((and_(HandoffRequest.status == "waiting", Resident.takeover_by.is_(None)), 1),
                                 else_=0)))
            .select_from(HandoffRequest).outerjoin(Resident, Resident.id == HandoffRequest.resident_id)
            .where(HandoffRequest.status.in_(handoff.OPEN))
        )).one()
        notice = await session.scalar(select(func.max(StaffNotification.id)).where(_visible(user))) or 0
        ticket = await session.scalar(select(func.max(TicketEvent.id))) or 0
        # Who holds which conversation: a claim is deleted on release, so no id grows with it;
        # the held conversations are few (one per staff member at work), read whole.
        claims = {rid: name for rid, name in (await session.execute(
            select(ConversationClaim.resident_id, ConversationClaim.user_name)
            .order_by(ConversationClaim.resident_id.desc()).limit(CLAIMS_READ))).all()}
    return {"message": message, "handoff": f"{queue_mark[0]}:{queue_mark[1]}", "notice": notice,
            "waiting": int(queue_mark[2] or 0), "ticket": ticket, "claims": claims}


async def _unread(request: web.Request, user: Any) -> int:
    async with request.config_dict[RUNTIME].db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(StaffNotification).where(
            _visible(user), StaffNotification.read_at.is_(None))) or 0)


@page("GET", "/console/events", CONVERSATIONS)
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``ready`` (residents waiting for a person, the user's unread notices),
    ``message`` (resident ids with new messages), ``handoff`` (the queue changed; how many wait
    now), ``notification`` (a new notice's text), ``ticket`` (ids of tickets with a new event: a
    new ticket, a resident's message on one, any change by staff or the scheduler; every change to
    a ticket writes an event). Every process polls the database, so a change made through any
    process reaches every console."""
    user = user_of(request)
    db = request.config_dict[RUNTIME].db
    response = web.StreamResponse(headers={
        **SECURITY_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    marks = await _marks(request, user)
    ready = _event("ready", {"waiting": marks["waiting"], "unread": await _unread(request, user)})
    idle = unchecked = 0.0
    # A page left while the stream starts is no error (ConnectionResetError, also aiohttp's).
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        await response.write(b"retry: 2000\n" + ready)
        while True:
            await asyncio.sleep(POLL)
            idle += POLL
            unchecked += POLL
            if unchecked >= SESSION_CHECK:
                unchecked = 0.0
                if await current_session(request) is None:
                    break  # logged out or expired: the browser's reconnection is refused (401)
            now = await _marks(request, user)
            out: list[bytes] = []
            if now["message"] > marks["message"]:
                async with db.session() as session:
                    ids = sorted(set((await session.scalars(
                        select(Message.resident_id).where(Message.id > marks["message"]).limit(500))).all()))
                out.append(_event("message", {"residents": ids}))
            if now["ticket"] > marks["ticket"]:
                async with db.session() as session:
                    changed = sorted(set((await session.scalars(
                        select(TicketEvent.ticket_id).where(TicketEvent.id > marks["ticket"]).limit(500))).all()))
                out.append(_event("ticket", {"tickets": changed}))
            if now["handoff"] != marks["handoff"] or now["waiting"] != marks["waiting"]:
                out.append(_event("handoff", {"waiting": now["waiting"]}))
            before, after = marks["claims"], now["claims"]
            held = sorted(rid for rid in before.keys() | after.keys() if before.get(rid) != after.get(rid))
            if held:
                out.append(_event("takeover", {"residents": held}))
            if now["notice"] > marks["notice"]:
                async with db.session() as session:
                    rows = (await session.scalars(select(StaffNotification).where(
                        StaffNotification.id > marks["notice"], _visible(user)).order_by(StaffNotification.id))).all()
                for row in rows:
                    out.append(_event("notification", {"id": row.id, "text": row.text}))
            marks = now
            if not out and idle >= KEEPALIVE:
                out.append(b": keep-alive\n\n")
            if out:
                idle = 0.0
                await response.write(b"".join(out))
    return response


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def hours_left(closes_at: datetime | None, now: datetime) -> str:
    if closes_at is None:
        return ""
    left = closes_at - now
    if left <= timedelta(0):
        return "已关闭"
    hours = int(left.total_seconds() // 3600)
    minutes = int(left.total_seconds() % 3600 // 60)
    return f"还剩{hours}小时{minutes}分钟"
