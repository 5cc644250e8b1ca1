"""The tickets board and a ticket's page: filters, timeline, photos, location, the transitions the
state machine allows now (``services/tickets.py:TRANSITIONS``), assignment, the public answer and
private notes. Staff see their department's tickets (and those assigned to them); supervisors all."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import or_, select

from bot.api.tickets import SUPERVISOR_ACTIONS
from bot.appkeys import RUNTIME
from bot.services import tickets as svc
from bot.services.accounts import User
from bot.services.dispatch import rules_for
from bot.storage.models import Resident, Ticket, TicketEvent
from bot.web.console.access import STAFF, form_of, page, render, row_of, user_of
from bot.web.console.conversations import STATUS_LABELS

ACTION_LABELS = {
    "dispatch": "派单", "accept": "接单", "start": "开始处理", "answer": "答复办结", "reject": "不予受理",
    "reopen": "重新办理", "escalate": "上报督办", "close": "完结",
}
# The actions whose WeChat push to the resident carries the 说明 typed with them (svc.transition: the
# others send their own text, the answer, the reason, 重新办理, 完结, and keep the note on the timeline).
NOTE_TOLD = frozenset({"dispatch", "accept", "start", "escalate"})
EVENT_LABELS = {**ACTION_LABELS, "create": "创建", "submitted": "受理", "triage": "待人工分派",
                "possible_duplicate": "可能重复", "attachment": "附件", "location_added": "补充位置",
                "resident_comment": "居民意见", "comment": "备注/回复", "assign": "指派", "reminder": "提醒",
                "rate": "评价", "resident_follow_up": "居民催办", "resident_withdrew": "居民撤回", "resident_contact": "居民补充联系电话",
                "resident_update": "居民补充情况", "resident_repeat": "居民再次反映", "revisit": "回访",
                "phone_shown": "查看联系电话"}
URGENCY = {"normal": "普通", "urgent": "紧急"}
# What a change did, said at the top of the ticket's page it reloads (?done=...); else staff saw
# only the status badge and the timeline change, easy to miss on a phone.
DONE = {"dispatch": "已派单。", "accept": "已接单，这张工单由您办理。", "start": "已开始处理。",
        "answer": "已答复办结，等待居民评价。", "reject": "已不予受理。", "reopen": "已重新办理。",
        "escalate": "已上报督办。", "close": "已完结。", "assign": "已保存指派。", "note": "已添加内部备注。",
        "reply": "已公开回复，会推送给居民。", "revisit": "已记录回访结果。"}
# The step a ticket usually takes next in each status: the action offered first on its page.
NEXT_ACTION = {"submitted": "dispatch", "dispatched": "accept", "accepted": "start", "in_progress": "answer",
               "reopened": "accept", "escalated": "dispatch"}
NUMBER = re.compile(r"GD\d{8}-\d{4}", re.IGNORECASE)
PAGE_SIZE = 50
TEXT_MAX = 4000


def sees_all(user: User) -> bool:
    return user.role in ("supervisor", "admin")


def scope(user: User) -> Any:
    """The tickets a user may see: all for supervisors, else their department's and their own."""
    if sees_all(user):
        return Ticket.id.is_not(None)
    conditions = [Ticket.assignee == user.name]
    if user.department:
        conditions.append(Ticket.department == user.department)
    return or_(*conditions)


def may_see(user: User, ticket: Ticket) -> bool:
    return sees_all(user) or ticket.assignee == user.name or (
        bool(user.department) and ticket.department == user.department
    )


def allowed_actions(user: User, ticket: Ticket) -> list[str]:
    """The actions the state machine allows now, less those the user's role may not take."""
    actions = [a for a, (sources, _) in svc.TRANSITIONS.items() if ticket.status in sources]
    if not sees_all(user):
        actions = [a for a in actions if a not in SUPERVISOR_ACTIONS]
    return actions


FILTERS = ("status", "department", "grid", "urgency", "assignee", "number", "overdue")


@page("GET", "/console/tickets", STAFF)
async def board(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    user = user_of(request)
    now = rt.clock.now()
    q = {k: request.query.get(k, "").strip()[:64] for k in FILTERS}
    stmt = select(Ticket).where(scope(user)).order_by(Ticket.id.desc()).limit(PAGE_SIZE + 1)
    if q["status"] in svc.STATUSES:
        stmt = stmt.where(Ticket.status == q["status"])
    for name in ("department", "grid", "assignee"):
        if q[name]:
            stmt = stmt.where(getattr(Ticket, name) == q[name])
    if q["urgency"] in URGENCY:
        stmt = stmt.where(Ticket.urgency == q["urgency"])
    if q["overdue"] == "1":
        stmt = stmt.where(Ticket.deadline < now, Ticket.status.in_(svc.OPEN_STATUSES))
    if q["number"]:
        stmt = stmt.where(Ticket.number.contains(q["number"].upper(), autoescape=True))
    before = request.query.get("before", "")
    if before.isdigit() and len(before) < 10:
        stmt = stmt.where(Ticket.id < int(before))
    async with rt.db.session() as session:
        rows = list((await session.scalars(stmt)).all())
        grids = sorted(g for g in (await session.scalars(select(Ticket.grid).distinct())).all() if g)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    exact = NUMBER.fullmatch(q["number"])
    if exact and len(rows) == 1:
        raise web.HTTPSeeOther(f"/console/tickets/{rows[0].id}")
    rules = rules_for(rt.settings.data_dir)
    departments = sorted({c.department for c in rules.categories.values() if c.department}
                         | {d for _, (_, d) in rules.grids.items() if d})
    next_url = ("/console/tickets?" + urlencode({**{k: v for k, v in q.items() if v}, "before": rows[-1].id})
                if more else "")
    return render(request, "tickets.html", title="工单", tickets=rows, q=q, now=now, statuses=STATUS_LABELS,
                  urgency=URGENCY, departments=departments, grids=grids, next_url=next_url,
                  open_statuses=svc.OPEN_STATUSES, own_department=None if sees_all(user) else user.department)


class Refused(Exception):
    pass


async def detail_view(request: web.Request, *, error: str = "", status: int = 200,
                      phone_shown: bool = False) -> web.StreamResponse:
    from bot.web.console.access import error_page

    rt = request.config_dict[RUNTIME]
    user = user_of(request)
    ticket = await row_of(request, Ticket)
    if not may_see(user, ticket):
        return error_page(request, 403, "这张工单不属于您的部门，您无权查看或处理。")
    async with rt.db.session() as session:
        events = list((await session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))).all())
        resident = await session.get(Resident, ticket.resident_id) if ticket.resident_id else None
    rules = rules_for(rt.settings.data_dir)
    departments = sorted(_departments(request))
    photos = [i for i, a in enumerate(ticket.attachments or []) if a.get("kind") == "image" and a.get("file")]
    rule = rules.categories.get(ticket.category or "")
    suggested = rule.department if rule is not None and rule.department != ticket.department else None
    # A refused form comes back as it was sent (the action chosen, the words typed), not reset.
    kept = await form_of(request) if request.method == "POST" else {}
    kept_for = request.path.rsplit("/", 1)[-1] if kept else ""
    notice = DONE.get(request.query.get("done", ""), "") if request.method == "GET" else ""
    return render(request, "ticket.html", status=status, title=f"工单 {ticket.number}", t=ticket, events=events,
                  resident=resident, actions=allowed_actions(user, ticket), action_labels=ACTION_LABELS,
                  event_labels=EVENT_LABELS, statuses=STATUS_LABELS, urgency=URGENCY, error=error,
                  departments=departments, photos=photos, now=rt.clock.now(), open_statuses=svc.OPEN_STATUSES,
                  ratings=svc.RATING_LABELS, kept=kept, kept_for=kept_for, suggested=suggested,
                  next_action=NEXT_ACTION.get(ticket.status, ""), phone_shown=phone_shown, notice=notice,
                  note_told=NOTE_TOLD)


@page("GET", "/console/tickets/{id}", STAFF)
async def detail(request: web.Request) -> web.StreamResponse:
    return await detail_view(request)


@page("GET", "/console/tickets/{id}/photos/{n}", STAFF)
async def photo(request: web.Request) -> web.StreamResponse:
    from bot.web.console.access import error_page

    ticket = await row_of(request, Ticket)
    if not may_see(user_of(request), ticket):
        return error_page(request, 403, "这张工单不属于您的部门。")
    raw = request.match_info["n"]
    items = ticket.attachments or []
    if not raw.isdigit() or int(raw) >= len(items) or not items[int(raw)].get("file"):
        raise web.HTTPNotFound()
    root = request.config_dict[RUNTIME].settings.media_dir.resolve()
    path = (root / str(items[int(raw)]["file"])).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=3600",
                                           "X-Content-Type-Options": "nosniff"})


async def _change(request: web.Request, work: Any) -> web.StreamResponse:
    """Run ``work(session, ticket, form)`` on the locked ticket; errors re-render the page. ``work``
    returns what it did (a key of DONE), said at the top of the page it reloads."""
    from bot.web.console.access import error_page

    rt = request.config_dict[RUNTIME]
    user = user_of(request)
    ticket = await row_of(request, Ticket)
    if not may_see(user, ticket):
        return error_page(request, 403, "这张工单不属于您的部门，您无权处理。")
    form = await form_of(request)
    for key in ("note", "resolution", "reason", "text"):
        if len(form.get(key, "")) > TEXT_MAX:
            return await detail_view(request, error=f"内容最多{TEXT_MAX}字。", status=400)
    try:
        async with rt.db.transaction() as session:
            locked = await svc.load_for_update(session, ticket.id)
            assert locked is not None
            done = await work(session, locked, form)
    except svc.TicketError as exc:
        return await detail_view(request, error=_explain(exc), status=409 if exc.code == "illegal_transition" else 400)
    except Refused as exc:
        return await detail_view(request, error=str(exc), status=403)
    raise web.HTTPSeeOther(f"/console/tickets/{ticket.id}?done={done}")


ERRORS = {
    "illegal_transition": "工单状态已经变化，这个操作现在不能做，请刷新页面。",
    "missing_department": "派单需要选择部门或填写处理人。",
    "missing_reason": "不予受理需要填写原因。",
    "missing_resolution": "答复办结需要填写答复内容。",
    "empty_text": "内容不能为空。",
    "missing_rating": "请选择居民的评价：满意、基本满意或不满意。",
    "unknown_department": "请选择列表中的部门。",
    "unknown_action": "请选择列表中的操作。",
    "bad_rating": "请选择居民的评价：满意、基本满意或不满意。",
}


def _explain(exc: svc.TicketError) -> str:
    return ERRORS.get(exc.code, "操作没有完成，请刷新页面后重试。")  # the service's message is English


def _departments(request: web.Request) -> set[str]:
    rules = rules_for(request.config_dict[RUNTIME].settings.data_dir)
    return ({c.department for c in rules.categories.values() if c.department}
            | {d for _, (_, d) in rules.grids.items() if d})


def _department(request: web.Request, form: dict[str, str]) -> str | None:
    """The department chosen in a form: one of the dispatch table's, or None for 不变."""
    department = form.get("department", "").strip()
    if not department:
        return None
    if department not in _departments(request):
        raise svc.TicketError("unknown_department", "")
    return department


def _person(form: dict[str, str]) -> str | None:
    """The assignee typed in a form, without control characters (PostgreSQL refuses NUL)."""
    return "".join(ch for ch in form.get("assignee", "") if ch.isprintable()).strip()[:100] or None


def _actor(request: web.Request) -> str:
    return f"session:{user_of(request).name}"


@page("POST", "/console/tickets/{id}/transition", STAFF)
async def transition(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    rules = rules_for(request.config_dict[RUNTIME].settings.data_dir)

    async def work(session: Any, ticket: Ticket, form: dict[str, str]) -> str:
        action = form.get("action", "")
        if action not in svc.TRANSITIONS:
            raise svc.TicketError("unknown_action", "未知的操作。")
        if action not in allowed_actions(user, ticket):
            if action in SUPERVISOR_ACTIONS and not sees_all(user):
                raise Refused("这个操作需要主管权限。")
            raise svc.TicketError("illegal_transition", "")
        department = _department(request, form)
        if department and not sees_all(user) and department != user.department:
            raise Refused("只有主管可以把工单派给其他部门。")
        await svc.transition(
            session, ticket, action, actor=_actor(request), now=request.config_dict[RUNTIME].clock.now(), rules=rules,
            note=form.get("note", "").strip() or None, reason=form.get("reason", "").strip() or None,
            resolution=form.get("resolution", "").strip() or None,
            # 接单: the user accepting becomes the ticket's handler (their name, as notices match it).
            department=department, assignee=user.name if action == "accept" else _person(form),
        )
        return action

    return await _change(request, work)


@page("POST", "/console/tickets/{id}/assignment", STAFF)
async def assignment(request: web.Request) -> web.StreamResponse:
    user = user_of(request)

    async def work(session: Any, ticket: Ticket, form: dict[str, str]) -> str:
        department = _department(request, form)
        if department and department != ticket.department and not sees_all(user):
            raise Refused("只有主管可以把工单转给其他部门。")
        await svc.assign(session, ticket, actor=_actor(request), now=request.config_dict[RUNTIME].clock.now(),
                         department=department, assignee=_person(form))
        return "assign"

    return await _change(request, work)


@page("POST", "/console/tickets/{id}/comments", STAFF)
async def comment(request: web.Request) -> web.StreamResponse:
    async def work(session: Any, ticket: Ticket, form: dict[str, str]) -> str:
        text = form.get("text", "").strip()
        if not text:
            raise svc.TicketError("empty_text", "")
        await svc.comment(session, ticket, actor=_actor(request), text=text, public=form.get("public") == "1",
                          now=request.config_dict[RUNTIME].clock.now())
        return "reply" if form.get("public") == "1" else "note"

    return await _change(request, work)




@page("POST", "/console/tickets/{id}/phone", STAFF)
async def phone(request: web.Request) -> web.StreamResponse:
    """The resident's full contact phone, for staff who must call them (an emergency, a visit, 回访):
    pages mask it; this POST shows it once, on the page it answers, and the ticket's timeline
    records who looked (a private event, never pushed)."""
    from bot.web.console.access import error_page

    rt = request.config_dict[RUNTIME]
    user = user_of(request)
    ticket = await row_of(request, Ticket)
    if not may_see(user, ticket):
        return error_page(request, 403, "这张工单不属于您的部门，您无权查看。")
    if not ticket.contact_phone:
        return await detail_view(request, error="居民没有留联系电话。", status=404)
    async with rt.db.transaction() as session:
        locked = await svc.load_for_update(session, ticket.id)
        assert locked is not None
        await svc.record(session, locked, "phone_shown", actor=_actor(request), now=rt.clock.now(), public=False)
    return await detail_view(request, phone_shown=True)


@page("POST", "/console/tickets/{id}/revisit", STAFF)
async def revisit(request: web.Request) -> web.StreamResponse:
    """回访: staff called the resident about an answered ticket and record their rating (满意 and
    基本满意 close it, 不满意 reopens it), as if the resident had rated in the chat; for residents
    who do not rate there, e.g. the elderly."""
    rt = request.config_dict[RUNTIME]
    rules = rules_for(rt.settings.data_dir)

    async def work(session: Any, ticket: Ticket, form: dict[str, str]) -> str:
        rating = form.get("rating", "")
        if rating not in svc.RATING_LABELS:
            raise svc.TicketError("missing_rating", "")
        if ticket.status != "answered":
            raise svc.TicketError("illegal_transition", "")
        now = rt.clock.now()
        # (svc.rate records the 回访 line: the rating, by this staff member, with their note)
        await svc.rate(session, ticket, rating, form.get("note", ""), now=now, rules=rules, actor=_actor(request))
        return "revisit"

    return await _change(request, work)
