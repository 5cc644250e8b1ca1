"""A resident asks for a person: the request goes into the staff's handoff queue
(``services/handoff.py``; the staff console reads it) and the resident is told truthfully what
happens next — a staff member answers in this chat once one takes over, outside office hours (from
``bot/rules/office.yml``) when the centre opens; the centre's phone for what cannot wait — and what
the assistant can do now. Recognised by the intent engine and by the words themselves (转人工,
人工客服, 找工作人员 …). :func:`answer_when` is the sentence every flow that queues a resident says
(not understood twice, two unhelpful answers, an urgent report)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot.flows.reports import DRAFT_STEPS, URGENT, draft_reminder
from bot.handler.choices import is_cancel, parse_phone, phone_alone
from bot.handler.context import Context
from bot.handler.middlewares import MARK
from bot.handler.router import PHASE_MENU, PHASE_STATE, Func, Intent, Router
from bot.logmask import mask_phones
from bot.services import handoff, office, reports
from bot.services.hazards import rules_for as hazard_rules

router = Router("handoff")

TEXTS = {
    "recorded": "好的，已经登记您要找工作人员，工作人员会在后台看到。",
    "again": "您的请求已经登记过了，工作人员会看到（这是第{asks}次提醒）。",
    # The first 转人工 after an emergency, which had already queued the resident.
    "after_urgent": "您的紧急情况已经通知值班人员，您要找工作人员也已经记下了，工作人员会看到。",
    "open_phone": "现在是工作时间，着急的话请直接打社区服务中心电话{phone}，或到服务中心窗口找工作人员。",
    "open_no_phone": "现在是工作时间，着急的话请直接到社区服务中心窗口找工作人员。",
    "closed": "现在是下班时间（工作时间：{hours}），工作人员{next}上班后处理。",
    "closed_phone": "工作时间也可以打社区服务中心电话{phone}。",
    "emergency": "紧急情况请直接拨打110、119或120。",
    # After an emergency whose words name a hazard (a gas leak): that hazard's own lines.
    "emergency_hazard": "情况危急不要等：{first}",
    "offer": "工作人员接手后会直接在这里回复您。等待的时候，您也可以先把事情告诉我：反映问题、查进度、办事咨询，我现在就能帮您登记或解答。",
    "no_resident": "暂时登记不了，请稍后再试，或直接到社区服务中心窗口。",
    # When a person will answer in this chat: said by every flow that puts a resident in the queue.
    "answer_here": "工作人员接手后会直接在这里回复您。",
    "answer_later": "现在是下班时间，工作人员{next}上班后会在这里回复您。",
    # An emergency outside office hours: the staff on duty come first; the office follows up.
    "answer_later_urgent": "现在是下班时间，值班人员会先处理，其他工作人员{next}上班后也会在这里跟进。",
    "waiting": "您找工作人员的请求已经登记了，正在排队，已经再提醒一次。",
    "withdrawn": "好的，已取消转人工。有需要随时找我。",
    # A phone number sent right after 转人工 (你让人给我打个电话吧, then the number): kept with the request.
    "phone_noted": "好的，您的电话 {phone} 已经记在找工作人员的请求上，工作人员看到后会联系您。",
    "nothing_withdrawn": "好的，有需要随时找我。",
}
# Right after 转人工, "算了不用了" withdraws the request (while nobody has taken it yet).
ASKED = "handoff"
NOT_NEEDED = re.compile(r"不用(?:转)?人工了?|不找(?:人工|工作人员)了|不用找(?:人工|工作人员)了?|取消(?:转)?人工")

WORDS = re.compile(r"^(?:我要|我想|请|帮我|麻烦)?(?:人工|客服|工作人员)[吧啊呀嘛。.!！?？]*$")
ANYWHERE = re.compile(r"转人工|人工客服|人工服务|找人工|要人工|转接人工|真人|找(?:个|一下)?工作人员|联系工作人员|"
                      r"找社区的人|有人吗|有没有人|"
                      # a call back asked for (你让人给我打个电话吧, 叫网格员打电话给俺, 给我回个电话)
                      r"(?:让|叫|派|找)(?:个)?(?:人|工作人员|网格员|社区的人)(?:给|跟)(?:我|俺)打(?:个)?电话|"
                      r"打(?:个)?电话给(?:我|俺)|给(?:我|俺)回(?:个)?电话")


def answer_when(ctx: Context, now: datetime, *, urgent: bool = False) -> str:
    """When a staff member will answer in this chat: once one takes over, or outside office hours
    (``bot/rules/office.yml``) when the centre opens ("明天（周二）8:30"); for an emergency the
    staff on duty first, whatever the hour."""
    hours = office.hours_for(ctx.rt.settings.data_dir)
    if hours.is_open(now):
        return TEXTS["answer_here"]
    return TEXTS["answer_later_urgent" if urgent else "answer_later"].format(next=hours.when_next(now))


def _asks(ctx: Context) -> bool:
    text = re.sub(r"\s+", "", ctx.text)
    return len(text) <= 20 and bool(WORDS.match(text) or ANYWHERE.search(text))


def asks_for_person(ctx: Context) -> bool:
    """The message asks for a member of staff (转人工, 找工作人员), by its words or its intent."""
    return bool(ctx.text) and (_asks(ctx) or (ctx.intent == "handoff" and ctx.decision == "accept"))



async def request_person(ctx: Context) -> str:
    """Put the resident in the staff's queue and say what happens next (a report being told is kept)."""
    if ctx.resident is None:
        return TEXTS["no_resident"]
    now, resident_id, words = ctx.rt.clock.now(), ctx.resident.id, ctx.text or "转人工"

    def record(connection: Any) -> str:  # in the reply's transaction
        recorded = handoff.request_with_reply(connection, resident_id, "asked", words, now)
        if recorded.created:
            return TEXTS["recorded"]
        if recorded.earlier == "urgent" and recorded.asks == 2:
            return TEXTS["after_urgent"]  # the emergency queued them: their own first ask
        return TEXTS["again"].format(asks=recorded.asks)

    hours = office.hours_for(ctx.rt.settings.data_dir)
    out = [ctx.reply_in(record)]
    if hours.is_open(now):
        out.append(TEXTS["open_phone"].format(phone=hours.phone) if hours.phone else TEXTS["open_no_phone"])
    else:
        out.append(TEXTS["closed"].format(hours=hours.describe(), next=hours.when_next(now)))
        if hours.phone:
            out.append(TEXTS["closed_phone"].format(phone=hours.phone))
        out.append(await _call_first(ctx))
    # A report being told when 转人工 comes (the complaint flow's place or phone step): it goes on,
    # its question asked again; staff see the conversation when they take it.
    draft = draft_reminder(ctx.fsm.state or "", ctx.fsm.data)
    if draft is not None:
        out.append(draft)
    else:
        out.append(TEXTS["offer"])
        await ctx.fsm.set(MARK + ASKED)  # "算了不用了" next withdraws it
    return "\n".join(out)


async def _call_first(ctx: Context) -> str:
    """Whom to call while nobody is in: right after an emergency whose words name a hazard (煤气味),
    that hazard's lines (the gas company's first), else 110, 119 or 120."""
    mark = ctx.extra.get("mark")
    if mark and mark[0] == URGENT and ctx.resident is not None:
        ticket_id = mark[1].get("ticket_id")
        text = next((t for i, t, _ in await reports.listed_texts(ctx.rt.db, ctx.resident.id) if i == ticket_id), None)
        hazard = hazard_rules(ctx.rt.settings.data_dir).recognise(text) if text else None
        if hazard is not None:
            return TEXTS["emergency_hazard"].format(first=hazard.first)
    return TEXTS["emergency"]


# Right after 转人工, "人呢" / "怎么没人理我" / "还要等多久" ask after the request: it stands, and
# the staff are reminded (the request counts the asks), not a knowledge answer about 转人工.
WAITING = re.compile(
    r"人呢|人在哪|(?:怎么|咋|为啥|为什么)?(?:还)?没(?:有)?人(?:理|回|管|接|来|说话)?|有人吗|有人没|在吗|在不在|还要等|等多久|要等|多久"
    r"|什么时候(?:回|理|来)|啥时候(?:回|理|来)|快点|急死|咋还没|怎么还没|还没好"
)


# Later on, with other things asked meanwhile, only a message that says nothing but this ("人呢",
# "怎么还没人理我") asks after a request still waiting ("老年证要等多久" is a question of its own).
WAITING_LATER = re.compile(
    r"人呢|人在哪(?:儿|里)?|(?:怎么|咋|为啥|为什么)?(?:还)?没(?:有)?人(?:理|回|管|接|说话)(?:我|一下)?|有人吗|有人没|"
    r"工作人员呢|客服呢|人工呢|(?:什么|啥)时候(?:回|理)(?:我)?|还要等多久|要等多久|等多久"
)
_WAITING_SMALL = re.compile(r"[我你您们的了吗呢啊呀吧么嘛哦哎啦都还怎么咋这那\s\W]")


async def _waiting(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if ctx.resident is None or not ctx.text:
        return False
    text = re.sub(r"\s+", "", ctx.text)
    if mark is not None and mark[0] == ASKED:  # right after 转人工: the words may say a little more
        return (len(text) <= 20 and WAITING.search(text) is not None
                and len(_WAITING_SMALL.sub("", WAITING.sub("", text))) <= 3)
    if len(text) > 12 or not (ctx.fsm.state or "query:").startswith("query:") or not WAITING_LATER.search(text):
        return False
    if _WAITING_SMALL.sub("", WAITING_LATER.sub("", text)):
        return False
    return await handoff.is_waiting(ctx.rt.db, ctx.resident.id)


@router.message(Func(_waiting, phase=PHASE_STATE, when=lambda p: p.text))
async def waiting(ctx: Context) -> str:
    assert ctx.resident is not None
    now, resident_id, words = ctx.rt.clock.now(), ctx.resident.id, ctx.text

    def record(connection: Any) -> None:  # in the reply's transaction
        handoff.request_with_reply(connection, resident_id, "asked", words, now)

    ctx.with_reply(record)
    await ctx.fsm.set(MARK + ASKED)  # still withdrawable, still waiting
    return TEXTS["waiting"] + "\n" + answer_when(ctx, now)


_PHONE_WORDS = re.compile(r"电话|手机|号码|打给我|打我|联系我")


def _phone_for_staff(ctx: Context) -> bool:
    """Right after 转人工, a phone number for the staff to call back (13812345678, 我电话是138…)."""
    mark = ctx.extra.get("mark")
    if ctx.resident is None or not ctx.text or mark is None or mark[0] != ASKED:
        return False
    text = re.sub(r"\s+", "", ctx.text)
    return len(text) <= 30 and (phone_alone(text) is not None
                                or (parse_phone(text) is not None and _PHONE_WORDS.search(text) is not None))


@router.message(Func(_phone_for_staff, phase=PHASE_STATE, when=lambda p: p.text and p.mark == ASKED))
async def phone_for_staff(ctx: Context) -> str:
    assert ctx.resident is not None
    phone = parse_phone(ctx.text) or ""
    now, resident_id, words = ctx.rt.clock.now(), ctx.resident.id, f"联系电话：{phone}"

    def record(connection: Any) -> None:  # in the reply's transaction
        handoff.request_with_reply(connection, resident_id, "asked", words, now)

    ctx.with_reply(record)
    await ctx.fsm.set(MARK + ASKED)  # still withdrawable
    return TEXTS["phone_noted"].format(phone=mask_phones(phone))


def _not_needed(ctx: Context) -> bool:
    if ctx.resident is None or not ctx.text:
        return False
    if NOT_NEEDED.search(ctx.text):
        return True
    mark = ctx.extra.get("mark")
    return mark is not None and mark[0] == ASKED and is_cancel(ctx.text)


@router.message(Func(_not_needed, phase=PHASE_STATE, when=lambda p: p.text))
async def not_needed(ctx: Context) -> str:
    assert ctx.resident is not None
    withdrawn = await handoff.withdraw(ctx.rt.db, ctx.resident.id, ctx.rt.clock.now())
    await ctx.fsm.clear()
    return TEXTS["withdrawn" if withdrawn else "nothing_withdrawn"]


@router.message(Func(_asks, phase=PHASE_MENU, when=lambda p: p.text))
async def asked(ctx: Context) -> str:
    if (ctx.fsm.state or "") not in DRAFT_STEPS:  # a report being told stays
        await ctx.fsm.clear()
    return await request_person(ctx)


@router.message(Intent("handoff"))
async def handoff_intent(ctx: Context) -> str:
    return await request_person(ctx)
