"""Emergencies: a hazard in any message, in any conversation step, comes first.

The reply is two or three short lines — the number to call first, advice for that hazard only —
then the urgent ticket (and a request for the place when it is not known). The hazard is
recognised by ``bot/services/hazards.py`` from the rules in ``bot/rules/hazards.yml``; the resident
is also put in the staff's handoff queue and told when a person will answer in this chat.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.flows import complaint as complaint_flow
from bot.flows import reports as reports_flow
from bot.flows.handoff import answer_when
from bot.flows.media import attachment
from bot.flows.reports import AGAIN, OWN_REPORT, PROGRESS, STATUS_RE, URGENT, chases
from bot.flows.smalltalk import CALENDAR
from bot.handler.choices import is_cancel, phone_alone
from bot.handler.context import Context
from bot.handler.middlewares import MARK, MARK_AFTER
from bot.handler.router import PHASE_STATE, Func, MsgType, Pass, Profile, Router, State
from bot.logmask import mask_phones
from bot.messages import HandlerResult
from bot.services import attachments, handoff, hazards, places, reports
from bot.services.dispatch import rules_for
from bot.services.routing import route
from bot.services.tickets import NewTicket
from intents.entities import extract_phones

router = Router("urgent")

WHERE_STATE = "urgent:where"

TEXTS = {
    "created": "已按紧急情况登记（编号 {number}），已通知值班人员，{promise}内响应。",
    "again": "您刚才已报过（编号 {number}），值班人员正在处理，请按上面的电话先求助。",
    "ask_where": "请回复具体位置（几号楼几单元，或发送微信位置），方便值班人员赶到。",
    "where_kept": "位置已补充到 {number}，值班人员会尽快赶到。",
    "nod": "好的。紧急登记 {number} 值班人员正在处理，有新情况随时告诉我。",
    "where_said": "好的，位置记为{place}，已补充到 {number}，值班人员会按这个位置赶到。",
    "where_again": "请直接回复具体位置，比如“5号楼2单元”，或发送微信位置。",
    "kept": "收到，已附在您的反映里（{number}）。",
    "cancel_kept": "好的。紧急登记 {number} 仍然有效，值班人员会联系处理；已经没事的话也可以告诉我们。",
    "update_kept": "收到，已补充到紧急登记 {number}，值班人员会看到。有新情况随时告诉我。",
    "update_closed": "收到。紧急登记 {number} 已经办结了；如果还有危险，请马上打电话求助。",
    "contact_kept": "好的，已把联系电话 {phone} 记到紧急登记 {number}，值班人员需要时会打给您。",
    # After the place: a number for the duty staff to call, if the resident wants to leave one.
    "ask_phone": "值班人员可能要打电话联系您，方便的话回复手机号；不方便就回复“不留”。",
    "no_phone": "好的，不留也没关系。紧急登记 {number} 值班人员正在处理，会在这里回复您；有新情况随时告诉我。",
    # The place asked and not told (不留, or something else asked meanwhile): the ticket stands as it is.
    "no_place": "好的。紧急登记 {number} 已经通知值班人员，只是还不知道具体位置；想起来了直接回复几号楼几单元就行。",
    "place_pending": "（紧急登记 {number} 已通知值班人员，只是还不知道具体位置，值班人员会在这里联系您。）",
    "calm": "别着急，值班人员已经知道了，正在安排。您先照着做：",
    "still_where": "值班人员还不知道具体位置：请回复几号楼几单元，或发送微信位置，他们才能赶到。",
}
# Right after an emergency was registered (and its place known), what the resident says of it —
# help called, help arrived, the danger over — is news for the duty staff, not a new report.
REPORTED = URGENT  # the mark left after an emergency is registered
UPDATE = re.compile(
    r"120|110|119|96777|急救|救护车|消防|警察|民警|派出所|医院|报警|报了警|打了|打过|叫了|来了|到了|赶到|赶过来|送去|送到|送医"
    r"|没事了|没大碍|好了|好多了|灭了|关了|关掉了|醒了|找到了|回来了|控制住|处理好了|救出来|出来了|放出来"
    r"|开窗|窗户|打开了|阀门|关上了|关好了|下楼了|到楼下|在楼下|到外面|在外面|出来了|离开了"
)
THANKED = re.compile(r"谢|辛苦|麻烦你们|麻烦您")
# A question after all (燃气公司的人来了没有): asked about, not news.
ASKED = re.compile(r"(?:没有?|吗|么|呢|不)[？?。！!]*$")
# Helplessness while the place is asked (我不会弄 怎么办啊): the advice again, not another flow's answer.
HELPLESS = re.compile(r"怎么办|咋办|怎么弄|咋弄|不会弄|不会|不懂|不知道怎么|害怕|吓死|好怕|慌|救命|帮帮我|帮帮忙")
# Declining to leave a phone (residents know the question from ordinary reports): 不留, 不用留 …
NO_PHONE = re.compile(
    r"^(?:那|那就|嗯|好|好的)?[，,]?(?:不留|不用留|不想留|不方便留|不方便|没电话|没有电话|电话不留|不留电话|算了不留|不留了|不给)"
    r"(?:电话|了|吧|啊|呀|哈|谢谢)*[。.！!~～]*$"
)


def declines_phone(text: str) -> bool:
    return NO_PHONE.match(re.sub(r"\s+", "", text or "")) is not None


def promise(hours: float) -> str:
    return f"{hours:g}小时" if hours < 24 else f"{hours / 24:g}天"


def _hazard(ctx: Context) -> bool:
    if not ctx.text:
        return False
    hazard = hazards.rules_for(ctx.rt.settings.data_dir).recognise(ctx.text)
    if hazard is None:
        return False
    if (ctx.fsm.state == WHERE_STATE and ctx.fsm.data.get("hazard") in (None, hazard.id)
            and places.answer(ctx.text) is not None):
        return False  # the place of the emergency just reported ("3号楼2单元，烟很大"), not another one
    ctx.extra["hazard"] = hazard
    return True


@router.message(Func(_hazard, phase=PHASE_STATE, when=lambda p: p.text))
async def urgent(ctx: Context) -> str:
    hazard: hazards.Hazard = ctx.extra["hazard"]
    rules = rules_for(ctx.rt.settings.data_dir)
    data = ctx.fsm.data
    text = ctx.text
    before = str(data.get("c_text") or "")
    if (ctx.fsm.state or "").startswith("complaint:") and before and before not in text:
        text = f"{before}；{text}"  # what the resident was reporting, and now this
    # The report being told is put aside, not lost: once the emergency is seen to, the next reply
    # reminds of it (刚才反映的问题还没提交，要继续吗？) and 继续 takes it up (middlewares.recall).
    complaint_flow.park(ctx)
    kept = list(data.get("attachments", []))
    where = places.locate(ctx.text, kept, ctx.resident) or data.get("c_where")
    lines = [hazard.first, hazard.advice]
    resident_id = ctx.resident.id if ctx.resident is not None else None
    now = ctx.rt.clock.now()
    if resident_id is not None:
        earlier = await reports.own_repeat(ctx.rt.db, resident_id, text, (where or {}).get("building"), rules)
        if earlier is not None and earlier.urgency == "urgent":
            await reports.add_repeat(ctx.rt.db, earlier.id, resident_id, ctx.text, [], now)
            await ctx.fsm.clear()
            return "\n".join([*lines, TEXTS["again"].format(number=earlier.number)])
    if hazard.category and hazard.category in rules.categories:
        category, confidence = hazard.category, 1.0
    else:
        routed = await route(ctx.rt.settings.data_dir, text)
        category, confidence = routed.category, routed.confidence
    stored = [await attachments.keep(ctx.rt.media, a) for a in kept]
    report = await reports.create(ctx.rt.db, NewTicket(
        text=text,
        resident=ctx.resident,
        attachments=stored,
        location=places.location_of(where),
        building=(where or {}).get("building"),
        unit=(where or {}).get("unit"),
        room=(where or {}).get("room"),
        category=category,
        confidence=confidence,
        urgency="urgent",
        contact_phone=next(iter(extract_phones(text)), None),
        source_key=ctx.inbound.key,
    ), rules, now)
    lines.append(TEXTS["created"].format(number=report.number, promise=promise(rules.deadlines.get("urgent", 2))))
    if resident_id is not None:
        await handoff.request(ctx.rt.db, resident_id, "urgent", ctx.text, now, ticket_id=report.id)
        lines.append(answer_when(ctx, now, urgent=True))
    if where is None:
        await ctx.fsm.set(WHERE_STATE, ticket_id=report.id, number=report.number, hazard=hazard.id,
                          phoned=bool(extract_phones(text)))
        lines.append(TEXTS["ask_where"])
    else:
        await _reported(ctx, report.id, report.number, since=now.timestamp())
    return "\n".join(lines)


async def _reported(ctx: Context, ticket_id: int, number: str, *, where_missing: bool = False,
                    since: float | None = None) -> None:
    """The mark after an emergency's registration: news, a phone or 不留 may follow (and the place,
    when it is still missing). ``since``: when the emergency was registered (the mark's, when it
    is left again; now for a new one)."""
    if since is None:
        mark = ctx.extra.get("mark")
        kept = mark[1].get("since") if mark and mark[0] == REPORTED else None
        since = float(kept) if isinstance(kept, int | float) else ctx.rt.clock.now().timestamp()
    await ctx.fsm.set(MARK + REPORTED, ticket_id=ticket_id, number=number, where_missing=where_missing, since=since)


# News of an emergency may come a few messages later ("好的" "谢谢" then "消防车到了"): the mark is
# left again after any answer that starts no step of its own, for this long after the registration.
NEWS_WINDOW = timedelta(hours=2)


def _after_report(profile: Profile) -> bool:
    """The handlers below answer only right after an emergency's registration (its mark): the
    dispatcher asks them about no other message."""
    return profile.mark == REPORTED


def _text_after_report(profile: Profile) -> bool:
    return profile.text and profile.mark == REPORTED


def _reported_kept(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != REPORTED:
        return False
    since = mark[1].get("since")
    return not isinstance(since, int | float) or ctx.rt.clock.now().timestamp() - since <= NEWS_WINDOW.total_seconds()


@router.message(Func(_reported_kept, phase=PHASE_STATE, when=_after_report))
async def keep_reported(ctx: Context) -> Pass:
    """No answer of its own: whichever handler answers, the emergency's mark is left again for the
    next message (unless that handler starts a step of its own)."""
    data = dict(ctx.extra["mark"][1])
    data.setdefault("since", ctx.rt.clock.now().timestamp())
    ctx.extra[MARK_AFTER] = (REPORTED, data)
    return Pass()


def _mark_data(ctx: Context) -> dict[str, object] | None:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != REPORTED or ctx.resident is None:
        return None
    return dict(mark[1])


def _contact(ctx: Context) -> bool:
    if _mark_data(ctx) is None:
        return False
    if declines_phone(ctx.text):
        ctx.extra["contact"] = ""
        return True
    ctx.extra["contact"] = phone_alone(ctx.text)
    return ctx.extra["contact"] is not None


@router.message(Func(_contact, phase=PHASE_STATE, when=_text_after_report))
async def contact(ctx: Context) -> str:
    """A phone number alone right after the emergency's registration: the duty staff's way back;
    不留: understood, nothing more asked."""
    data = ctx.extra["mark"][1]
    number = str(data.get("number", ""))
    ticket_id, missing = int(data.get("ticket_id", 0)), bool(data.get("where_missing"))
    if ctx.extra["contact"]:
        reply = await _add_contact(ctx, ticket_id, number)
    else:
        reply = TEXTS["no_phone"].format(number=number)
    await _reported(ctx, ticket_id, number, where_missing=missing)
    return reply


async def _add_contact(ctx: Context, ticket_id: int, number: str) -> str:
    assert ctx.resident is not None
    phone = str(ctx.extra["contact"])
    if await reports.add_contact(ctx.rt.db, ticket_id, ctx.resident.id, phone, ctx.rt.clock.now()) is None:
        return TEXTS["update_closed"].format(number=number)
    return TEXTS["contact_kept"].format(phone=mask_phones(phone), number=number)


# A nod after the emergency's registration (好的, 嗯嗯, 知道了): the duty staff are on it, not the menu.
NOD = re.compile(r"^(?:好|好的|好滴|嗯|嗯嗯|哦|噢|行|行吧|中|知道了|晓得了|明白了|收到|ok|OK)+(?:了|啊|呀|哈)?[。.！!~～]*$")


def _nod(ctx: Context) -> bool:
    return _mark_data(ctx) is not None and NOD.match(re.sub(r"[\s，,]+", "", ctx.text or "")) is not None


@router.message(Func(_nod, phase=PHASE_STATE, when=_text_after_report))
async def nod(ctx: Context) -> str:
    data = ctx.extra["mark"][1]
    number = str(data.get("number", ""))
    await _reported(ctx, int(data.get("ticket_id", 0)), number, where_missing=bool(data.get("where_missing")))
    missing = "\n" + TEXTS["still_where"] if data.get("where_missing") else ""
    return TEXTS["nod"].format(number=number) + missing


def _update(ctx: Context) -> bool:
    mark, text = ctx.extra.get("mark"), ctx.text
    if not mark or mark[0] != REPORTED or not text or len(text) > 40 or ctx.resident is None:
        return False
    return (UPDATE.search(text) is not None and not places.QUESTION.search(text) and not ASKED.search(text)
            and not is_cancel(text))


@router.message(Func(_update, phase=PHASE_STATE, when=_text_after_report))
async def update(ctx: Context) -> str:
    """"已经打了120了" after the emergency's registration: a note for the staff on duty."""
    assert ctx.resident is not None
    data = ctx.extra["mark"][1]
    number = str(data.get("number", ""))
    if not await reports.add_update(ctx.rt.db, int(data.get("ticket_id", 0)), ctx.resident.id, ctx.text,
                                    ctx.rt.clock.now()):
        return TEXTS["update_closed"].format(number=number)
    # more news may follow
    await _reported(ctx, int(data.get("ticket_id", 0)), number, where_missing=bool(data.get("where_missing")))
    reply = TEXTS["update_kept"].format(number=number)
    return f"不客气！{reply}" if THANKED.search(ctx.text) else reply  # "好了 没事了 谢谢"


# What may surround a place said again: "在3号楼2单元", "不对 是5号楼", "是2单元的".
_PLACE_FILLER = re.compile(r"不对|不是|错了|说错了|更正一下|更正|应该是|[在是就那这边儿旁附近的啊呀吧哦嗯了\s\W]")


def _place_later(ctx: Context) -> bool:
    """The place of an emergency registered without one, told a message later (after something
    else was asked meanwhile): "5号楼2单元". When the place was known, an address alone says it
    more exactly or corrects it ("3号楼2单元" after 3号楼, "不对 是5号楼")."""
    data = _mark_data(ctx)
    text = ctx.text
    if data is None or not text or len(text) > 30:
        return False
    if places.QUESTION.search(text) or hazards.rules_for(ctx.rt.settings.data_dir).recognise(text) is not None:
        return False
    if data.get("where_missing"):
        ctx.extra["place_later"] = places.answer(text)
    else:
        told = places.from_text(text)
        ctx.extra["place_later"] = told if told is not None and not _PLACE_FILLER.sub("", places.strip_address(text)) else None
    return ctx.extra["place_later"] is not None


@router.message(Func(_place_later, phase=PHASE_STATE, when=_text_after_report))
async def place_later(ctx: Context) -> str:
    assert ctx.resident is not None
    data = ctx.extra["mark"][1]
    ticket_id, number = int(data.get("ticket_id", 0)), str(data.get("number", ""))
    report = await reports.add_location(ctx.rt.db, ticket_id, ctx.resident.id, ctx.extra["place_later"], ctx.text,
                                        ctx.rt.clock.now(),
                                        rules=rules_for(ctx.rt.settings.data_dir))
    if report is None:
        return TEXTS["update_closed"].format(number=number)
    await _reported(ctx, ticket_id, number)
    if not data.get("where_missing"):  # said again, more exactly or corrected: say it back
        return TEXTS["where_said"].format(place=places.label_of(ctx.extra["place_later"]), number=number)
    return TEXTS["where_kept"].format(number=number)


def _location_later(ctx: Context) -> bool:
    data = _mark_data(ctx)
    return data is not None and bool(data.get("where_missing"))


@router.message(Func(_location_later, phase=PHASE_STATE, when=_after_report) & MsgType("location"))
async def location_later(ctx: Context) -> str:
    """A WeChat location sent a message after the place was asked: the emergency's place."""
    assert ctx.resident is not None
    data = ctx.extra["mark"][1]
    ticket_id, number = int(data.get("ticket_id", 0)), str(data.get("number", ""))
    item = attachment(ctx)
    await reports.attach(ctx.rt.db, ticket_id, ctx.resident.id, item, ctx.rt.clock.now())
    if await reports.add_location(ctx.rt.db, ticket_id, ctx.resident.id, places.from_location(item),
                                  str(item.get("label") or ""), ctx.rt.clock.now(),
                                  rules=rules_for(ctx.rt.settings.data_dir)) is None:
        return TEXTS["update_closed"].format(number=number)
    await _reported(ctx, ticket_id, number)
    return TEXTS["where_kept"].format(number=number)


def _asked_after(ctx: Context) -> bool:
    """"燃气公司的人来了没有" right after the emergency's registration: asked about it, not news."""
    mark, text = ctx.extra.get("mark"), ctx.text
    if not mark or mark[0] != REPORTED or not text or len(text) > 30 or ctx.resident is None or chases(text):
        return False  # 怎么还没人来: a chase, answered by the reports' follow-up
    asked = ASKED.search(text) or places.QUESTION.search(text)
    return bool(asked and (UPDATE.search(text) or PROGRESS.search(text)))


@router.message(Func(_asked_after, phase=PHASE_STATE, when=_text_after_report))
async def asked_after(ctx: Context) -> str:
    """The emergency's progress, the question noted on it for the duty staff (a chase)."""
    assert ctx.resident is not None
    data = ctx.extra["mark"][1]
    ticket_id, number, now = int(data.get("ticket_id", 0)), str(data.get("number", "")), ctx.rt.clock.now()
    rows = await reports.by_numbers(ctx.rt.db, ctx.resident.id, [number], now)
    await reports.followed_up(ctx.rt.db, ctx.resident.id, [ticket_id], ctx.text, now)
    await _reported(ctx, ticket_id, number, where_missing=bool(data.get("where_missing")))
    return "\n".join([*(reports_flow.line(r) for r in rows), reports_flow.urged_urgent(ctx, rows, ticket_id)])


# ------------------------------------------------------------------- the place, told afterwards
def _ticket(ctx: Context) -> tuple[int, str] | None:
    ticket_id, number = ctx.fsm.data.get("ticket_id"), ctx.fsm.data.get("number")
    return (ticket_id, str(number)) if isinstance(ticket_id, int) and ctx.resident is not None else None


@router.message(State(WHERE_STATE) & MsgType("location"))
async def where_location(ctx: Context) -> str:
    found = _ticket(ctx)
    await ctx.fsm.clear()
    if found is None or ctx.resident is None:
        return TEXTS["ask_where"]
    item = attachment(ctx)
    await reports.attach(ctx.rt.db, found[0], ctx.resident.id, item, ctx.rt.clock.now())
    await reports.add_location(ctx.rt.db, found[0], ctx.resident.id, places.from_location(item),
                               str(item.get("label") or ""), ctx.rt.clock.now(),
                               rules=rules_for(ctx.rt.settings.data_dir))
    phoned = bool(ctx.fsm.data.get("phoned"))
    await _reported(ctx, found[0], found[1])
    return _place_kept(found[1], phoned)


def _place_kept(number: str, phoned: bool) -> str:
    """The place is kept; a phone is asked for when the report has none (the duty staff may call)."""
    return TEXTS["where_kept"].format(number=number) + ("" if phoned else "\n" + TEXTS["ask_phone"])


@router.message(State(WHERE_STATE) & MsgType("image", "video", "shortvideo", "voice"))
async def where_media(ctx: Context) -> HandlerResult | Pass:
    found = _ticket(ctx)
    if found is None or ctx.resident is None:
        await ctx.fsm.clear()
        return TEXTS["ask_where"]
    item = await attachments.keep(ctx.rt.media, attachment(ctx))
    await reports.attach(ctx.rt.db, found[0], ctx.resident.id, item, ctx.rt.clock.now())
    if ctx.inbound.msg_type == "voice" and ctx.text:
        return await where_text(ctx)
    return TEXTS["kept"].format(number=found[1]) + "\n" + TEXTS["ask_where"]


def _chasing(text: str) -> bool:
    """查进度, 我报的那个咋样了, 快点来: about the emergency just registered, not where it is."""
    return bool(STATUS_RE.search(text) or OWN_REPORT.search(text) or (len(text) <= 30 and chases(text))
                or (len(text) <= 12 and PROGRESS.search(text)))


def _advice_again(ctx: Context) -> str:
    """我不会弄 怎么办啊 while the place is asked: whom to call and what to do, again, then the place."""
    rules = hazards.rules_for(ctx.rt.settings.data_dir)
    hazard = next((h for h in rules.hazards if h.id == ctx.fsm.data.get("hazard")), None)
    lines = [TEXTS["calm"]]
    if hazard is not None:
        lines += [hazard.first, hazard.advice]
    return "\n".join([*lines, TEXTS["still_where"]])


async def _chased(ctx: Context, ticket_id: int, number: str) -> str:
    """查进度 or 快点来人 while the place is asked: the answer (the reports' progress; an urge noted on
    the emergency for the duty staff), then the place asked again — without it nobody can come."""
    assert ctx.resident is not None
    data, text, now = dict(ctx.fsm.data), ctx.text, ctx.rt.clock.now()
    lines: list[str] = []
    rows = await reports.by_numbers(ctx.rt.db, ctx.resident.id, [number], now)
    if STATUS_RE.search(text):
        listed = await reports_flow.status(ctx)  # every open report, the emergency among them
        lines.append(listed if isinstance(listed, str) else "")
    else:
        lines.extend(reports_flow.line(r) for r in rows)
    if AGAIN.search(text):
        await reports.followed_up(ctx.rt.db, ctx.resident.id, [ticket_id], text, now)
        lines.append(reports_flow.urged_urgent(ctx, rows, ticket_id))
    await ctx.fsm.clear()
    await ctx.fsm.set(WHERE_STATE, **data)  # still waiting for the place
    lines.append(TEXTS["still_where"])
    return "\n".join(lines)


@router.message(State(WHERE_STATE))
async def where_text(ctx: Context) -> HandlerResult | Pass:
    found = _ticket(ctx)
    text = ctx.text
    if found is None or ctx.resident is None or not text:
        await ctx.fsm.clear()
        return TEXTS["ask_where"] if found is None else TEXTS["where_again"]
    if is_cancel(text):
        await ctx.fsm.clear()
        return TEXTS["cancel_kept"].format(number=found[1])
    if not places.meaningful(text):
        return TEXTS["where_again"]  # "？" or an emoji: still waiting for the place
    ctx.extra["contact"] = phone_alone(text)
    if ctx.extra["contact"] is not None:  # a number to call back, not the place: kept, and still asked
        await ctx.fsm.set(WHERE_STATE, phoned=True)
        return await _add_contact(ctx, found[0], found[1]) + "\n" + TEXTS["where_again"]
    if declines_phone(text):  # 不留: nothing more is asked; the place is still welcome
        await _reported(ctx, found[0], found[1], where_missing=True)
        return TEXTS["no_place"].format(number=found[1])
    place = places.answer(text)
    if place is None:
        if _chasing(text):
            return await _chased(ctx, found[0], found[1])
        if HELPLESS.search(text) and places.from_text(text) is None:
            return _advice_again(ctx)
        if UPDATE.search(text) and places.from_text(text) is None and not places.QUESTION.search(text):
            # "我已经把窗户打开了": news for the duty staff; the place is still asked
            await reports.add_update(ctx.rt.db, found[0], ctx.resident.id, text, ctx.rt.clock.now())
            return TEXTS["update_kept"].format(number=found[1]) + "\n" + TEXTS["still_where"]
        if (places.QUESTION.search(text) or CALENDAR.match(text)
                or ctx.intent not in (None, "complaint", "fallback")):
            # Something else: answered by its own flow, after a word that the emergency stands
            # without its place; a place told next still joins it (the mark left after the answer).
            await ctx.fsm.clear()
            ctx.extra[MARK_AFTER] = (REPORTED, {"ticket_id": found[0], "number": found[1], "where_missing": True})
            return Pass(note=TEXTS["place_pending"].format(number=found[1]))
        place = {"text": text[:200]}  # in an emergency any description of the place helps
    phoned = bool(ctx.fsm.data.get("phoned"))
    await reports.add_location(ctx.rt.db, found[0], ctx.resident.id, place, text, ctx.rt.clock.now(),
                               rules=rules_for(ctx.rt.settings.data_dir))
    await _reported(ctx, found[0], found[1])
    return _place_kept(found[1], phoned)
