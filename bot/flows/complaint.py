"""New reports become tickets: what happened, where, photos and (for visits) a phone; then the
ticket number and the promised time.

Each answer is checked: a place must look like a place, a phone like a phone. An answer that is
something else — calling it off (算了, 不报了, 不用了, 先不报了), another request or a question —
ends the report or is asked again; it is never stored as the answer. A resident repeating their
own open report is told it is already there (and their words join it) instead of getting a second
ticket. Emergencies (``flows/urgent.py``) and questions about earlier reports (``flows/reports.py``)
are answered before any step here. Tickets are made and changed by ``services/reports.py`` only.
"""

from __future__ import annotations

import re
from typing import Any

from bot.flows.handoff import asks_for_person, request_person
from bot.flows.media import attachment
from bot.flows.reports import FILED, FOLLOWED, OWN_REPORT, add_to_report, urges_only
from bot.flows.reports import THING as _THING
from bot.flows.reports import URGENT as URGENT_REPORTED
from bot.flows.reports import line as report_line
from bot.handler.choices import is_cancel, numbered, parse_choice, parse_phone, phone_alone
from bot.handler.context import Context
from bot.handler.middlewares import MARK, OPTIONAL_STEPS, PARKED
from bot.handler.router import (
    PHASE_INTENT,
    PHASE_MENU,
    PHASE_STATE,
    Func,
    Intent,
    MsgType,
    Pass,
    Router,
    State,
)
from bot.language import intents_registry
from bot.logmask import mask_phones
from bot.messages import HandlerResult
from bot.services import attachments, places, reports
from bot.services.dispatch import Rules, rules_for
from bot.services.routing import route
from bot.services.tickets import CHINA, NewTicket

router = Router("complaint")

TEXTS = {
    "ask_what": "请说说遇到了什么问题，比如“3号楼2单元楼道灯不亮”，也可以发照片。",
    "ask_what_again": "还没听明白是什么问题，请用一句话说说，比如“5号楼门口路灯不亮”。不报了回复“算了”。",
    "ask_where": "请告诉我具体位置：几号楼几单元，或者发送微信位置。",
    "ask_building": "请告诉我在{estate}的几号楼几单元，或者发送微信位置。",
    "ask_where_again": "还需要知道具体在哪里：比如“3号楼2单元”“小区东门”，或者发送微信位置。不报了回复“算了”。",
    "ask_phone": "这类问题工作人员可能要上门或打电话了解情况，请留一个联系电话。不方便留的话回复“不留”。",
    "place_corrected": "好的，位置改为{place}。",
    "detail_kept": "好的，已记到您的反映里。",
    "circumstances_kept": "明白，您的情况已记到反映里，工作人员会照顾到。方便的话留一个联系电话（家里人的也行），"
                          "上门前会先打电话跟您约；不方便留就回复“不留”。",
    "bad_phone": "没有认出电话号码，请再发一次（如 13812345678），或回复“不留”。",
    "media_kept": "收到您的{what}了，已附在您的反映里。还有要补充的可以继续发。",
    "voice_kept": "收到您的语音，已附在您的反映里。方便的话也可以打字说明一下。",
    "media_failed": "{what}没能保存下来，您可以稍后再发一次，文字说明也可以。",
    "link_kept": "收到您分享的链接，已附在您的反映里。",
    "location_kept": "收到您的位置：{label}。",
    "media_ask": "收到您的{what}了。请说说是什么问题、在哪个位置，比如“3号楼门口路灯不亮”。不是要反映问题的话回复“算了”。",
    "location_ask": "收到您的位置：{label}。这里有什么问题需要反映？请说说情况，比如“路灯不亮”“垃圾没人清”。",
    "created": "已为您登记诉求，编号 {number}。我们会在{promise}内处理并回复您，可以随时发“查进度”查看。",
    "created_triage": "已为您登记诉求，编号 {number}。工作人员会尽快分派，{promise}内给您答复，可以随时发“查进度”查看。",
    "neighbours": "附近邻居也反映过类似问题，我们会一并处理。",
    "repeat": "您在{when}已反映（{number}），我们会一起处理。目前：{status}。",
    "cancelled": "好的，已取消，这次没有登记。有需要随时再找我。",
    "nothing": "好的。现在没有正在办的事，有需要随时找我。",
    "switched": "刚才的问题先不登记了，需要时再告诉我。",
    "parked": "刚才反映的问题还没提交，要继续吗？回复“继续”或“不要了”。",
    "resumed": "好的，接着登记刚才的问题：{what}",
    "parked_dropped": "好的，刚才的问题不登记了，需要时再告诉我。",
    # Two reports put aside, one after the other: both kept, the newer taken up first.
    "parked_two": "刚才反映的{count}个问题还没提交：{whats}。要继续吗？回复“继续”一个一个登记，或回复“不要了”。",
    "parked_one": "还有一个问题没提交：{what}。要继续吗？回复“继续”或“不要了”。",
    "expired": "您刚才反映的问题因为太久没有回复，已经先取消了。需要的话请重新说一下情况。",
    "contact_kept": "好的，已把联系电话 {phone} 记到诉求 {number} 上，工作人员需要时会联系您。",
    "media_added": "收到，{what}已补充到诉求 {number}，办理人员会看到。",
    "place_added": "好的，位置{place}已补充到诉求 {number}，办理人员会看到。",
    "place_fixed": "好的，诉求 {number} 的位置已改为{place}，办理人员会看到。",
    "place_which": "您有几件诉求在办，要把哪一件的位置改为{place}？回复数字：\n{lines}",
    "contact_none": "好的，不留也没关系，诉求 {number} 已经登记了。",
    "contact_late": "收到。诉求 {number} 已经办结了，如果问题还在，请直接说说情况。",
    "anonymous_ok": "可以的，不留电话也能反映，我们会为您保密。",
    "recurring_kept": "明白，反复出问题确实闹心。已补充到诉求 {number}，会提醒办理人员查清原因。",
    "privacy_added": "好的，已在诉求 {number} 上注明为您保密，办理人员不会向对方透露您的信息。",
}

NO_PHONE = re.compile(r"^(?:不留|不用留|不用|不方便|不需要|不想留|没有|没电话|没有电话|不给|保密|算了不留|不留了|不要)[了吧啊呀。.！!]*$")
# Thanks at the phone question ("好的谢谢", "麻烦了"): no number given, the report is filed without one
# (a number sent after it still becomes its contact). A bare "嗯" is asked again: a number may follow.
NO_PHONE_NOD = re.compile(r"^(?:好的|好|行|嗯|嗯嗯|知道了)?[，,、]?(?:谢谢|谢了|多谢|谢谢你|谢谢您|辛苦了|辛苦你们了|麻烦了|麻烦你们了)[了吧啊呀。.！!~～]*$")
# No phone, said with a reason (俺不会留电话, 我没有手机, 号码记不住了).
NO_PHONE_SAID = re.compile(
    r"(?:不会|不想|不方便|不用|不愿意|不能|没法|不好)留|没(?:有)?(?:电话|手机)|(?:记不住|记不清|不记得|忘了)(?:号码|电话|手机号)?"
)
# Words that only say "I want to report" without saying what.
_GENERIC = re.compile(r"匿名|实名|我要|我想|要|想|投诉|反映|举报|报修|报个|一下|个|问题|情况|你好|您好|请问|有|事|的|了|啊|呀|吗|找|帮我|我")
# What a problem is described with, when the intent engine does not say "complaint".
PROBLEM = re.compile(
    r"坏|不亮|不灵|漏|渗|堵|吵|噪|脏|臭|乱|没人|破|塌|裂|掉|堆|占|扰|违|断|积水|垃圾|损|松|歪|倒了|不通|不热|"
    r"没水|没电|停电|停水|不能用|不好用|故障|问题|投诉|举报|反映|报修|维修|太黑|黑乎乎|危险|隐患|蚊子|虫|老鼠|"
    r"野狗|流浪|噪音|装修|油烟|树枝|井盖|路灯|电梯|楼道|下水|水管|暖气|燃气|物业|停车|飞线|充电"
)
# Other requests a step answer can turn out to be (the rest are found by the intent engine).
_OTHER = re.compile(r"积分|优惠券|商城|兑换|课程|报名|预约|夜校|转人工|人工|真人|客服|工作人员|查进度|我的诉求")
MEDIA_KINDS = ("image", "video", "shortvideo")
# Reports about people or fees, not a place: nobody is sent anywhere, so the place is not asked.
# So too pay, pensions, insurance, jobs, exams and papers (退休金, 医保报销, 招聘, 证明): which
# building would not help anyone handle them.
NO_PLACE = re.compile(
    r"态度|服务.{0,2}差|不作为|工作人员|网格员|物业费|收费|乱收费|办事效率|推诿|不回复|不理人"
    r"|公开|公示|明细|账目|维修基金|业委会|业主大会|换物业|选聘"
    r"|退休|养老金|养老保险|社保|医保|报销|合作医疗|新农合|公积金|工资|加班费|绩效|编制|招聘|职称|考试|招生"
    r"|政策|待遇|补贴|补助|低保|学籍|户口|婚育|证明|征地|补偿款|贷款|储蓄卡|银行卡|冻结"
    r"|太贵|价格|涨价|缺斤|短斤|宰客"  # a shop's prices: the shop, not a building
)
STEP_STATES = ("complaint:what", "complaint:where", "complaint:phone")


def rules(ctx: Context) -> Rules:
    return rules_for(ctx.rt.settings.data_dir)


def promise(hours: float) -> str:
    return f"{hours:g}小时" if hours < 24 else f"{hours / 24:g}天"


def describes(text: str) -> bool:
    """More than an address or "我要投诉": a description a ticket can start from. A correction of a
    place ("不对 是7号楼") is none either."""
    rest = re.sub(r"\W+", "", _GENERIC.sub("", places.strip_address(_CORRECTING.sub("", text))))
    return len(rest) >= 2 and _PARTY.fullmatch(rest) is None


# Whom a report is about, said alone (我要投诉物业, 反映一下楼上): who, not yet what.
_PARTY = re.compile(r"(?:物业|物业公司|物业经理|社区|居委会|村委会|网格员|城管|业委会|邻居|楼上|楼下|对门|隔壁|"
                    r"商户|商家|超市|饭店|开发商|房东|保安|保洁|环卫|工作人员|他们|她们)+(?:们|家|的人)?")


# What puts a place right, in front of it: 不对 是7号楼, 说错了 应该是5号楼.
_CORRECTING = re.compile(r"^(?:不对|不是|错了|说错了|搞错了|弄错了|更正一下|更正)+[\s,，。.!！、]*(?:是|应该是|在)?")


def _is_report(ctx: Context) -> bool:
    """The text reports a problem: the engine says so, or it names one."""
    raw = getattr(ctx.understanding, "raw_intent", None)
    return ctx.intent == "complaint" or raw == "complaint" or bool(PROBLEM.search(ctx.text))


def _elsewhere(ctx: Context) -> bool:
    """The answer is another request or a question, not the answer to this step."""
    text = ctx.text
    if not places.meaningful(text):
        return False  # "？？？" or an emoji: asked again, not taken for another request
    if _OTHER.search(text) or places.QUESTION.search(text):
        return True
    return ctx.intent not in (None, "complaint", "smalltalk", "fallback") and ctx.decision == "accept"


def _intro(ctx: Context) -> list[str]:
    note = ctx.extra.pop("complaint_note", None)
    return [note] if note else []


def _local(dt: Any) -> str:
    local = dt.astimezone(CHINA)
    return f"{local.month}月{local.day}日{local:%H:%M}"


# ---------------------------------------------------------------------------------- the steps
async def _start(ctx: Context, text: str) -> str:
    """A description arrived: collect it, unless it is the resident's own open report again (looked
    for with the ticket's creation when nothing needs asking: one transaction)."""
    data = ctx.fsm.data
    kept = list(data.get("attachments", []))
    where, estate = _where_told(text, data.get("c_where"), kept, ctx)
    routed = await route(ctx.rt.settings.data_dir, text)
    await ctx.fsm.set(
        "complaint:collect",
        c_text=text,
        c_category=routed.category,
        c_conf=routed.confidence,
        c_where=where,
        c_estate=estate or data.get("c_estate"),
        c_phone=parse_phone(text),
        attachments=kept,
        c_asked_where=bool(data.get("c_asked_where")) or bool(NO_PLACE.search(text)),
    )
    return await _proceed(ctx, first=True)


def _where_told(text: str, known: Any, kept: list[dict[str, Any]], ctx: Context) -> tuple[Any, str | None]:
    """Where the report is, and the estate named when its building is still needed. A building
    number, a location sent, a shared place of the estate, then a place named in words (a road, a
    village, a school: nobody asks 几号楼 of those), else the resident's bound building. An estate
    named for something inside a building (幸福小区 楼道灯坏了) is no place yet: the building is
    asked, the estate kept to go with the answer."""
    spoken = places.named(text)
    told = places.from_text(text)
    if told is not None:
        return places.within(spoken, told), None
    where = known or places.from_attachments(kept) or places.landmark(text)
    if where:
        return where, None
    if spoken is not None and places.needs_building(spoken, text):
        return places.of_resident(ctx.resident), str(spoken["text"])
    return spoken or places.of_resident(ctx.resident), None


def _question(ctx: Context) -> str | None:
    """What must be asked before the ticket can be made: the place, the phone, or nothing."""
    data = ctx.fsm.data
    if not data.get("c_where") and not data.get("c_asked_where"):
        return "where"
    if rules(ctx).needs_visit(data.get("c_category")) and not data.get("c_phone") and not data.get("c_asked_phone"):
        return "phone"
    return None


async def _proceed(ctx: Context, first: bool = False) -> str:
    """Ask what is missing, or make the ticket. ``first``: the description has just arrived, so it
    may be the resident's own open report again, which then gets these words instead."""
    data = ctx.fsm.data
    question = _question(ctx)
    if question is not None and first and ctx.resident is not None and not reports.never_reported(ctx.resident):
        where = data.get("c_where") or {}
        earlier = await reports.own_repeat(ctx.rt.db, ctx.resident.id, str(data.get("c_text") or ""),
                                           where.get("building"), rules(ctx))
        if earlier is not None:
            stored = [await attachments.keep(ctx.rt.media, a) for a in data.get("attachments", [])]
            await reports.add_repeat(ctx.rt.db, earlier.id, ctx.resident.id, str(data.get("c_text") or ""), stored,
                                     ctx.rt.clock.now())
            await ctx.fsm.clear()
            return _repeated(_intro(ctx), earlier)
    if question == "where":
        await ctx.fsm.set("complaint:where", c_asked_where=True, c_reasks=0)
        estate = data.get("c_estate")
        ask = TEXTS["ask_building"].format(estate=estate) if estate else TEXTS["ask_where"]
        return "\n".join([*_intro(ctx), ask])
    if question == "phone":
        await ctx.fsm.set("complaint:phone", c_asked_phone=True, c_reasks=0)
        return "\n".join([*_intro(ctx), TEXTS["ask_phone"]])
    return await _file(ctx, unless_repeated=first)


def _repeated(intro: list[str], earlier: reports.Report) -> str:
    from bot.flows.reports import describe

    return "\n".join([*intro, TEXTS["repeat"].format(
        when=_local(earlier.created_at), number=earlier.number, status=describe(earlier))])


def _filed(intro: list[str], report: reports.Report) -> str:
    hours = (report.deadline - report.created_at).total_seconds() / 3600 if report.deadline else 168
    key = "created_triage" if report.department is None and report.assignee is None else "created"
    out = [*intro, TEXTS[key].format(number=report.number, promise=promise(hours))]
    if report.neighbours:
        out.append(TEXTS["neighbours"])
    return "\n".join(out)


async def _file(ctx: Context, unless_repeated: bool = False) -> str:
    """The ticket (or, ``unless_repeated``, the resident's own open report it repeats: see
    ``reports.create``), made in the reply's transaction (``ctx.reply_in``): the ticket exists
    exactly when the answer giving its number is stored. The conversation ends either way."""
    data = ctx.fsm.data
    stored = [await attachments.keep(ctx.rt.media, a) for a in data.get("attachments", [])]
    where = data.get("c_where") or {}
    new = NewTicket(
        text=str(data.get("c_text") or ""),
        resident=ctx.resident,
        attachments=stored,
        location=places.location_of(where),
        building=where.get("building"),
        unit=where.get("unit"),
        room=where.get("room"),
        category=data.get("c_category"),
        confidence=data.get("c_conf"),
        urgency="normal",
        contact_phone=data.get("c_phone"),
        source_key=ctx.inbound.key,
    )
    table, now, intro = rules(ctx), ctx.rt.clock.now(), _intro(ctx)
    await ctx.fsm.clear()

    def write(connection: Any) -> str:
        report = reports.create_in(connection, new, table, now, unless_repeated=unless_repeated)
        if report.repeated:
            return _repeated(intro, report)
        # A phone sent next is this report's contact, a photo joins it, a chase urges it.
        ctx.fsm.move(MARK + FILED, ticket_id=report.id, number=report.number)
        return _filed(intro, report)

    return ctx.reply_in(write)


async def _reask(ctx: Context, again: str) -> str | None:
    """The step's question once more; None the second time (the flow goes on without the answer)."""
    reasks = int(ctx.fsm.data.get("c_reasks", 0))
    if reasks >= 1:
        return None
    await ctx.fsm.update(c_reasks=reasks + 1)
    return TEXTS[again]


async def _leave(ctx: Context) -> Pass:
    """The resident asks something else in the middle of a report: that is answered, and a report
    already told (or shown in a photo) is put aside, not dropped (``middlewares.recall``): the
    answer ends with "要继续吗？" and 继续, or the missing answer itself, takes it up again."""
    parked = park(ctx)
    await ctx.fsm.clear()
    return Pass() if parked else Pass(TEXTS["switched"])


def park(ctx: Context) -> bool:
    """The report being told (at a step, already told or shown in a photo) put aside in
    ``ctx.extra[PARKED]`` (see :func:`_leave`); the state is the caller's to change. False when
    there is none."""
    state, data = ctx.fsm.state, {k: v for k, v in ctx.fsm.data.items() if k != PARKED}
    if state not in STEP_STATES or not (data.get("c_text") or data.get("attachments")):
        return False
    parked: dict[str, Any] = {"state": state, "data": data, "reminder": TEXTS["parked"],
                              "dropped": TEXTS["switched"]}
    earlier = _parked_draft(ctx)  # a report put aside before this one was begun: kept under it
    if earlier is not None:
        parked["earlier"] = {k: v for k, v in earlier.items() if k != "reminded"}
        told = _told_chain(parked)
        parked["reminder"] = TEXTS["parked_two"].format(count=len(told), whats="、".join(told))
    ctx.extra[PARKED] = parked
    return True


# --------------------------------------------------------------------- a report put aside
_RESUME = re.compile(
    r"^(?:那|那就|嗯|嗯嗯|哦|好|好的|行|可以|是|是的|对|要|要的|接着|继续|提交|登记|报)*"
    r"(?:继续|接着|要|好|好的|行|可以|是|是的|对|嗯|提交|登记|报|继续报|继续登记|接着报|接着说|继续说|报吧)"
    r"(?:吧|啊|呀|的|了|吧谢谢|谢谢|报修|反映|登记|提交)*$"
)
_DECLINE = re.compile(r"^(?:那|那就|哦|嗯)*(?:不|不要|不用|不了|不继续|不提交|不登记|先不|先不用|不报)(?:了|吧|啦|谢谢)*$")


def _told(data: dict[str, Any]) -> str:
    told = str(data.get("c_text") or "")
    return f"“{told[:20]}{'…' if len(told) > 20 else ''}”" if told else "您发的照片"


def _told_chain(parked: dict[str, Any]) -> list[str]:
    """What each report put aside said, the newest first."""
    out: list[str] = []
    while isinstance(parked, dict):
        out.append(_told(dict(parked.get("data") or {})))
        parked = parked.get("earlier")  # type: ignore[assignment]
    return out


def _earlier(parked: dict[str, Any]) -> dict[str, Any] | None:
    """The report put aside before ``parked``, to be reminded of once ``parked`` is taken up or dropped."""
    earlier = parked.get("earlier")
    if not isinstance(earlier, dict):
        return None
    earlier = dict(earlier)
    if isinstance(earlier.get("earlier"), dict):
        told = _told_chain(earlier)
        earlier["reminder"] = TEXTS["parked_two"].format(count=len(told), whats="、".join(told))
    else:
        earlier["reminder"] = TEXTS["parked_one"].format(what=_told(dict(earlier.get("data") or {})))
    return earlier


def _parked_draft(ctx: Context) -> dict[str, Any] | None:
    parked = ctx.extra.get(PARKED)
    if not isinstance(parked, dict) or parked.get("state") not in STEP_STATES:
        return None
    return parked


def _answers_parked(ctx: Context) -> bool:
    """With a report put aside: 继续 (in the middle of another step too, which it then ends), and
    with no other step going on also 好 / 不要了, or the answer the report was waiting for (the place,
    the phone) said straight away."""
    parked = _parked_draft(ctx)
    text = ctx.text
    if parked is None or not text or ctx.inbound.msg_type not in ("text", "voice"):
        return False
    compact = re.sub(r"[\s,，.。!！~～、…]+", "", text)
    if len(compact) <= 10 and ("继续" in compact or "接着" in compact):
        ctx.extra["parked_answer"] = "resume"
        return True
    if ctx.fsm.state is not None and ctx.fsm.state not in OPTIONAL_STEPS:
        return False  # 好, 不要了, a number: the other step's
    if _RESUME.match(compact):
        ctx.extra["parked_answer"] = "resume"
    elif _DECLINE.match(compact) or is_cancel(text):
        ctx.extra["parked_answer"] = "drop"
    elif parked["state"] == "complaint:where" and places.answer(text) is not None and len(places.beyond_place(text)) < 4:
        ctx.extra["parked_answer"] = "answer"
    elif parked["state"] == "complaint:phone" and (phone_alone(text) or NO_PHONE.match(compact)):
        ctx.extra["parked_answer"] = "answer"
    else:
        return False
    return True


@router.message(Func(_answers_parked, phase=PHASE_STATE, when=lambda p: p.text))
async def parked_answer(ctx: Context) -> HandlerResult | Pass:
    parked = ctx.extra.pop(PARKED)
    how = ctx.extra.pop("parked_answer")
    earlier = _earlier(parked)
    if earlier is not None:
        ctx.extra[PARKED] = earlier  # still put aside (middlewares.recall): reminded of after this one
    if how == "drop":
        return TEXTS["parked_dropped"]
    state, data = str(parked["state"]), dict(parked.get("data") or {})
    await ctx.fsm.clear()  # another step left standing (a list shown) ends here
    await ctx.fsm.set(state, **data)
    if how == "answer":
        return await STEPS[state](ctx)
    what = _told(data)
    question = {"complaint:what": "ask_what", "complaint:where": "ask_where", "complaint:phone": "ask_phone"}[state]
    return TEXTS["resumed"].format(what=what) + "\n" + TEXTS[question]


# 算了 / 不用了 … leading a message that goes on about something else (算了 还是换超市的券吧, 不用了 我去问问
# 物业吧): the resident changed their mind; never a place or a description of this report.
_CALLED_OFF_THEN = re.compile(r"^(?:那|那就|哦|嗯|好|唉)?(?:算了|不用了|不报了|不要了|不弄了|不说了|不反映了)(?:吧|啊|呀)?"
                              r"[\s,，.。!！~～、]*(?P<rest>\S.*)$")


def _calls_off(ctx: Context) -> bool:
    """算了 / 不报了 in the flow; at the phone question 不用了 / 不要 answer it (no phone), they call nothing off.
    Before the phone question, 算了 … with something else after it calls the report off too."""
    if ctx.fsm.state == "complaint:phone" and NO_PHONE.match(re.sub(r"\s+", "", ctx.text)):
        return False
    if is_cancel(ctx.text):
        return True
    then = _CALLED_OFF_THEN.match(ctx.text.strip())
    if then is None or ctx.fsm.state not in ("complaint:what", "complaint:where"):
        return False
    rest = then["rest"]
    return places.from_text(rest) is None and places.landmark(rest) is None  # "算了 就3号楼吧" still answers


@router.message(State("complaint:*"), Func(_calls_off))
async def cancel(ctx: Context) -> HandlerResult | Pass:
    await ctx.fsm.clear()
    if not is_cancel(ctx.text) and _elsewhere(ctx):
        return Pass(TEXTS["parked_dropped"])  # 算了 我问问积分: that is answered after this word
    return TEXTS["cancelled"]


# ---------------------------------------------------------------------------- media in the flow
async def _keep(ctx: Context, item: dict[str, Any]) -> dict[str, Any]:
    await ctx.fsm.update(attachments=attachments.added(list(ctx.fsm.data.get("attachments", [])), item))
    return item


@router.message(State("complaint:*") & MsgType(*MEDIA_KINDS))
async def media(ctx: Context) -> str:
    item = await _keep(ctx, await attachments.keep(ctx.rt.media, attachment(ctx)))
    what = "图片" if ctx.inbound.msg_type == "image" else "视频"
    return TEXTS["media_failed" if item.get("download_error") else "media_kept"].format(what=what)


@router.message(State("complaint:*") & MsgType("voice"))
async def voice(ctx: Context) -> HandlerResult | Pass:
    """A voice message is kept as an attachment (with its transcript); recognised text is also the
    answer to the current step, as if typed."""
    item = await _keep(ctx, await attachments.keep(ctx.rt.media, attachment(ctx)))
    if not ctx.text:
        return TEXTS["media_failed"].format(what="语音") if item.get("download_error") else TEXTS["voice_kept"]
    if is_cancel(ctx.text):
        return await cancel(ctx)
    step = STEPS.get(ctx.fsm.state or "")
    return await step(ctx) if step is not None else await _proceed(ctx)


@router.message(State("complaint:*") & MsgType("location"))
async def location_in_flow(ctx: Context) -> str:
    item = attachment(ctx)
    place = places.from_location(item)
    await ctx.fsm.update(attachments=attachments.added(list(ctx.fsm.data.get("attachments", [])), item),
                         c_where=place, c_asked_where=True)
    label = item.get("label") or "已记录"
    if ctx.fsm.state == "complaint:what":
        return TEXTS["location_ask"].format(label=label)
    if ctx.fsm.state == "complaint:where":
        ctx.extra["complaint_note"] = TEXTS["location_kept"].format(label=label)
        return await _proceed(ctx)
    return TEXTS["location_kept"].format(label=label)


@router.message(State("complaint:what") & MsgType("text"))
async def what(ctx: Context) -> HandlerResult | Pass:
    text = ctx.text
    if text and describes(text) and _is_report(ctx):
        whom = str(ctx.fsm.data.get("c_whom") or "")  # 我要投诉物业, then what: both on the ticket
        return await _start(ctx, f"{whom}；{text}" if whom else text)
    if text and _elsewhere(ctx):
        return await _leave(ctx)
    if text and ctx.fsm.data.get("c_offered"):
        # We asked after a photo or location sent on its own; this is about something else.
        await ctx.fsm.clear()
        return Pass()
    again = await _reask(ctx, "ask_what_again")
    if again is None:
        await ctx.fsm.clear()
        return TEXTS["cancelled"]
    return again


@router.message(State("complaint:where") & MsgType("text"))
async def where(ctx: Context) -> HandlerResult | Pass:
    text = ctx.text
    place = places.answer(text) if text else None
    if place is not None:
        if len(places.beyond_place(text)) >= 4 and describes(text):
            # A fuller description with the place ("5号楼门口垃圾好几天没人清了"): keep all of it.
            before = str(ctx.fsm.data.get("c_text") or "")
            await ctx.fsm.update(c_text=text if not describes(before) else f"{before}；{text}")
        estate = ctx.fsm.data.get("c_estate")
        await ctx.fsm.update(c_where=places.within({"text": estate, "kind": "estate"}, place) if estate else place)
        return await _proceed(ctx)
    if text and asks_for_person(ctx):
        return await request_person(ctx)  # 转人工 while the place is asked: queued, this report kept
    if text and _elsewhere(ctx):
        return await _leave(ctx)
    if text and describes(text):  # more about the problem, still no place: keep it, ask again
        await ctx.fsm.update(c_text=f"{ctx.fsm.data.get('c_text') or ''}；{text}".strip("；"))
    again = await _reask(ctx, "ask_where_again")
    return again if again is not None else await _proceed(ctx)


@router.message(State("complaint:phone") & MsgType("text"))
async def phone(ctx: Context) -> HandlerResult | Pass:
    text = ctx.text
    said = re.sub(r"\s+", "", text)
    if NO_PHONE.match(said) or NO_PHONE_NOD.match(said) or (len(said) <= 14 and NO_PHONE_SAID.search(said)
                                                           and not re.search(r"\d", said)):
        return await _proceed(ctx)
    number = parse_phone(text)
    if number is not None:
        await ctx.fsm.update(c_phone=number)
        return await _proceed(ctx)
    told = places.from_text(text) or _landmark_alone(text)
    if told is not None and not places.QUESTION.search(text):
        # "不对，是5号楼": a correction of the place ("3单元": its unit; "东门" after 小区门口), then the
        # phone question again.
        current = ctx.fsm.data.get("c_where")
        corrected = places.refined(current if isinstance(current, dict) else None, told)
        await ctx.fsm.update(c_where=corrected)
        return TEXTS["place_corrected"].format(place=places.label_of(corrected)) + TEXTS["ask_phone"]
    if text and asks_for_person(ctx):
        return await request_person(ctx)  # 转人工 while the phone is asked: queued, this report kept
    if text and urges_only(text):
        return await _proceed(ctx)  # 能不能快点 while the phone is asked: filed now, without one
    if text and tells_circumstances(text) and not _OTHER.search(text):
        # 我都七十多了 腿脚不方便: no number, and no unreadable one either: noted on the report for
        # whoever comes, and the phone asked again, kindly (a family member's will do).
        await ctx.fsm.update(c_text=f"{ctx.fsm.data.get('c_text') or ''}；{text.strip()}".strip("；"))
        return TEXTS["circumstances_kept"]
    if text and _elsewhere(ctx):
        return await _leave(ctx)
    if text and describes(text) and (_THING.search(text) or _WRONG.search(text)):
        # More about the problem ("不对 不是楼道 是电梯门口那个灯"): kept with it, the phone asked again.
        await ctx.fsm.update(c_text=f"{ctx.fsm.data.get('c_text') or ''}；{text}".strip("；"))
        return TEXTS["detail_kept"] + TEXTS["ask_phone"]
    again = await _reask(ctx, "bad_phone")
    return again if again is not None else await _proceed(ctx)


# The resident telling their own circumstances (我都七十多了, 腿脚不方便, 一个人住, 白天要上班): their
# age, health, who lives with them, when they are at home.
_CIRCUMSTANCES = re.compile(
    r"\d{2}多?(?:岁|了)|[五六七八九]十(?:多|好几)?(?:岁|了)|岁数|年纪|上了年纪|老了|老人|老头|老太|老伴|腿|脚|腰|身体|行动|走不动|走路"
    r"|下不了楼|上不了楼|爬不动|眼睛|眼神|看不清|耳朵|耳背|听不清|不识字|不会(?:用|打字|弄)|独居|一个人住|一个人在家|自己住|瘫"
    r"|残疾|轮椅|拐杖|生病|有病|住院|刚出院|怀孕|孩子|上班|不在家|出差|外地"
)


def tells_circumstances(text: str) -> bool:
    """The text tells the resident's circumstances and asks or gives nothing else: no question, no
    phone-like digits, no request."""
    said = re.sub(r"\s+", "", text)
    return (len(said) <= 40 and _CIRCUMSTANCES.search(said) is not None and not places.QUESTION.search(said)
            and re.search(r"\d{5,}", said) is None)


STEPS = {"complaint:what": what, "complaint:where": where, "complaint:phone": phone}


@router.message(State("complaint:*"))
async def other_in_flow(ctx: Context) -> str:
    """Anything else inside the flow (a link …): kept with the report, and the step's question again."""
    if ctx.inbound.msg_type == "link":
        await _keep(ctx, attachment(ctx))
        ctx.extra["complaint_note"] = TEXTS["link_kept"]
    question = {"complaint:what": "ask_what", "complaint:where": "ask_where", "complaint:phone": "ask_phone"}
    key = question.get(ctx.fsm.state or "")
    if key is not None:
        return "\n".join([*_intro(ctx), TEXTS[key]])
    return await _proceed(ctx)


# ------------------------------------------------------------------------------ outside a flow
# A photo or video right after a report was filed (or an emergency registered) shows that report:
# it joins its ticket, not a new report asked what it shows.
def _media_after_filing(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    return mark is not None and mark[0] in (FILED, URGENT_REPORTED) and ctx.resident is not None


@router.message(MsgType(*MEDIA_KINDS), Func(_media_after_filing, when=lambda p: p.mark in (FILED, URGENT_REPORTED)))
async def media_after_filing(ctx: Context) -> HandlerResult | Pass:
    assert ctx.resident is not None
    what, data = ctx.extra["mark"]
    ticket_id, number = int(data.get("ticket_id", 0)), str(data.get("number", ""))
    item = await attachments.keep(ctx.rt.media, attachment(ctx))
    if not await reports.attach(ctx.rt.db, ticket_id, ctx.resident.id, item, ctx.rt.clock.now()):
        return await media_alone(ctx)  # not the resident's, or gone: a report of its own
    await ctx.fsm.set(MARK + what, ticket_id=ticket_id, number=number)  # more may follow
    return TEXTS["media_added"].format(what="图片" if ctx.inbound.msg_type == "image" else "视频", number=number)


@router.message(MsgType(*MEDIA_KINDS))
async def media_alone(ctx: Context) -> str:
    """A photo or video sent on its own: most likely of a problem, so ask what and where; it
    joins the report."""
    item = await attachments.keep(ctx.rt.media, attachment(ctx))
    await ctx.fsm.set("complaint:what", c_offered=True,
                      attachments=attachments.added(list(ctx.fsm.data.get("attachments", [])), item))
    return TEXTS["media_ask"].format(what="图片" if ctx.inbound.msg_type == "image" else "视频")


@router.message(MsgType("location"))
async def location(ctx: Context) -> str:
    """A location sent on its own: most likely the place of a problem, so ask what it is."""
    item = attachment(ctx)
    await ctx.fsm.set(
        "complaint:what",
        attachments=attachments.added(list(ctx.fsm.data.get("attachments", [])), item),
        c_where=places.from_location(item),
        c_asked_where=True,
        c_offered=True,
    )
    return TEXTS["location_ask"].format(label=item.get("label") or "已记录")


def _expired(ctx: Context) -> bool:
    return (ctx.fsm.expired_state or "").startswith("complaint:")


@router.message(Func(_expired, phase=PHASE_STATE))
async def expired(ctx: Context) -> str:
    await ctx.fsm.clear()
    if ctx.intent == "complaint" and ctx.text and describes(ctx.text) and not is_cancel(ctx.text):
        ctx.extra["complaint_note"] = TEXTS["expired"]
        return await _start(ctx, ctx.text)
    return TEXTS["expired"]


# Right after a report was filed (the mark FILED): a number sent next is its contact, and 不留 needs
# only a word back.
_NO_PHONE_SAID = re.compile(r"^(?:不留|不用留|不想留|没电话|没有电话|电话不留|不留电话|算了不留|不留了)[了吧啊呀。.！!]*$")


# The phone just left, put right: 电话写错了 是139…, 号码不对 应该是139…, 手机号改成139….
_PHONE_CORRECTED = re.compile(r"(?:电话|手机|号码|号).{0,4}(?:错|不对|改|换)|应该是|改成|换成|更正")


def _contact_after_filing(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != FILED or not ctx.text or mark[1].get("no_phone"):
        return False
    text = re.sub(r"\s+", "", ctx.text)
    if _NO_PHONE_SAID.match(text):
        ctx.extra["contact"] = None
        return True
    number = phone_alone(text)
    if number is None and len(text) <= 30 and _PHONE_CORRECTED.search(text):
        number = parse_phone(text)  # 电话写错了 是139…, 号码不对 应该是139…
    if number is None:
        return False  # more than a number: understood as a message of its own
    ctx.extra["contact"] = number
    return True


@router.message(Func(_contact_after_filing, phase=PHASE_STATE, when=lambda p: p.text and p.mark == FILED))
async def contact_after_filing(ctx: Context) -> str:
    data = ctx.extra["mark"][1]
    number, phone = str(data.get("number", "")), ctx.extra["contact"]
    if phone is None:
        # a chase, a photo or a detail (他家是602的) may still follow; a number no longer is its contact
        await ctx.fsm.set(MARK + FILED, **data, no_phone=True)
        return TEXTS["contact_none"].format(number=number)
    await ctx.fsm.set(MARK + FILED, **data)  # a chase or a photo may still follow
    assert ctx.resident is not None
    report = await reports.add_contact(ctx.rt.db, int(data.get("ticket_id", 0)), ctx.resident.id, phone,
                                       ctx.rt.clock.now())
    if report is None:
        return TEXTS["contact_late"].format(number=number)
    return TEXTS["contact_kept"].format(phone=mask_phones(phone), number=number)


# Right after a report was filed, a building alone ("2号楼", "在12号楼3单元") or a shared place of the
# estate ("东门", "在北门那边") says where it is more exactly (小区门口 → which door): it completes
# that report, it starts no new one; so does a correction of its building ("不对 是8号楼").
_PLACE_FILLER = re.compile(r"不对|不是|错了|说错了|搞错了|应该是|更正一下|更正|门口|楼下|楼前|楼后|楼道里?|对面|前面|后面|拐角"
                           r"|[在是就那这边儿旁附近的啊呀吧哦嗯了\s\W]")


def _landmark_alone(text: str) -> places.Place | None:
    """A shared place of the estate said alone (东门, 在北门那边), or None."""
    told = places.landmark(text) if len(text) <= 12 else None
    return told if told is not None and not _PLACE_FILLER.sub("", text.replace(told["text"], "")) else None


def _place_after_filing(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != FILED or not ctx.text or len(ctx.text) > 20 or ctx.resident is None:
        return False
    told = places.from_text(ctx.text)
    rest = places.strip_address(ctx.text)
    if told is None:
        told = places.landmark(ctx.text)
        rest = ctx.text.replace(told["text"], "") if told is not None else rest
    if told is None or places.QUESTION.search(ctx.text) or _PLACE_FILLER.sub("", rest):
        return False
    ctx.extra["place_told"] = told
    return True


@router.message(Func(_place_after_filing, phase=PHASE_STATE, when=lambda p: p.text and p.mark == FILED))
async def place_after_filing(ctx: Context) -> str:
    assert ctx.resident is not None
    data = ctx.extra["mark"][1]
    number, told = str(data.get("number", "")), ctx.extra["place_told"]
    report = await reports.add_location(ctx.rt.db, int(data.get("ticket_id", 0)), ctx.resident.id, told, ctx.text,
                                        ctx.rt.clock.now(), rules=rules_for(ctx.rt.settings.data_dir))
    if report is None:
        return TEXTS["contact_late"].format(number=number)
    await ctx.fsm.set(MARK + FILED, **data)  # a phone, a photo or a chase may still follow
    return TEXTS["place_added"].format(place=places.label_of(told), number=number)


# The place of a report put right later (我刚才报的那个 地址写错了 应该是10号楼, 地址不对 是10号楼2单元),
# the report filed just now or some messages ago: it corrects the place of the resident's report
# just filed or shown, or of their only open one; with several open and none just filed or shown,
# the resident is asked which.
_PLACE_WRONG = re.compile(r"(?:地址|位置|地点|地方|楼号|门牌号?|楼栋|几号楼|单元|房号)(?:写|说|填|报|打|搞|弄|留)?(?:错了|错|不对)"
                          r"|(?:写|说|填|报|打)错了")
_PLACE_INSTEAD = re.compile(r"应该是|应该在|改成|改为|改一下|其实是|(?:不对|错了)[\s,，。]*(?:是|在)")
PLACE_WHICH = "place_which"  # the mark of "您要改哪一件的位置？": only the next message answers it


def _place_fixed(ctx: Context) -> bool:
    text = ctx.text.strip()
    if ctx.resident is None or len(text) > 40 or not _PLACE_WRONG.search(text) or places.QUESTION.search(text):
        return False
    mark = ctx.extra.get("mark")
    # 3号楼的门牌号写错了 alone may be a report of its own: the report put right is named or just shown.
    if not (mark and mark[0] in (FILED, FOLLOWED, URGENT_REPORTED)) and not OWN_REPORT.search(text) \
            and not _PLACE_INSTEAD.search(text):
        return False
    told = places.from_text(text)
    if told is None:
        return False
    ctx.extra["place_told"] = told
    return True


@router.message(Func(_place_fixed, phase=PHASE_STATE, when=lambda p: p.text and not p.state))
async def place_fixed(ctx: Context) -> HandlerResult | Pass:
    assert ctx.resident is not None
    mark, told = ctx.extra.get("mark"), ctx.extra["place_told"]
    if mark and mark[0] == FILED and mark[1].get("ticket_id"):
        return await _place_put_right(ctx, int(mark[1]["ticket_id"]), str(mark[1].get("number", "")), told,
                                      filed=dict(mark[1]))
    shown = [(int(i), str(n)) for i, n in mark[1].get("tickets", [])] if mark and mark[0] == FOLLOWED else []
    if len(shown) == 1:
        return await _place_put_right(ctx, *shown[0], told)
    rows = [r for r in (await reports.listed(ctx.rt.db, ctx.resident.id, ctx.rt.clock.now(), limit=5))[0] if r.open]
    if shown:
        rows = [r for r in rows if r.id in {i for i, _ in shown}] or rows
    if not rows:
        return Pass()  # nothing open to put right: the message goes on as before
    if len(rows) == 1:
        return await _place_put_right(ctx, rows[0].id, rows[0].number, told)
    await ctx.fsm.set(MARK + PLACE_WHICH, tickets=[[r.id, r.number] for r in rows], place=dict(told),
                      said=ctx.text.strip()[:200])
    return TEXTS["place_which"].format(place=places.label_of(told),
                                       lines=numbered([report_line(r) for r in rows]))


async def _place_put_right(ctx: Context, ticket_id: int, number: str, told: places.Place, *,
                           filed: dict[str, Any] | None = None, said: str | None = None) -> str:
    assert ctx.resident is not None
    report = await reports.add_location(ctx.rt.db, ticket_id, ctx.resident.id, told, said or ctx.text,
                                        ctx.rt.clock.now(), rules=rules_for(ctx.rt.settings.data_dir))
    if report is None or not report.open:
        return TEXTS["contact_late"].format(number=number)
    if filed is not None:
        await ctx.fsm.set(MARK + FILED, **filed)  # a phone, a photo or a chase may still follow
    return TEXTS["place_fixed"].format(number=number, place=places.label_of(told))


def _place_pick(ctx: Context) -> tuple[int, str] | None:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != PLACE_WHICH or not ctx.text or len(ctx.text) > 20:
        return None
    tickets = [(int(i), str(n)) for i, n in mark[1].get("tickets", [])]
    word = re.sub(r"第|个|件|那|是|就|的|吧|[\s，,。.!！]", "", ctx.text)
    picked = parse_choice(word, len(tickets)) or parse_choice(ctx.text, len(tickets))
    if picked is not None:
        return tickets[picked - 1]
    named = [t for t in tickets if t[1] in ctx.text]
    return named[0] if len(named) == 1 else None


@router.message(Func(lambda ctx: _place_pick(ctx) is not None, phase=PHASE_STATE,
                     when=lambda p: p.text and p.mark == PLACE_WHICH))
async def place_picked(ctx: Context) -> str:
    picked = _place_pick(ctx)
    assert picked is not None
    data = ctx.extra["mark"][1]
    told: places.Place = dict(data.get("place") or {})
    return await _place_put_right(ctx, *picked, told, said=str(data.get("said") or ctx.text))


_COURSE_CANCEL = re.compile(r"预约|报名|课|候补|活动")


def _cancel_without_flow(ctx: Context) -> bool:
    text = ctx.text
    return (ctx.fsm.state is None and is_cancel(text) and not _COURSE_CANCEL.search(text)
            and re.sub(r"\W+", "", text) not in ("取消", "取消一下", "取消吧"))


@router.message(Func(_cancel_without_flow, phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def nothing_to_cancel(ctx: Context) -> str:
    """算了 / 不报了 with nothing going on: say so (never start a report with it)."""
    return TEXTS["nothing"]


# Right after a report was filed, what the resident adds without naming anything new (已经好几个月了,
# 物业也不管, 他家是502的, 每天晚上十一点以后): more about that report, a note on its ticket, never a
# new report asked for its place. A message naming a thing to fix, what is wrong or a demand (路灯也坏了,
# 又堆了好多垃圾, 强烈要求公开账目) may be another place or problem: a report of its own, as before; a
# question, a request the engine is sure of, or a word back (谢谢, 查进度) goes on as before (those are
# answered in the earlier phases or by their intent).
DETAIL_MAX = 40
# What is wrong with a thing, and demands (强烈要求…公开, 希望尽快…): a report of its own.
_WRONG = re.compile(
    r"坏|不亮|不灵|漏|渗|堵|吵|噪|脏|臭|乱|破|塌|裂|掉|堆|占|扰|违|断|积水|损|松|歪|倒了|不通|不热|没水|没电|不能用|不好用"
    r"|故障|太黑|黑乎乎|危险|隐患|挖|拆|砍|偷|丢|烧|砸|划|刮"
)
# The thing just reported breaking again and again, named by nothing else (怎么老是坏, 又坏了, 三天两头出问题).
_RECURS = re.compile(r"(?:老是|总是|老|总|经常|又|三天两头|动不动就?|隔三差五|一直|每次都)(?:就|都|会|在)?"
                     r"(?:坏|出问题|出毛病|故障|不好使|不灵|停)")
_DEMAND = re.compile(r"要求|希望|建议|请求|呼吁|强烈|恳请|务必|尽快")
_ANOTHER = re.compile(r"^(?:还有|另外|另一个|再反映|再说一个|顺便|对了)")
# Asking that the reporter's name be kept from the other side (别说是我反映的, 我想匿名).
_PRIVACY = re.compile(
    r"匿名|保密|(?:别|不要|不能|不用)(?:说|告诉|透露|讲|提)(?:他|她|他们|对方|人家|邻居)?(?:是我|我的)"
    r"|(?:别|不要|不想)让(?:他|她|他们|对方|人家|邻居).{0,4}知道|怕.{0,6}报复"
)


def _detail_after_filing(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != FILED or ctx.resident is None:
        return False
    text = ctx.text.strip()
    if not places.meaningful(text) or len(text) > DETAIL_MAX:
        return False
    if _PRIVACY.search(text):
        ctx.extra["detail_kind"] = "privacy_added"
        return True
    if ctx.decision == "accept" and ctx.intent not in ("complaint", "fallback"):
        return False  # a coupon, a class, a question, 转人工 or small talk the engine is sure of
    if _RECURS.search(text) and not _THING.search(text) and not _OTHER.search(text) and not _ANOTHER.match(text) \
            and places.from_text(text) is None and places.landmark(text) is None:
        ctx.extra["detail_kind"] = "recurring_kept"  # 怎么老是坏: the thing just reported, again and again
        return True
    if places.QUESTION.search(text) or _OTHER.search(text) or _ANOTHER.match(text):
        return False
    if _names_fault(text):
        return False  # a thing to fix, what is wrong with it, a demand or a place: a report of its own
    ctx.extra["detail_kind"] = None
    return True


@router.message(Func(_detail_after_filing, phase=PHASE_INTENT, when=lambda p: p.text and p.mark == FILED))
async def detail_after_filing(ctx: Context) -> str:
    data, kind = ctx.extra["mark"][1], ctx.extra["detail_kind"]
    return await add_to_report(ctx, int(data.get("ticket_id", 0)), str(data.get("number", "")),
                               TEXTS[kind] if kind else None)


def _unsure_report(ctx: Context) -> bool:
    """The engine was unsure (clarify or fallback) but leaned to a report, and the text names a
    building: "7号楼楼道扶手松了，电话139…" is a report, not something we cannot help with."""
    understanding = ctx.understanding
    return (
        ctx.decision in ("clarify", "fallback")
        and getattr(understanding, "raw_intent", None) == "complaint"
        and places.from_text(ctx.text) is not None
        and describes(ctx.text)
    )


@router.message(Func(_unsure_report, phase=PHASE_INTENT, when=lambda p: p.text))
async def unsure_report(ctx: Context) -> str:
    return await _start(ctx, ctx.text)


# Wanting to report, without saying what yet (我想反映个事, 俺要投诉一下, 报个修): asked what, whatever
# the intent engine made of so few words.
WANTS_TO_REPORT = re.compile(
    r"^(?:你好|您好)?[，,\s]*(?:我|俺)?(?:想|要|得)?(?:匿名)?(?:反映|投诉|报修|报个修|举报)(?:一下|下|个|点|件)?"
    r"(?:事|事儿|事情|问题|情况)?(?:儿)?(?:吧|啊|呀|哈)?[。.!！]*$"
)


@router.message(Func(lambda ctx: WANTS_TO_REPORT.match(ctx.text) is not None, phase=PHASE_MENU,
                     when=lambda p: p.text and not p.state))
async def wants_to_report(ctx: Context) -> HandlerResult | Pass:
    asked = await start(ctx)
    # 我想匿名举报: yes, and how (no phone needed; the name is kept from the other side).
    return TEXTS["anonymous_ok"] + asked if isinstance(asked, str) and "匿名" in ctx.text else asked


def _names_fault(text: str) -> bool:
    """The text names a thing to fix (坑, 墙, 路面), what is wrong with it, a demand, a fee or a
    service (NO_PLACE), or a place: enough for a report of its own."""
    return bool(_THING.search(text) or _WRONG.search(text) or _DEMAND.search(text) or NO_PLACE.search(text)
                or places.from_text(text) is not None or places.landmark(text) is not None)


def names_matter(text: str) -> bool:
    """The text names something reports are about: a problem (坏, 漏, 堵, 物业), whom it is about, or
    what :func:`_names_fault` finds."""
    return bool(PROBLEM.search(text) or _PARTY.search(text)) or _names_fault(text)


# A message this short that names nothing reports are about (这么任性, 花开半夏) is a report only when the
# engine is sure of it (see ``unsure_report_question``).
FEW_WORDS = 8
SURE = 0.8


def _unsure_of_report(ctx: Context) -> bool:
    """The engine leans to a report without being sure, and the text names nothing reports are about:
    a clarifying decision (读心专家, 那草为啥会绿), or a few words read as a report below ``SURE``."""
    text = ctx.text.strip()
    if not text or names_matter(text):
        return False
    if ctx.decision == "clarify":
        return True
    return ctx.decision == "accept" and (ctx.confidence or 0.0) < SURE and len(text) <= FEW_WORDS


@router.message(Intent("complaint"), Func(_unsure_of_report))
async def unsure_report_question(ctx: Context) -> str:
    """The clarifying question, 反映问题 first (then the engine's other candidates, its runner-up or
    small talk), instead of asking where to file a voice assistant's query; coupons and classes leave
    a clarifying decision to it too. A real report is one reply away (1), and then asked as before."""
    from bot.flows.clarify import ask_between  # clarify -> query -> … -> this module

    others = [label for label, _ in getattr(ctx.understanding, "candidates", None) or []]
    runner = getattr(ctx.understanding, "runner_up", None)
    if not others and runner:
        others = [runner[0]]
    labels = intents_registry(ctx.rt).labels()
    others = [o for o in others if o != "complaint" and o in labels] or ["smalltalk"]
    return await ask_between(ctx, ["complaint", *others])


@router.message(Intent("complaint"))
async def start(ctx: Context) -> str:
    if not ctx.text or not describes(ctx.text):
        whom = ctx.text.strip()[:40] if ctx.text and _PARTY.search(ctx.text) else ""
        await ctx.fsm.set("complaint:what", attachments=list(ctx.fsm.data.get("attachments", [])), c_offered=False,
                          c_whom=whom)
        return TEXTS["ask_what"]
    return await _start(ctx, ctx.text)
