"""Complaints become tickets: collect what happened, where, photos and (for visits) a phone; then
the ticket number and the promised time. Also: urgent reports (emergency numbers first), "我的诉求"
/ "查进度" / a ticket number, and the resident's rating of an answered ticket."""

from __future__ import annotations

import logging
import re
from typing import Any

from bot.handler.context import Context
from bot.handler.router import PHASE_MENU, PHASE_STATE, Func, Intent, MsgType, Router, State, Text
from bot.messages import HandlerResult
from bot.services import tickets as svc
from bot.services.dispatch import Rules, rules_for
from bot.services.routing import route
from bot.storage.models import Ticket
from bot.wechat.media import MediaStore
from intents.entities import extract_addresses, extract_phones, extract_tickets

log = logging.getLogger(__name__)
router = Router("complaint")

TEXTS = {
    "ask_what": "请说说遇到了什么问题，比如“3号楼2单元楼道灯不亮”，也可以发照片。",
    "ask_where": "请告诉我具体位置：几号楼几单元，或者发送微信位置。",
    "ask_phone": "这类问题需要工作人员上门查看，请留一个联系电话。不方便留的话回复“不留”。",
    "bad_phone": "没有认出电话号码，请再发一次（如 13812345678），或回复“不留”。",
    "media_kept": "收到，已附在您的反映里。还有要补充的可以继续发。",
    "voice_kept": "收到您的语音，已附在您的反映里。方便的话也可以打字说明一下。",
    "media_failed": "附件没能保存下来，您可以稍后再发一次，文字说明也可以。",
    "location_kept": "收到位置：{label}。",
    "created": "已为您登记诉求，编号 {number}。我们会在{promise}内处理并回复您，可以随时发“查进度”查看。",
    "created_triage": "已为您登记诉求，编号 {number}。工作人员会尽快分派，{promise}内给您答复，可以随时发“查进度”查看。",
    "duplicate": "附近邻居也反映过类似问题，我们会一并处理。",
    "urgent": (
        "情况紧急请立即拨打：火警119、急救120、报警110；闻到燃气味请打燃气公司抢修电话，"
        "不要开关电器、不要点火，开窗后尽快离开。电梯困人请按电梯内警铃或拨打电梯内救援电话。"
    ),
    "urgent_created": "已按紧急情况登记，编号 {number}，已通知值班人员，{promise}内响应。",
    "urgent_where": "请尽快补充具体位置（几号楼几单元），直接回复就行。",
    "urgent_where_kept": "位置已补充到诉求 {number}，值班人员会尽快赶到。",
    "cancelled": "好的，已取消，这次没有登记。有需要随时再找我。",
    "expired": "您刚才反映的问题因为太久没有回复，已经先取消了。需要的话请重新说一下情况。",
    "none": "您还没有提交过诉求。遇到问题可以直接告诉我，比如“5号楼门口路灯不亮”。",
    "not_found": "没有找到您名下编号为 {number} 的诉求，请核对一下编号。",
    "status_line": "{number}（{summary}）：{status}{latest}",
    "latest": "。最新：{note}",
    "status_head": "您的诉求：",
    "rated_ok": "谢谢您的评价！诉求 {number} 已完结。",
    "rated_bad": "抱歉没让您满意，诉求 {number} 已重新办理，我们会尽快处理。",
    "ask_comment": "可以说说哪里不满意吗？直接回复，我们转给办理人员。",
    "comment_kept": "已转给办理人员，谢谢您。",
}

CANCEL_WORDS = ("取消", "算了", "不用了", "不反映了", "不要了")
NO_PHONE = {"不留", "不用", "不方便", "不需要"}
STATUS_RE = re.compile(r"我的诉求|查进度|查询进度|进度怎么样|处理得怎么样|我反映的|我的工单|办得怎么样")
RATING_RE = re.compile(r"^\s*(不满意|基本满意|非常满意|满意)[\s，,。.!！:：]*(.*)$", re.S)
MEDIA_KINDS = {"image": "image", "video": "video", "shortvideo": "shortvideo", "voice": "voice"}


def rules(ctx: Context) -> Rules:
    return rules_for(ctx.rt.settings.data_dir)


def promise(hours: float) -> str:
    if hours < 24:
        return f"{hours:g}小时"
    return f"{hours / 24:g}天"


# --------------------------------------------------------------------------------------- helpers
async def store_media(ctx: Context, item: dict[str, Any]) -> dict[str, Any]:
    """Download an attachment's media into the media store (once); failures keep the media id."""
    kind = MEDIA_KINDS.get(str(item.get("kind")))
    if kind is None or item.get("file") or not item.get("media_id") or ctx.rt.api is None:
        return item
    store = MediaStore(ctx.rt.settings.media_dir)
    try:
        stored = await store.download(ctx.rt.api, str(item["media_id"]), kind)
    except Exception as exc:  # WeChat errors, too large, disk: keep the id, tell the log the kind only
        log.warning("media download failed: %s", type(exc).__name__)
        return {**item, "download_error": type(exc).__name__}
    return {**item, "file": store.relative(stored), "content_type": stored.content_type, "size": stored.size}


def _where_from_text(text: str) -> dict[str, Any] | None:
    addresses = extract_addresses(text)
    if not addresses:
        return None
    a = addresses[0]
    return {"building": a.building, "unit": a.unit, "room": a.room, "text": a.text}


def _where_from_attachments(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    for item in reversed(items):
        if item.get("kind") == "location":
            label = str(item.get("label") or "")
            where = {"label": label, "latitude": item.get("latitude"), "longitude": item.get("longitude")}
            return {**(_where_from_text(label) or {}), **where}
    return None


def _describes(text: str) -> bool:
    """More than an address or a word: a description a ticket can start from."""
    rest = text
    for a in extract_addresses(text):
        rest = rest.replace(a.text, "")
    return len(re.sub(r"\W+", "", rest)) >= 4


def _intro_texts(ctx: Context) -> list[str]:
    note = ctx.extra.pop("complaint_note", None)
    return [note] if note else []


async def _start(ctx: Context, text: str) -> str:
    data = ctx.fsm.data
    attachments = list(data.get("attachments", []))
    where = _where_from_text(text) or _where_from_attachments(attachments)
    if where is None and ctx.resident is not None and ctx.resident.building:
        where = {"building": ctx.resident.building, "bound": True}
    routed = await route(ctx.rt.settings.data_dir, text)
    phones = extract_phones(text)
    await ctx.fsm.set(
        "complaint:collect",
        c_text=text,
        c_category=routed.category,
        c_conf=routed.confidence,
        c_where=where,
        c_phone=phones[0] if phones else None,
        attachments=attachments,
    )
    return await _proceed(ctx)


async def _proceed(ctx: Context) -> str:
    data = ctx.fsm.data
    if not data.get("c_where") and not data.get("c_asked_where"):
        await ctx.fsm.set("complaint:where", c_asked_where=True)
        return "\n".join([*_intro_texts(ctx), TEXTS["ask_where"]])
    if rules(ctx).needs_visit(data.get("c_category")) and not data.get("c_phone") and not data.get("c_asked_phone"):
        await ctx.fsm.set("complaint:phone", c_asked_phone=True)
        return "\n".join([*_intro_texts(ctx), TEXTS["ask_phone"]])
    ticket, duplicate = await _create(ctx, urgency="normal")
    hours = (ticket.deadline - ticket.created_at).total_seconds() / 3600 if ticket.deadline else 168
    key = "created_triage" if ticket.department is None and ticket.assignee is None else "created"
    out = [*_intro_texts(ctx), TEXTS[key].format(number=ticket.number, promise=promise(hours))]
    if duplicate:
        out.append(TEXTS["duplicate"])
    return "\n".join(out)


async def _create(ctx: Context, urgency: str) -> tuple[Ticket, bool]:
    data = ctx.fsm.data
    attachments = [await store_media(ctx, a) for a in data.get("attachments", []) if a.get("kind") != "link"]
    where = data.get("c_where") or {}
    location = {k: v for k, v in where.items() if k in ("label", "latitude", "longitude", "text") and v}
    new = svc.NewTicket(
        text=str(data.get("c_text") or ""),
        resident=ctx.resident,
        attachments=attachments,
        location=location or None,
        building=where.get("building"),
        unit=where.get("unit"),
        room=where.get("room"),
        category=data.get("c_category"),
        confidence=data.get("c_conf"),
        urgency=urgency,
        contact_phone=data.get("c_phone"),
        source_key=ctx.inbound.key,
    )
    now = ctx.rt.clock.now()
    async with ctx.rt.db.transaction() as session:
        ticket = await svc.create_ticket(session, new, rules(ctx), now)
    await ctx.fsm.clear()
    return ticket, ticket.duplicate_of_id is not None


# -------------------------------------------------------------------------------------- urgent
def _is_urgent(ctx: Context) -> bool:
    return bool(ctx.text) and rules(ctx).is_urgent(ctx.text)


@router.message(Func(_is_urgent, phase=PHASE_STATE, when=lambda p: p.text))
async def urgent(ctx: Context) -> str:
    """Emergency numbers first, then an urgent ticket with whatever location is known."""
    text = ctx.text
    attachments = list(ctx.fsm.data.get("attachments", []))
    where = _where_from_text(text) or _where_from_attachments(attachments)
    if where is None and ctx.resident is not None and ctx.resident.building:
        where = {"building": ctx.resident.building, "bound": True}
    routed = await route(ctx.rt.settings.data_dir, text)
    await ctx.fsm.set("complaint:urgent", c_text=text, c_category=routed.category, c_conf=routed.confidence,
                      c_where=where, c_phone=next(iter(extract_phones(text)), None), attachments=attachments)
    ticket, _ = await _create(ctx, urgency="urgent")
    hours = rules(ctx).deadlines.get("urgent", 2)
    # One passive reply, emergency numbers first: it reaches the resident at once.
    out = [TEXTS["urgent"], TEXTS["urgent_created"].format(number=ticket.number, promise=promise(hours))]
    if where is None:
        await ctx.fsm.set("complaint:urgent_where", ticket_id=ticket.id)
        out.append(TEXTS["urgent_where"])
    return "\n\n".join(out)


# ------------------------------------------------------------------------------ inside the flow
@router.message(State("complaint:*"), Text(*CANCEL_WORDS))
async def cancel(ctx: Context) -> str:
    await ctx.fsm.clear()
    return TEXTS["cancelled"]


async def _keep(ctx: Context, item: dict[str, Any]) -> dict[str, Any]:
    """Keep an attachment: on the ticket when the flow already created one (urgent location,
    rating comment), else on the conversation until the ticket is created."""
    ticket_id = ctx.fsm.data.get("ticket_id")
    if isinstance(ticket_id, int):
        async with ctx.rt.db.transaction() as session:
            ticket = await svc.load_for_update(session, ticket_id)
            if ticket is not None:
                await svc.add_attachment(session, ticket, item, actor="resident", now=ctx.rt.clock.now())
                return item
    kept = [a for a in ctx.fsm.data.get("attachments", []) if a.get("msg_key") != item["msg_key"]]
    await ctx.fsm.update(attachments=[*kept, item][-9:])
    return item


@router.message(State("complaint:*") & MsgType("image", "video", "shortvideo"))
async def media(ctx: Context) -> str:
    from bot.flows.media import attachment

    item = await _keep(ctx, await store_media(ctx, attachment(ctx)))
    return TEXTS["media_failed"] if item.get("download_error") else TEXTS["media_kept"]


@router.message(State("complaint:*") & MsgType("voice"))
async def voice(ctx: Context) -> HandlerResult:
    """A voice message is kept as an attachment (with its transcript); recognised text is also the
    answer to the current step, as if typed."""
    from bot.flows.media import attachment

    item = await _keep(ctx, await store_media(ctx, attachment(ctx)))
    if not ctx.text:
        return TEXTS["media_failed"] if item.get("download_error") else TEXTS["voice_kept"]
    step = STEPS.get(ctx.fsm.state or "")
    return await step(ctx) if step is not None else await _proceed(ctx)


@router.message(State("complaint:*") & MsgType("location"))
async def location(ctx: Context) -> str:
    from bot.flows.media import attachment

    item = attachment(ctx)
    where = _where_from_attachments([item])
    await ctx.fsm.update(attachments=[*ctx.fsm.data.get("attachments", []), item], c_where=where)
    head = TEXTS["location_kept"].format(label=item.get("label") or "已记录")
    if ctx.fsm.state == "complaint:where":
        ctx.extra["complaint_note"] = head
        return await _proceed(ctx)
    return head


@router.message(State("complaint:what"))
async def what(ctx: Context) -> str:
    if ctx.inbound.msg_type == "voice" and not ctx.text:
        return TEXTS["ask_what"]
    if not ctx.text:
        return TEXTS["ask_what"]
    return await _start(ctx, ctx.text)


@router.message(State("complaint:where"))
async def where(ctx: Context) -> str:
    text = ctx.text
    found = _where_from_text(text) if text else None
    if found is None and text:
        found = {"text": text[:200], "label": text[:200]}
    await ctx.fsm.update(c_where=found)
    return await _proceed(ctx)


@router.message(State("complaint:phone"))
async def phone(ctx: Context) -> str:
    text = ctx.text
    if text in NO_PHONE:
        return await _proceed(ctx)
    phones = extract_phones(text)
    if not phones:
        return TEXTS["bad_phone"]
    await ctx.fsm.update(c_phone=phones[0])
    return await _proceed(ctx)


@router.message(State("complaint:urgent_where"))
async def urgent_where(ctx: Context) -> str:
    ticket_id = ctx.fsm.data.get("ticket_id")
    await ctx.fsm.clear()
    if not ctx.text or not isinstance(ticket_id, int):
        return TEXTS["ask_where"]
    found = _where_from_text(ctx.text) or {}
    async with ctx.rt.db.transaction() as session:
        ticket = await svc.load_for_update(session, ticket_id)
        if ticket is None:
            return TEXTS["ask_where"]
        ticket.building = ticket.building or found.get("building")
        ticket.unit = ticket.unit or found.get("unit")
        ticket.location = {**(ticket.location or {}), "text": ctx.text[:200]}
        await svc.record(session, ticket, "location_added", actor="resident", now=ctx.rt.clock.now(),
                         note=ctx.text[:200], public=False)
        number = ticket.number
    return TEXTS["urgent_where_kept"].format(number=number)


@router.message(State("complaint:comment"))
async def rating_comment(ctx: Context) -> str:
    ticket_id = ctx.fsm.data.get("ticket_id")
    await ctx.fsm.clear()
    if not ctx.text or not isinstance(ticket_id, int):
        return TEXTS["comment_kept"]
    async with ctx.rt.db.transaction() as session:
        ticket = await svc.load_for_update(session, ticket_id)
        if ticket is not None and ticket.resident_id == (ctx.resident.id if ctx.resident else None):
            ticket.rating_comment = ctx.text[:2000]
            await svc.record(session, ticket, "resident_comment", actor="resident", now=ctx.rt.clock.now(),
                             note=ctx.text[:2000], public=True)
    return TEXTS["comment_kept"]


# The step a recognised voice message answers (see ``voice``).
STEPS = {
    "complaint:what": what,
    "complaint:where": where,
    "complaint:phone": phone,
    "complaint:urgent_where": urgent_where,
    "complaint:comment": rating_comment,
}


@router.message(State("complaint:*"))
async def other_in_flow(ctx: Context) -> str:
    """Anything else inside the flow (voice without text, links …): keep going."""
    return await _proceed(ctx)


# ---------------------------------------------------------------------------- expired, rating
def _expired(ctx: Context) -> bool:
    return (ctx.fsm.expired_state or "").startswith("complaint:")


@router.message(Func(_expired, phase=PHASE_STATE))
async def expired(ctx: Context) -> str:
    await ctx.fsm.clear()
    if ctx.intent == "complaint" and _describes(ctx.text):
        ctx.extra["complaint_note"] = TEXTS["expired"]
        return await _start(ctx, ctx.text)
    return TEXTS["expired"]


async def _answered_ticket(ctx: Context) -> Ticket | None:
    if ctx.resident is None:
        return None
    from sqlalchemy import select

    async with ctx.rt.db.session() as session:
        return await session.scalar(
            select(Ticket).where(Ticket.resident_id == ctx.resident.id, Ticket.status == "answered")
            .order_by(Ticket.answered_at.desc(), Ticket.id.desc()).limit(1)
        )


async def _is_rating(ctx: Context) -> bool:
    if not ctx.text or not RATING_RE.match(ctx.text):
        return False
    ticket = await _answered_ticket(ctx)
    if ticket is None:
        return False
    ctx.extra["rating_ticket"] = ticket.id
    return True


@router.message(Func(_is_rating, phase=PHASE_MENU, when=lambda p: p.text))
async def rating(ctx: Context) -> str:
    m = RATING_RE.match(ctx.text)
    assert m is not None
    word = "满意" if m.group(1) == "非常满意" else m.group(1)
    comment = m.group(2).strip() or None
    value = svc.RATINGS[word]
    async with ctx.rt.db.transaction() as session:
        ticket = await svc.load_for_update(session, int(ctx.extra["rating_ticket"]))
        if ticket is None or ticket.status != "answered":
            return TEXTS["none"]
        await svc.rate(session, ticket, value, comment, now=ctx.rt.clock.now(), rules=rules(ctx))
        number, ticket_id = ticket.number, ticket.id
    if value != "unsatisfied":
        return TEXTS["rated_ok"].format(number=number)
    if comment is None:
        await ctx.fsm.set("complaint:comment", ticket_id=ticket_id)
        return TEXTS["rated_bad"].format(number=number) + "\n" + TEXTS["ask_comment"]
    return TEXTS["rated_bad"].format(number=number)


# -------------------------------------------------------------------------------------- status
def _is_status(ctx: Context) -> bool:
    if ctx.menu_key == "MY_TICKETS":
        return True
    return bool(ctx.text) and (bool(STATUS_RE.search(ctx.text)) or bool(extract_tickets(ctx.text)))


@router.message(Func(_is_status, phase=PHASE_MENU, when=lambda p: p.text or p.menu_key))
async def status(ctx: Context) -> str:
    if ctx.resident is None:
        return TEXTS["none"]
    from sqlalchemy import select

    numbers = extract_tickets(ctx.text) if ctx.text else []
    async with ctx.rt.db.session() as session:
        if numbers:
            rows = list((await session.scalars(
                select(Ticket).where(Ticket.resident_id == ctx.resident.id, Ticket.number.in_(numbers))
            )).all())
            if not rows:
                return TEXTS["not_found"].format(number=numbers[0])
        else:
            rows = await svc.tickets_of(session, ctx.resident.id, limit=3)
            if not rows:
                return TEXTS["none"]
        lines = [TEXTS["status_head"]]
        for t in rows:
            event = await svc.latest_public_event(session, t.id)
            note = event.note if event is not None and event.note else None
            summary = t.text[:12] + ("…" if len(t.text) > 12 else "")
            latest = TEXTS["latest"].format(note=note[:60]) if note else ""
            lines.append(TEXTS["status_line"].format(number=t.number, summary=summary,
                                                     status=svc.status_label(t), latest=latest))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- start
@router.message(Intent("complaint"))
async def start(ctx: Context) -> str:
    if not ctx.text:
        await ctx.fsm.set("complaint:what", attachments=list(ctx.fsm.data.get("attachments", [])))
        return TEXTS["ask_what"]
    return await _start(ctx, ctx.text)
