"""Points in the chat: balance, recent history, how to earn; activity check-in by QR code.

Scanning an activity's QR code (scene key ``activity:<id>``, as a SCAN or as the subscribe of a new
follower) checks the resident in once a day and credits the activity's points once. In-service
party members (在职党员) can then reply "单位 <name>" to register their work unit (双报到).
"""

from __future__ import annotations

import logging
import re

from bot.flows.help import menu
from bot.handler.context import Context
from bot.handler.router import PHASE_MENU, Func, MenuKey, Router, State, Text
from bot.logmask import mask_openid
from bot.services import courses, points

router = Router("points")
log = logging.getLogger("bot.flows.points")

TEXTS = {
    "balance": "您现在有 {balance} 积分。{recent}\n\n发送“积分商城”看看能换什么，发送“怎么赚积分”了解获得方法。",
    "recent_head": "\n最近的积分记录：",
    "no_history": "还没有积分记录。",
    "how_to_earn": (
        "这些都能得积分：\n"
        "· 第一次使用积分服务：{registration}分\n"
        "· 参加社区活动扫码签到：每次{activity}分左右（每天最多{activity_cap}分）\n"
        "· 反映的问题经核实有效：每条{valid_report}分（每天最多{report_cap}分）\n"
        "积分可以在“积分商城”换商家优惠券，也可以报名群众夜校的课程。"
    ),
    "registration": "送您{points}积分作为见面礼！",
    "checked_in": "签到成功！欢迎参加「{title}」。{points}{hours}",
    "checked_in_points": "获得{points}积分，",
    "checked_in_no_points": "今天这类活动的积分已到上限，",
    "checked_in_hours": "记录志愿服务{hours:g}小时。",
    "checked_in_total": "现在共有{balance}积分。",
    "already_checked_in": "您今天已经在「{title}」签过到啦，积分已经记上了，不用重复扫码。",
    "unit_prompt": "如果您是在职党员，回复“单位+工作单位名称”（如“单位 区税务局”）即可登记双报到。",
    "unit_saved": "已登记您的工作单位：{unit}。您的志愿服务会记入单位的双报到记录。",
    "unit_empty": "请在“单位”后面写上工作单位名称，比如“单位 区税务局”。",
    "no_activity": "这个活动码已经失效了，请向现场工作人员确认一下。",
    "no_resident": "暂时查不到您的信息，请稍后再试。",
    "earn_activity": "参加社区活动时扫现场的活动码签到，每次得{activity}积分左右（看活动而定），每天最多{activity_cap}积分。",
    "earn_report": "反映的问题经工作人员核实有效，每条得{valid_report}积分，每天最多{report_cap}积分。",
    "earn_more": "发送“怎么赚积分”看看所有得积分的办法。",
    "missing": "活动积分是在现场扫活动码签到后自动加上的；上面的记录里没有的话，回复“转人工”，请工作人员帮您核对补上。",
}

REASONS = {
    "registration": "见面礼",
    "activity": "活动签到",
    "valid_report": "有效反映",
    "coupon": "兑换优惠券",
    "course": "报名课程",
    "refund": "退回积分",
    "adjust": "工作人员调整",
}

ACTIVITY_SCENE = re.compile(r"^activity:(\d{1,9})$")
BALANCE_WORDS = ("我的积分", "积分", "查积分", "积分余额", "积分多少", "多少积分", "积分查询", "查询积分")
HISTORY_WORDS = ("积分记录", "积分明细", "积分历史")
EARN_WORDS = (
    "怎么赚积分",
    "怎么得积分",
    "如何获得积分",
    "怎样获得积分",
    "积分怎么来",
    "积分怎么赚",
    "怎么获得积分",
    "积分规则",
)
UNIT = re.compile(r"^\s*(?:工作)?单位[\s:：,，]*(.*)$")
# The same questions in residents' words: 我有多少积分, 积分还剩几个, 查查我的积分, 我积分多少啊 …
BALANCE_ASK = re.compile(r"多少|几个|几分|有几|余额|还剩|剩下|剩多少|还有|查|看看|看一下|够不够")
NOT_BALANCE = re.compile(r"换|兑|商城|用|花|买|券")
EARN_RE = re.compile(
    r"积分.{0,3}(?:怎么|咋|如何|怎样|哪里|从哪|哪儿)(?:能|才能|可以)?(?:挣|赚|攒|得|来|获得|加|拿|积累|弄|多)"
    r"|(?:怎么|咋|如何|怎样|哪里|在哪)(?:才能|能|可以)?(?:多)?(?:挣|赚|攒|得|获得|拿|积累|弄|领|加)(?:到|点|些)?积分"
)


# Points that did not arrive (我上周扫了楼道 积分怎么没加上, 积分少了): the balance with its record, and
# how activity points are credited and who can put it right.
MISSING = re.compile(
    r"积分.{0,8}(?:没加|没到|没给|没记|没有加|没算|没上|少了|不对|没变|没涨)"
    r"|(?:没加|没给加|少给|没记上|没给记).{0,3}积分"
)


# How many points one way of earning gives (签到给几分, 做志愿者有积分吗, 反映问题给多少积分): that way's
# figures from bot/rules/points.yml. Points that did not arrive are MISSING's.
EARN_BY_ACTIVITY = re.compile(r"签到|扫码|活动|志愿|义工|服务|做好事")
EARN_BY_REPORT = re.compile(r"反映|上报|报修|随手拍|举报|投诉|报问题")
EARN_AMOUNT = re.compile(
    r"(?:几|多少)(?:个)?(?:积)?分(?!钟)|(?:有|给|加|得|算|能得|能拿)(?:不|没)?(?:有)?(?:积)?分(?:吗|不|没|嘛|么|啊|呀)"
    r"|(?:给|加|得|算)(?:积)?分(?:吗|不|没|嘛|么)?$|积分吗|(?:积)?分多少"
)
_NOT_EARN_AMOUNT = re.compile(
    r"没加|没到|没给|少了|不对|没记|怎么没|还差|够不够|换|兑|商城|剩|还有多少|我有|要多少|要几|需要|花|扣|报名|课|夜校"
)


def _earn_way(text: str) -> tuple[bool, bool] | None:
    """(by activity, by report) when the text asks what one way of earning gives, else None."""
    if len(text) > 30 or not EARN_AMOUNT.search(text) or _NOT_EARN_AMOUNT.search(text):
        return None
    activity, report = bool(EARN_BY_ACTIVITY.search(text)), bool(EARN_BY_REPORT.search(text))
    return (activity, report) if activity or report else None


def _local(ctx: Context, when: object) -> str:
    from datetime import datetime

    assert isinstance(when, datetime)
    local = when.astimezone(points.rules().tz)
    return f"{local.month}/{local.day}"


# "Points" left out, as people say it: 我有多少分, 我还剩几分了, 俺现在有多少分啊.
BARE_BALANCE = re.compile(
    r"^(?:我|俺|咱)(?:的|家|现在|目前|还|一共|总共)*(?:有|剩|剩下|还有|还剩|攒了|攒|存了)(?:多少|几)分"
    r"(?:了|啊|呀|呢|吗|哇)*[?？。！!]*$"
)


def _asks_balance(text: str) -> bool:
    if BARE_BALANCE.match(text):
        return True
    return (len(text) <= 16 and "积分" in text and bool(BALANCE_ASK.search(text))
            and not NOT_BALANCE.search(text) and not EARN_RE.search(text))


@router.message(Text(predicate=lambda t: len(t) <= 40 and bool(MISSING.search(t))))
async def missing(ctx: Context) -> str:
    shown = await _balance(ctx)
    return shown if ctx.resident is None else shown + "\n" + TEXTS["missing"]


@router.message(Text(predicate=lambda t: _earn_way(t) is not None))
async def earn_amount(ctx: Context) -> str:
    way = _earn_way(ctx.text.lower())
    activity, report = way if way is not None else (True, True)
    figures = _earn_figures()
    lines = [TEXTS["earn_activity"].format(**figures)] if activity else []
    if report:
        lines.append(TEXTS["earn_report"].format(**figures))
    return "\n".join([*lines, TEXTS["earn_more"]])


def _earn_figures() -> dict[str, object]:
    r = points.rules()
    return {
        "registration": r.earn.get("registration", 0),
        "activity": r.earn.get("activity", 0),
        "activity_cap": r.daily_caps.get("activity", "不限"),
        "valid_report": r.earn.get("valid_report", 0),
        "report_cap": r.daily_caps.get("valid_report", "不限"),
    }


@router.message(Text(*HISTORY_WORDS, *BALANCE_WORDS, predicate=_asks_balance))
async def balance(ctx: Context) -> str:
    return await _balance(ctx)


async def _balance(ctx: Context) -> str:
    if ctx.resident is None:
        return TEXTS["no_resident"]
    now = ctx.rt.clock.now()
    shown = await points.statement(ctx.rt.db, ctx.resident.id, now, entries=5)
    if shown.pending:  # the reward shown now is written with this reply
        ctx.with_reply(points.registration_writer(ctx.resident.id, now))
    welcome, value = shown.welcome, shown.balance
    if shown.entries:
        lines = [TEXTS["recent_head"]]
        for e in shown.entries:
            sign = "+" if e.amount > 0 else ""
            label = REASONS.get(e.reason, e.reason)
            if e.told:  # what staff chose to tell the resident of their adjustment
                label = f"{label}：{e.told}"
            lines.append(f"{_local(ctx, e.created_at)} {label} {sign}{e.amount}")
        recent = "\n".join(lines)
    else:
        recent = TEXTS["no_history"]
    text = TEXTS["balance"].format(balance=value, recent=recent)
    return (TEXTS["registration"].format(points=welcome) + "\n" + text) if welcome else text


@router.message(Text(*EARN_WORDS, predicate=lambda t: bool(EARN_RE.search(t))))
async def how_to_earn(ctx: Context) -> str:
    return TEXTS["how_to_earn"].format(**_earn_figures())


@router.message(MenuKey("activity:*"))
async def check_in(ctx: Context) -> str:
    match = ACTIVITY_SCENE.match(ctx.menu_key or "")
    if match is None or ctx.resident is None:
        return TEXTS["no_activity"]
    now = ctx.rt.clock.now()
    try:
        result = await courses.check_in(
            ctx.rt.db, resident_id=ctx.resident.id, activity_id=int(match[1]), now=now
        )
    except courses.BookingError:
        return TEXTS["no_activity"]
    shown = await points.statement(ctx.rt.db, ctx.resident.id, now)
    if shown.pending:  # the reward shown now is written with this reply
        ctx.with_reply(points.registration_writer(ctx.resident.id, now))
    welcome, total = shown.welcome, shown.balance
    parts = []
    if ctx.inbound.event == "subscribe":
        parts.append(menu(ctx.rt))
    if not result.created:
        parts.append(TEXTS["already_checked_in"].format(title=result.activity.title))
    else:
        log.info("check-in of %s at activity %s", mask_openid(ctx.openid), result.activity.id)
        earned = (
            TEXTS["checked_in_points"].format(points=result.points)
            if result.points
            else TEXTS["checked_in_no_points"]
        )
        hours = (
            TEXTS["checked_in_hours"].format(hours=result.checkin.volunteer_hours)
            if result.checkin.volunteer_hours
            else ""
        )
        parts.append(
            TEXTS["checked_in"].format(title=result.activity.title, points=earned, hours=hours)
            + TEXTS["checked_in_total"].format(balance=total)
        )
        if welcome:
            parts.append(TEXTS["registration"].format(points=welcome))
        if result.work_unit is None:
            parts.append(TEXTS["unit_prompt"])
            await ctx.fsm.set("checkin:unit", activity_id=result.activity.id)
    return "\n\n".join(parts)


def _unit_text(ctx: Context) -> bool:
    return UNIT.match(ctx.text or "") is not None


@router.message(State("checkin:unit"), Func(_unit_text))
async def register_unit(ctx: Context) -> str:
    return await _save_unit(ctx)


async def _save_unit(ctx: Context) -> str:
    match = UNIT.match(ctx.text)
    unit = " ".join((match[1] if match else "").split())
    if not unit:
        return TEXTS["unit_empty"]
    if ctx.resident is None:
        return TEXTS["no_resident"]
    await courses.register_work_unit(
        ctx.rt.db, resident_id=ctx.resident.id, work_unit=unit, now=ctx.rt.clock.now()
    )
    await ctx.fsm.clear()
    return TEXTS["unit_saved"].format(unit=unit[:100])


# "单位 区税务局" sent later, not right after the check-in that asked for it: registered all the same.
# A separator after 单位 and no question in the name (单位开的证明怎么弄 is not a unit).
LATE_UNIT = re.compile(r"^\s*(?:工作)?单位[\s:：]+[^\s?？吗呢怎么啥哪]{2,30}\s*$")


def _late_unit(ctx: Context) -> bool:
    return ctx.fsm.state is None and LATE_UNIT.match(ctx.text or "") is not None


@router.message(Func(_late_unit, phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def register_unit_later(ctx: Context) -> str:
    ctx.intent = "coupon"
    return await _save_unit(ctx)
