"""Community courses and activities in the chat: what is on (this week, by name, by category),
details, book, waitlist when full, "my bookings", cancel (refund before the cut-off).

Reminders the day before and waitlist promotions are sent by the services (scheduler jobs and
cancellations) through the outbox.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from typing import Any

from bot.handler.choices import is_cancel, is_no, is_yes, parse_choice
from bot.handler.context import Context
from bot.handler.middlewares import MARK
from bot.handler.router import PHASE_MENU, PHASE_STATE, Func, Intent, Pass, Router, State, Text
from bot.services import courses, points
from intents.entities import LookupMatcher

router = Router("courses")

TEXTS = {
    "week_head": "本周的课程和活动：",
    "soon_head": "近期的课程和活动：",
    "found_head": "找到这些课程和活动：",
    "not_on": "近期没有{name}的课，",
    "when_listed": "每一节的日期、星期和钟点都写在上面了，比如第1个是{first}。回复数字看详情和报名。",
    "where_listed": "每一节在哪上都写在括号里了，比如第1个在{place}。回复数字看详情和报名。",
    "item": "{n}. {when} {title}（{place}）{cost}{left}",
    "cost_free": "免费",
    "cost": "{cost}积分",
    "left": "，剩{left}个名额",
    "full": "，已满可候补",
    "list_tail": "回复数字看详情和报名。",
    "none": "近期还没有安排课程和活动，过几天再来看看吧。",
    "next_week_head": "下周的课程和活动：",
    "next_week_none": "下周还没有安排课程和活动。",
    "not_found": "没找到“{query}”相关的课程。\n",
    "list_left": "好的，先不报了。想报名的时候发“课程”就行。",
    "which_to_book": "您想预约哪一节？\n",
    "detail": (
        "「{title}」{category}\n{description}时间：{when}–{end}\n地点：{place}\n{organiser}{audience}"
        "名额：{capacity}人，已报{booked}人\n费用：{cost}\n\n报名请回复“预约”。"
    ),
    "booked": "预约成功！「{title}」{when}，地点：{place}。{paid}开课前一天会提醒您。不能来请回复“取消预约”。",
    "paid": "已扣{cost}积分，还剩{balance}积分。",
    "full_ask": "「{title}」{when}的名额已经满了。要排队候补吗？有人取消会按顺序为您约上并通知您。回复“候补”排队，回复“算了”不排。",
    "waitlisted": "已为您排上候补，目前排第{position}位。有空位会自动为您约上并通知您{cost_note}。",
    "cost_note": "（届时扣{cost}积分）",
    "error_duplicate": "您已经{status}这一场了，不用重复报名。发送“我的预约”查看。",
    "status_booked": "预约了",
    "status_waitlisted": "在候补",
    "status_attended": "参加过",
    "error_points": "积分不够哦：报名需要{cost}积分，您现在有{balance}积分。发送“怎么赚积分”看看怎么获得。",
    "error_not_open": "这一场还没开始报名，{opens}开放报名。",
    "error_closed": "这一场的报名已经截止了。回复“有什么课”看看其他安排。",
    "error_not_found": "这一场已经取消或下架了。回复“有什么课”看看其他安排。",
    "error_full": "名额刚好满了。",
    "mine_head": "我的预约：",
    "mine_item": "{n}. {when} {title}（{place}）{status}",
    "mine_booked": "已预约",
    "mine_waitlisted": "候补第{position}位",
    "mine_tail": "要取消的话回复“取消”加序号，比如“取消1”。",
    "mine_empty": "您现在没有预约。回复“有什么课”看看近期的安排。",
    "nothing_to_cancel": "您现在没有可以取消的预约，也没有正在办的事。需要帮忙的话直接告诉我。",
    "cancel_which": "要取消哪一个？回复序号。",
    "nothing_booked": "您现在没有预约课程或活动，不用取消。想看看近期的安排，回复“有什么课”。",
    "not_that_one": "您没有预约“{named}”相关的课。",
    "pick_first": "请先回复数字（1–{n}）选一节，看了详情再预约。",
    "cancel_confirm": "确定取消「{title}」{when}吗？{refund}\n确定请回复“确认取消”，不取消回复“不了”。",
    "refund_yes": "已付的{paid}积分会退回。",
    "refund_no": "开课前{hours}小时内取消，已付的{paid}积分不退。",
    "cancelled": "已取消「{title}」{when}。{refund}",
    "refunded": "退回{points}积分，现在有{balance}积分。",
    "left_waitlist": "已退出「{title}」{when}的候补。",
    "cancel_failed": "这个预约已经不能取消了（可能已经开始或已取消）。",
    "kept": "好的，保留您的预约。",
    "no_resident": "暂时查不到您的信息，请稍后再试。",
    "audience_ask": "本课程面向{audience}，您符合条件吗？回复“是”继续，不符合回复“不是”。",
    "audience_no": "好的，「{title}」是专门为{audience}安排的，这次就不为您报名了。回复“有什么课”看看其他适合您的安排。",
    # A booked class's own facts, asked after booking (签到在哪, 要带什么, 在哪个教室).
    "class_where": "「{title}」在{place}上，{when}开始。",
    "class_checkin": "「{title}」{when}在{place}。到了用微信扫现场的签到码就签上了，不用提前签。",
    "class_bring": "「{title}」的介绍：{description}",
    "class_bring_none": "「{title}」的介绍里没说要带东西，{when}按时到{place}就行。拿不准的话回复“转人工”问问工作人员。",
    "class_when": "「{title}」{when}开始，{end}结束，在{place}。",
    "class_who": "「{title}」由{organiser}负责，{when}在{place}。",
    "no_booking": "您现在没有预约的课。每节课的时间和地点都在下面，回复数字看详情（要带什么、怎么签到）。\n",
}

# The menu said in words (打开夜校, 进入夜校, 看看课程表): the listing.
OPEN_LIST = re.compile(
    r"^(?:打开|进入|进去|进|看看|看一下|看下|查看|点开|我要看|我想看|想看看?)(?:一下)?(?:群众)?"
    r"(?:夜校|课程表|课程|课表|夜校课程|夜校的课)(?:吧|呀|啊|了)?[。!！]*$"
)
LIST_WORDS = (
    "有什么课",
    "有啥课",
    "课程",
    "夜校",
    "群众夜校",
    "课程表",
    "本周课程",
    "这周有什么课",
    "本周有什么课",
    "有什么活动",
    "活动",
    "近期活动",
    "最近有什么活动",
    "报名",
    "预约课程",
    "我要报名",
    "我要上课",
)
MINE_WORDS = ("我的预约", "我的课程", "我的报名", "预约记录", "我报的课")
# The same asked in more words (我报了哪些课, 俺都约了啥, 我报名了几个活动, 我预约的课是哪天).
MINE_SAID = re.compile(
    r"^(?:我|俺)(?:都|一共)?(?:报|约|预约|报名)(?:了|过|上)?(?:哪些|哪几|什么|啥|几个|几节|哪个|的)"
    r"(?:课|课程|班|活动|讲座)?"
)
CANCEL_WORDS = ("取消预约", "取消报名", "退课", "不去了", "取消课程", "取消", "取消一下", "取消吧", "我要取消")
# The cancellation said with more words (我不想去了 取消预约, 帮我把报名取消了, 退个课).
CANCEL_SAID = re.compile(r"取消(?:一下)?(?:我的|那个|这个|刚才的|掉)?(?:预约|报名|课程?)|(?:预约|报名)(?:给我)?取消|退(?:个|掉)?课")
BOOK_WORDS = ("预约", "报名", "我要报名", "我要预约", "好", "好的", "确认", "约", "1")
# Booking said in other words (报个名, 我想报一个, 给俺约上吧); at a list it means "which one?" first.
BOOK_SAID = re.compile(r"^(?:给)?(?:我|俺)?(?:要|想)?(?:预约|报名|报|约)(?:一个|一下|个名|个|名|上)?(?:吧|啊|呀)?$")
WAIT_WORDS = ("候补", "排队", "好", "好的", "要", "是", "是的", "1")
# The waitlist said in more words (候补吧, 我要候补, 帮我排上, 排个队).
WAIT_SAID = re.compile(r"^(?:那|那就|嗯|好)?(?:我|俺)?(?:要|想)?(?:帮我|给我)?(?:候补|排队|排上|排个队|排一下)(?:吧|啊|呀|一下|上)?[。！!.]*$")
NO_WORDS = ("算了", "不了", "不排", "不用了", "不", "否", "取消", "2")
CANCEL_YES = ("确认取消", "确定", "确认", "是", "是的", "取消", "1")
CANCEL_PICK = re.compile(r"^\s*取消\s*(?:第)?\s*([0-9一二两三四五六七八九])\s*(?:个|项)?\s*$")
AUDIENCE_YES = ("是", "是的", "符合", "我符合", "对", "对的", "嗯", "好", "好的", "确认", "继续", "1")
AUDIENCE_NO = ("不是", "否", "不符合", "我不符合", "不", "不对", "算了", "不了", "没有", "2")
# A question about what is on: 有啥课, 有没有…的课, 哪些课, 都有什么活动.
WHATS_ON_ASK = re.compile(r"有(?:什么|啥|哪些|没有|木有|没)|什么|啥|哪些|哪个|几个|多少")
NEXT_WEEK = re.compile(r"下周|下个?星期|下个?礼拜")
# A course named in a request (书法课, 我想报名花艺, 那换个中医的课, 改报葫芦丝吧): the name, without
# the words around it.
SEARCH = re.compile(
    r"^(?:那|那就|那我)?(?:我想|我要|想|要)?(?:换个|换成|换到|改成|改报|改个)?(?:预约|报名|报|学|上)?(?:个|一个|一下)?"
    r"(.{1,12}?)的?(?:课|课程|班|活动|讲座)?(?:吧|呢|啊|呀)?$"
)


def when(dt: datetime) -> str:
    local = dt.astimezone(points.rules().tz)
    weekday = "一二三四五六日"[local.weekday()]
    return f"{local.month}月{local.day}日(周{weekday}){local:%H:%M}"


def clock_time(dt: datetime) -> str:
    return f"{dt.astimezone(points.rules().tz):%H:%M}"


def _line(n: int, row: courses.Listing) -> str:
    left = row.capacity - row.booked
    return TEXTS["item"].format(
        n=n,
        when=when(row.starts_at),
        title=row.title,
        place=row.place or "社区",
        cost=TEXTS["cost"].format(cost=row.points_cost) if row.points_cost else TEXTS["cost_free"],
        left=TEXTS["left"].format(left=left) if left > 0 else TEXTS["full"],
    )


async def _list(ctx: Context, rows: list[courses.Listing], head: str) -> str:
    rows = rows[:8]
    lines = [head] + [_line(n, row) for n, row in enumerate(rows, 1)] + [TEXTS["list_tail"]]
    await ctx.fsm.set("courses:browse", ids=[row.session_id for row in rows])
    return "\n".join(lines)


async def whats_on(ctx: Context) -> str:
    rows, week = await courses.whats_on(ctx.rt.db, ctx.rt.clock.now())
    if not rows:
        await ctx.fsm.clear()
        return TEXTS["none"]
    return await _list(ctx, rows, TEXTS["week_head"] if week else TEXTS["soon_head"])


async def next_week(ctx: Context) -> str:
    start = courses.week_end(ctx.rt.clock.now())
    rows = await courses.listings(ctx.rt.db, start, until=start + timedelta(days=7))
    if rows:
        return await _list(ctx, rows, TEXTS["next_week_head"])
    return TEXTS["next_week_none"] + "\n" + await whats_on(ctx)


# What a question about what is on names ("有没有教智能手机的课" → 智能手机), once the words for who
# and when are taken out (有没有适合老年人的课, 这周晚上有啥活动 name nothing).
NAMED_TOPIC = re.compile(r"(?:有没有|有木有|有没|有)(?:教|学|讲|关于)?(.{2,10}?)的?(?:课|课程|班|活动|讲座|培训)")
_NOT_TOPIC = re.compile(
    r"什么|啥|哪些|哪个|几个|适合|老年人|老人|年轻人|小孩|孩子|儿童|学生|妇女|残疾人|免费|不要钱|收费|周末|晚上|白天|上午|下午"
    r"|最近|近期|这周|本周|下周|今天|明天|后天|这个月|社区|咱们|我们|我|俺|(?:能|可以)(?=参加|报名|上|学|$)|参加|报名|的|\s|\W"
)


def _named_topic(text: str) -> str:
    match = NAMED_TOPIC.search(text)
    return "" if match is None else _NOT_TOPIC.sub("", match[1])


async def generic(ctx: Context, text: str) -> str | None:
    """A question about what is on rather than a course's name (下周有啥课, 有没有适合老年人的课):
    the listing (next week's when it says so); None when the message names something. A topic
    named and not found ("有没有教智能手机的课") is said to be not on, before the listing."""
    if NEXT_WEEK.search(text):
        return await next_week(ctx)
    if not WHATS_ON_ASK.search(text):
        return None
    topic = _named_topic(text)
    return (TEXTS["not_on"].format(name=topic) if len(topic) >= 2 else "") + await whats_on(ctx)


# Volunteering asked for in residents' words (我想当志愿者, 有没有义工活动): the sessions named 志愿….
VOLUNTEERING = re.compile(r"志愿者|志愿活动|志愿服务|义工|做志愿|当志愿")


async def search(ctx: Context, text: str) -> str | None:
    match = SEARCH.match(text.strip())
    query = "志愿" if VOLUNTEERING.search(text) else (match[1] if match else text).strip()
    if not query:
        return None
    now = ctx.rt.clock.now()
    found = courses.match_listings(query, await courses.listings(ctx.rt.db, now, until=now + timedelta(days=60)))
    if not found:
        return None
    if len(found) == 1:
        return await detail(ctx, found[0].session_id, found[0])  # just read: not read again
    return await _list(ctx, found, TEXTS["found_head"])


async def detail(ctx: Context, session_id: int, act: courses.Listing | None = None) -> str:
    """The session's details (``act``: its listing when the caller has just read it)."""
    if act is None:
        act = await courses.listing(ctx.rt.db, session_id, ctx.rt.clock.now())
    if act is None:
        return TEXTS["error_not_found"]
    # The audience goes with the state: booking asks about it without reading the session again.
    await ctx.fsm.set("courses:detail", session_id=session_id, audience=(act.audience or "").strip())
    return TEXTS["detail"].format(
        title=act.title,
        category=f"（{act.category}）" if act.category else "",
        description=f"{act.description}\n" if act.description else "",
        when=when(act.starts_at),
        end=clock_time(act.ends_at),
        place=act.place or "社区",
        organiser=f"老师/组织：{act.organiser}\n" if act.organiser else "",
        audience=f"适合：{act.audience}\n" if act.audience else "",
        capacity=act.capacity,
        booked=act.booked,
        cost=TEXTS["cost"].format(cost=act.points_cost) if act.points_cost else TEXTS["cost_free"],
    )


def _audience_label(audience: str) -> str:
    """"60岁以上" → "60岁以上居民"; "老年人" stays as it is."""
    audience = audience.strip()
    return audience if audience.endswith(("居民", "人", "者", "们", "童", "生", "群众", "家庭")) else audience + "居民"


async def _ask_audience(ctx: Context, session_id: int, waitlist: bool) -> str | None:
    """Ask once whether the resident fits the course's audience; None when there is nothing to ask.
    (The audience shown with the details is in the state; read again when it is not.)"""
    known = ctx.fsm.data.get("audience")
    if isinstance(known, str):
        audience = known
    else:
        act = await courses.listing(ctx.rt.db, session_id, ctx.rt.clock.now())
        audience = ((act.audience if act is not None else None) or "").strip()
    if not audience or courses.audience_confirmed(ctx.resident, audience):
        return None
    await ctx.fsm.set("courses:audience", session_id=session_id, waitlist=waitlist, audience=audience)
    return TEXTS["audience_ask"].format(audience=_audience_label(audience))


# An age said at the audience question (我72岁, 今年65了, 俺都八十了 aside): checked against an
# audience given in years (60岁以上, 18岁以下) instead of taken for something else.
AGE_SAID = re.compile(r"^(?:我|俺|本人)?(?:今年|已经|都)?(\d{1,3})(?:岁|周岁|了)+(?:了|啦|啊)?$")
AUDIENCE_AGE = re.compile(r"(\d{1,3})\s*(?:周)?岁(?:及|或)?(以上|以下)")


def _audience_answer(ctx: Context) -> bool | None:
    """Whether the answer to "您符合条件吗？" is yes or no: the words, or an age against the audience's."""
    text = ctx.text.strip().rstrip("。！!.，,~～ ").lower()
    if text in _AUDIENCE_YES or is_yes(text):
        return True
    if text in _AUDIENCE_NO or is_no(text):
        return False
    age, limit = AGE_SAID.match(re.sub(r"\s+", "", text)), AUDIENCE_AGE.search(str(ctx.fsm.data.get("audience", "")))
    if age is None or limit is None:
        return None
    years, bound = int(age[1]), int(limit[1])
    return years >= bound if limit[2] == "以上" else years <= bound


_AUDIENCE_YES = {w.lower() for w in AUDIENCE_YES}
_AUDIENCE_NO = {w.lower() for w in AUDIENCE_NO}


async def _book(ctx: Context, waitlist: bool, *, audience_checked: bool = False) -> str:
    session_id = int(ctx.fsm.data.get("session_id", 0))
    if ctx.resident is None:
        return TEXTS["no_resident"]
    if not audience_checked:
        ask = await _ask_audience(ctx, session_id, waitlist)
        if ask is not None:
            return ask
    db, resident_id, now, request_key = ctx.rt.db, ctx.resident.id, ctx.rt.clock.now(), ctx.inbound.key
    kept = {k: v for k, v in ctx.fsm.data.items() if k != "expired_state"}
    await ctx.fsm.clear()

    def book(connection: Any) -> str:
        """In the reply's transaction: the booking exists exactly when this answer is stored."""
        try:
            result = courses.book_with_reply(
                connection,
                db,
                resident_id=resident_id,
                session_id=session_id,
                now=now,
                waitlist=waitlist,
                request_key=request_key,
                welcome=True,  # the registration reward first, as 查积分 would show it
            )
        except courses.BookingError as exc:
            if exc.code == "full" and not waitlist:
                act = courses.listing_in(connection, db, session_id, now)
                if act is not None:
                    audience = (act.audience or "").strip()
                    ctx.fsm.move("courses:waitlist", **{**kept, "session_id": session_id, "audience": audience})
                    return TEXTS["full_ask"].format(title=act.title, when=when(act.starts_at))
            opens = exc.info.get("opens_at")
            return TEXTS[f"error_{exc.code}"].format(
                status=TEXTS.get(f"status_{exc.info.get('status', 'booked')}", "预约了"),
                cost=exc.info.get("cost", 0),
                balance=exc.info.get("balance", 0),
                opens=when(opens) if isinstance(opens, datetime) else "稍后",
            )
        b, s, a = result.booking, result.session, result.activity
        ctx.fsm.move(MARK + BOOKED, session_id=s.id)  # 签到在哪 / 要带什么 next: about this class
        if b.status == "waitlisted":
            position = courses.waitlist_place_in(connection, b)
            note = TEXTS["cost_note"].format(cost=a.points_cost) if a.points_cost else ""
            return TEXTS["waitlisted"].format(position=position, cost_note=note)
        paid = TEXTS["paid"].format(cost=b.points_paid, balance=result.balance) if b.points_paid else ""
        return TEXTS["booked"].format(title=a.title, when=when(s.starts_at), place=a.place or "社区", paid=paid)

    return ctx.reply_in(book)


@router.message(State("courses:detail"), Text(*BOOK_WORDS, predicate=lambda t: bool(BOOK_SAID.match(t.strip())) or is_yes(t)))
async def book(ctx: Context) -> str:
    return await _book(ctx, waitlist=False)


@router.message(State("courses:waitlist"), Text(*WAIT_WORDS, predicate=lambda t: is_yes(t) or bool(WAIT_SAID.match(t.strip()))))
async def join_waitlist(ctx: Context) -> str:
    return await _book(ctx, waitlist=True)


@router.message(State("courses:audience"), Func(lambda ctx: _audience_answer(ctx) is True))
async def audience_yes(ctx: Context) -> str:
    data = dict(ctx.fsm.data)
    if ctx.resident is None:
        return TEXTS["no_resident"]
    await courses.confirm_audience(
        ctx.rt.db, resident_id=ctx.resident.id, audience=str(data.get("audience", "")), now=ctx.rt.clock.now()
    )
    await ctx.fsm.set("courses:detail", session_id=int(data.get("session_id", 0)))
    return await _book(ctx, waitlist=bool(data.get("waitlist")), audience_checked=True)


@router.message(State("courses:audience"), Func(lambda ctx: _audience_answer(ctx) is False))
async def audience_no(ctx: Context) -> str:
    data = dict(ctx.fsm.data)
    await ctx.fsm.clear()
    act = await courses.listing(ctx.rt.db, int(data.get("session_id", 0)), ctx.rt.clock.now())
    return TEXTS["audience_no"].format(
        title=act.title if act else "这门课", audience=_audience_label(str(data.get("audience", "")))
    )


@router.message(State("courses:waitlist", "courses:detail", "courses:cancel"), Text(*NO_WORDS, predicate=is_no))
async def never_mind(ctx: Context) -> str:
    state = ctx.fsm.state
    await ctx.fsm.clear()
    return TEXTS["kept"] if state == "courses:cancel" else "好的。回复“有什么课”可以再看看其他安排。"


def _picked(ctx: Context) -> bool:
    return parse_choice(ctx.text, len(ctx.fsm.data.get("ids", []))) is not None


def _leaves_list(ctx: Context) -> bool:
    return is_cancel(ctx.text) and not _BOOKING_WORDS.search(ctx.text)


_BOOKING_WORDS = re.compile(r"预约|报名|课|候补|活动")


@router.message(State("courses:browse"), Func(_leaves_list))
async def leave_list(ctx: Context) -> str:
    """算了 / 不要了 at the list of classes: nothing is being booked, so only a word back."""
    await ctx.fsm.clear()
    return TEXTS["list_left"]


@router.message(State("courses:browse"), Func(_picked))
async def pick(ctx: Context) -> str:
    ids = list(ctx.fsm.data.get("ids", []))
    choice = parse_choice(ctx.text, len(ids))
    assert choice is not None
    return await detail(ctx, int(ids[choice - 1]))


async def _mine_rows(ctx: Context, *, positions: bool = False) -> list[courses.MyBooking]:
    if ctx.resident is None:
        return []
    return await courses.bookings_of(ctx.rt.db, ctx.resident.id, ctx.rt.clock.now(), positions=positions)


@router.message(Text(*MINE_WORDS, predicate=lambda t: len(t) <= 16 and bool(MINE_SAID.match(t.strip()))))
async def mine(ctx: Context) -> str:
    return await _mine_text(ctx)


async def _mine_text(ctx: Context) -> str:
    rows = await _mine_rows(ctx, positions=True)
    if not rows:
        return TEXTS["mine_empty"]
    lines = [TEXTS["mine_head"]]
    for n, b in enumerate(rows, 1):
        if b.status == "waitlisted":
            status = TEXTS["mine_waitlisted"].format(position=b.position)
        else:
            status = TEXTS["mine_booked"]
        lines.append(
            TEXTS["mine_item"].format(n=n, when=when(b.starts_at), title=b.title, place=b.place or "社区", status=status)
        )
    lines.append(TEXTS["mine_tail"])
    await ctx.fsm.set("courses:mine", ids=[b.booking_id for b in rows])
    return "\n".join(lines)


async def _confirm_cancel(ctx: Context, booking_id: int) -> str:
    rows = {b.booking_id: b for b in await _mine_rows(ctx)}
    if booking_id not in rows:
        await ctx.fsm.clear()
        return TEXTS["cancel_failed"]
    b = rows[booking_id]
    refund = ""
    if b.status == "booked" and b.points_paid:
        cutoff = points.rules().cancel_refund_cutoff
        if ctx.rt.clock.now() <= b.starts_at - cutoff:
            refund = TEXTS["refund_yes"].format(paid=b.points_paid)
        else:
            refund = TEXTS["refund_no"].format(paid=b.points_paid, hours=int(cutoff.total_seconds() // 3600))
    await ctx.fsm.set("courses:cancel", booking_id=booking_id)
    return TEXTS["cancel_confirm"].format(title=b.title, when=when(b.starts_at), refund=refund)


@router.message(State("courses:cancel"), Text(*CANCEL_YES, predicate=is_yes))
async def do_cancel(ctx: Context) -> str:
    booking_id = int(ctx.fsm.data.get("booking_id", 0))
    await ctx.fsm.clear()
    if ctx.resident is None:
        return TEXTS["no_resident"]
    try:
        result = await courses.cancel(
            ctx.rt.db, resident_id=ctx.resident.id, booking_id=booking_id, now=ctx.rt.clock.now()
        )
    except courses.BookingError:
        return TEXTS["cancel_failed"]
    title, at = result.activity.title, when(result.session.starts_at)
    if result.previous == "waitlisted":
        return TEXTS["left_waitlist"].format(title=title, when=at)
    refund = ""
    if result.refunded:
        balance = await points.balance(ctx.rt.db, ctx.resident.id)
        refund = TEXTS["refunded"].format(points=result.refunded, balance=balance)
    return TEXTS["cancelled"].format(title=title, when=at, refund=refund)


def _cancel_pick(ctx: Context) -> bool:
    match = CANCEL_PICK.match(ctx.text or "")
    return match is not None and parse_choice(match[1], len(ctx.fsm.data.get("ids", []))) is not None


@router.message(State("courses:mine"), Func(_cancel_pick))
async def cancel_numbered(ctx: Context) -> str:
    match = CANCEL_PICK.match(ctx.text)
    ids = list(ctx.fsm.data.get("ids", []))
    choice = parse_choice(match[1] if match else "", len(ids))
    assert choice is not None
    return await _confirm_cancel(ctx, int(ids[choice - 1]))


@router.message(State("courses:cancel_pick"), Func(_picked))
async def cancel_picked(ctx: Context) -> str:
    ids = list(ctx.fsm.data.get("ids", []))
    choice = parse_choice(ctx.text, len(ids))
    assert choice is not None
    return await _confirm_cancel(ctx, int(ids[choice - 1]))


def _cancel_said(text: str) -> bool:
    return len(text) <= 20 and CANCEL_SAID.search(text) is not None


@router.message(Text(*CANCEL_WORDS, predicate=_cancel_said))
async def cancel_start(ctx: Context) -> str:
    return await _start_cancel(ctx)


# 取消1 (what the list of bookings tells residents to send) once that list is closed: the bookings
# again (or the one booking's confirmation), not "I can't help with that".
def _late_cancel_pick(ctx: Context) -> bool:
    return ctx.fsm.state is None and CANCEL_PICK.match(ctx.text or "") is not None


@router.message(Func(_late_cancel_pick, phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def cancel_pick_later(ctx: Context) -> str:
    return await _start_cancel(ctx)


async def _start_cancel(ctx: Context) -> str:
    rows = await _mine_rows(ctx)
    if not rows:
        return TEXTS["nothing_to_cancel"]
    if len(rows) == 1:
        return await _confirm_cancel(ctx, rows[0].booking_id)
    listing = await _mine_text(ctx)
    await ctx.fsm.set("courses:cancel_pick", ids=[b.booking_id for b in rows])
    return listing.replace(TEXTS["mine_tail"], TEXTS["cancel_which"])


# "I can't come" about a class (明天那个花艺课我去不了了): the cancellation of that booking.
CANT_COME = re.compile(
    r"去不了|来不了|参加不了|上不了|不能去|不能来|去不成|来不成|不去了|不来了|不想去了|不想来了|不想参加了|不想上了|请个?假"
)
CLASS_WORD = re.compile(r"课|班|活动|讲座|培训|夜校")
_NOT_TITLE = re.compile(rf"{CANT_COME.pattern}|{CLASS_WORD.pattern}|取消|退掉|一下|帮我|给我|算了|预约|报名"
                        r"|[我俺的了那个这明后今天周星期一二三四五六日下午上晚早点吧啊呀呢哦嘛\s\W\d]")


def _cant_come(ctx: Context) -> bool:
    """Said of a class, or right after a list of classes, the resident's bookings or a booking made
    (我不去了)."""
    text = ctx.text or ""
    mark = ctx.extra.get("mark")
    about_classes = (CLASS_WORD.search(text) is not None or (ctx.fsm.state or "").startswith("courses:")
                     or (mark is not None and mark[0] == BOOKED))
    return len(text) <= 30 and CANT_COME.search(text) is not None and about_classes


@router.message(Func(_cant_come, phase=PHASE_MENU, when=lambda p: p.text))
async def cant_come(ctx: Context) -> str:
    rows = await _mine_rows(ctx)
    if not rows:
        return TEXTS["nothing_booked"]
    named = _NOT_TITLE.sub("", ctx.text)
    matching = [b for b in rows if not named or sum(ch in b.title for ch in named) >= min(2, len(named))]
    if len(matching) == 1:  # the one named, or the only booking when none is named
        return await _confirm_cancel(ctx, matching[0].booking_id)
    listing = await _mine_text(ctx)
    await ctx.fsm.set("courses:cancel_pick", ids=[b.booking_id for b in rows])
    head = TEXTS["not_that_one"].format(named=named) if named and not matching else ""
    return head + listing.replace(TEXTS["mine_tail"], TEXTS["cancel_which"])


@router.message(State("courses:browse"), Text(predicate=lambda t: bool(BOOK_SAID.match(t.strip())) or is_yes(t)))
async def book_from_list(ctx: Context) -> str:
    """预约 said at a list: a session is picked first (the only one is shown). 是 / 好的 there (after
    我报个名 was asked which one) is still choosing: which number again, the list kept, so a time or
    place asked next is answered from it."""
    ids = list(ctx.fsm.data.get("ids", []))
    if len(ids) == 1:
        return await detail(ctx, int(ids[0]))
    asked = ctx.fsm.data.get("asked")
    if isinstance(asked, int) and asked in ids:
        return await detail(ctx, asked)  # 我报个名 right after 书法课几点 at the list: that one
    return TEXTS["pick_first"].format(n=len(ids))


# 周几上课 / 几点开始 at a list: the list says it; pointed to rather than searched for as a course.
_WHEN_ASKED = re.compile(r"周几|星期几|礼拜几|哪天|几号|几点|什么时候|啥时候|时间")


@router.message(State("courses:browse"), Func(lambda ctx: len(ctx.text) <= 12 and bool(_WHEN_ASKED.search(ctx.text))))
async def when_at_list(ctx: Context) -> str:
    named = await _named_listed(ctx)
    if named is not None:  # 书法班几点 at a list: that one
        await ctx.fsm.update(asked=named.session_id)  # 我报个名 next books that one
        return await _class_fact(ctx, named, "when")
    first = await _first_listed(ctx)
    return TEXTS["when_listed"].format(first=when(first.starts_at)) if first else await whats_on(ctx)


async def _first_listed(ctx: Context) -> courses.Listing | None:
    """The first session of the list the resident is looking at (None when it is gone)."""
    ids = list(ctx.fsm.data.get("ids", []))
    return await courses.listing(ctx.rt.db, int(ids[0]), ctx.rt.clock.now()) if ids else None


async def _named_listed(ctx: Context) -> courses.Listing | None:
    """The session of the list the text names by its title (书法班在哪), if any."""
    for session_id in ctx.fsm.data.get("ids", []):
        act = await courses.listing(ctx.rt.db, int(session_id), ctx.rt.clock.now())
        if act is not None and _names_title(ctx.text, act.title):
            return act
    return None


# 在哪上 / 啥地方 at a list: the list says where, in brackets.
_WHERE_ASKED = re.compile(r"在哪|哪里|哪儿|哪块|啥地方|什么地方|地点|地址|咋走|怎么走")


@router.message(State("courses:browse"), Func(lambda ctx: len(ctx.text) <= 12 and bool(_WHERE_ASKED.search(ctx.text))))
async def where_at_list(ctx: Context) -> str:
    named = await _named_listed(ctx)
    if named is not None:  # 书法班在哪个教室 at a list: that one
        await ctx.fsm.update(asked=named.session_id)  # 我报个名 next books that one
        return await _class_fact(ctx, named, "where")
    first = await _first_listed(ctx)
    return TEXTS["where_listed"].format(place=first.place or "社区") if first else await whats_on(ctx)


# ---------------------------------------------------------- a booked class's own facts
BOOKED = "course_booked"  # the mark left after a booking: its session
# What residents ask of a class they booked: where to check in, what to bring, which room, when,
# who teaches. Asked of points (签到给几分, 签到了没加分) it is the points' question, not this.
_CLASS_ASKED = {
    "checkin": re.compile(r"(?:签到|签个?到|打卡|扫码|扫什么码|扫啥码)(?!.*(?:分|积分))"),
    "bring": re.compile(r"(?:带|拿|准备|备|买)(?:点|些)?(?:什么|啥|哪些|啥子|点啥|东西|什么东西)|自备|要不要带|用不用带|需要带"),
    "where": re.compile(r"哪个?(?:教室|屋|房间|楼|层)|几楼|几层|几号教室|几号房|哪间|教室|在哪|哪里|哪儿|哪块|啥地方|什么地方|地点|地址|咋走|怎么走"),
    "when": re.compile(r"几点|什么时候|啥时候|哪天|几号|周几|星期几|礼拜几|多长时间|多久|到几点"),
    "who": re.compile(r"(?:老师|谁)(?:是谁|讲|教|上|带)|哪个老师|哪位老师|谁讲|谁教|谁上课"),
}
_CLASS_WORDS = re.compile(r"上课|课|班|教室|签到|活动|老师|讲座|培训|夜校")
_NOT_CLASS_ASK = re.compile(r"积分|优惠券|兑换|投诉|反映|报修|坏了|没人管|办证|证明|社保|医保|低保|户口|身份证")


def class_question(text: str) -> str | None:
    """Which fact of a class ``text`` asks about (checkin, bring, where, when, who), or None."""
    text = text.strip()
    if not text or len(text) > 24 or _NOT_CLASS_ASK.search(text) or CANT_COME.search(text):
        return None
    return next((what for what, pattern in _CLASS_ASKED.items() if pattern.search(text)), None)


async def _class_fact(ctx: Context, act: courses.Listing, what: str) -> str:
    place, at = act.place or "社区", when(act.starts_at)
    if what == "bring":
        if act.description and re.search(r"带|自备|准备|提供|借用|借|穿|材料", act.description):
            return TEXTS["class_bring"].format(title=act.title, description=act.description)
        return TEXTS["class_bring_none"].format(title=act.title, when=at, place=place)
    if what == "who" and act.organiser:
        return TEXTS["class_who"].format(title=act.title, organiser=act.organiser, when=at, place=place)
    if what == "when":
        return TEXTS["class_when"].format(title=act.title, when=at, end=clock_time(act.ends_at), place=place)
    key = "class_checkin" if what == "checkin" else "class_where"
    return TEXTS[key].format(title=act.title, when=at, place=place)


def _names_title(text: str, title: str) -> bool:
    """Whether the text names the class (two characters of its title: 书法在哪 → 书法班)."""
    return sum(ch in text for ch in set(title)) >= 2


async def _names_other(ctx: Context, session_id: int) -> bool:
    """The text names a class on the list other than ``session_id`` (花艺课在哪 after booking 书法班).
    The sessions are read when memory no longer holds them (a resident who asks a while later)."""
    now = ctx.rt.clock.now()
    kept = await courses.listings(ctx.rt.db, now, until=now + timedelta(days=366))
    mine = next((x.title for x in kept if x.session_id == session_id), None)
    return any(x.title != mine and _names_title(ctx.text, x.title) for x in kept) and not (
        mine and _names_title(ctx.text, mine))


async def _asked_of_booked(ctx: Context) -> bool:
    """A question of the class just booked (the mark the booking left): 签到在哪, 上课要带什么."""
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != BOOKED or not ctx.text:
        return False
    ctx.extra["class_asked"] = class_question(ctx.text)
    return ctx.extra["class_asked"] is not None and not await _names_other(ctx, int(mark[1].get("session_id", 0)))


@router.message(Func(_asked_of_booked, phase=PHASE_STATE, when=lambda p: p.text and p.mark == BOOKED))
async def booked_class_fact(ctx: Context) -> str:
    session_id = int(ctx.extra["mark"][1].get("session_id", 0))
    act = await courses.listing(ctx.rt.db, session_id, ctx.rt.clock.now())
    if act is None:
        return TEXTS["error_not_found"]
    await ctx.fsm.set(MARK + BOOKED, session_id=session_id)  # more such questions may follow
    return await _class_fact(ctx, act, str(ctx.extra["class_asked"]))


def _asked_of_detail(ctx: Context) -> bool:
    """签到在哪 / 要带什么 while looking at a class's details: about that class."""
    ctx.extra["class_asked"] = class_question(ctx.text or "")
    return ctx.extra["class_asked"] is not None


@router.message(State("courses:detail"), Func(_asked_of_detail, when=lambda p: p.text))
async def detail_class_fact(ctx: Context) -> str:
    act = await courses.listing(ctx.rt.db, int(ctx.fsm.data.get("session_id", 0)), ctx.rt.clock.now())
    if act is None:
        await ctx.fsm.clear()
        return TEXTS["error_not_found"]
    return await _class_fact(ctx, act, str(ctx.extra["class_asked"])) + "\n报名请回复“预约”。"


def _asked_of_a_class(ctx: Context) -> bool:
    """书法班在哪个教室, 明天上课要带什么, 签到在哪: of the resident's booked classes."""
    text = ctx.text or ""
    if ctx.resident is None or (not _CLASS_WORDS.search(text) and not re.search(r"教室|签到", text)):
        return False
    ctx.extra["class_asked"] = class_question(text)
    return ctx.extra["class_asked"] is not None and not NOT_A_CLASS_HOURS.search(text)


# 社区服务中心几点上班 is about office hours, not a class (nor is a flight, 航班).
NOT_A_CLASS_HOURS = re.compile(r"航班|班机|上班|下班|值班|加班|班车|排班|倒班|轮班|早班|晚班|夜班")


@router.message(Func(_asked_of_a_class, phase=PHASE_MENU, when=lambda p: p.text))
async def booked_fact(ctx: Context) -> str | Pass:
    """The booked class the question names (its title), else the next one booked. A class named
    that is not booked goes on to the other handlers (its details); nothing booked: the list."""
    rows = await _mine_rows(ctx)
    # The names the intent engine read, typos put right (书发课啥时候 → 书法), count as said.
    named = getattr(getattr(ctx.understanding, "entities", None), "courses", None) or []
    text, now = " ".join([ctx.text, *named]), ctx.rt.clock.now()
    last = max((b.starts_at for b in rows), default=now)
    upcoming = await courses.listings(ctx.rt.db, now, until=max(last, now + timedelta(days=60)) + timedelta(minutes=1))
    matching = [b for b in rows if _names_title(text, b.title)]
    if not matching and any(_names_title(text, x.title) for x in upcoming):
        return Pass()  # another class named (花艺课在哪): its details, from the other handlers
    if not rows:  # 夜校在哪上课, 签到在哪 with nothing booked: the list says where and when
        return TEXTS["no_booking"] + await whats_on(ctx)
    chosen = (matching or rows)[0]
    found = [x for x in upcoming if x.title == chosen.title and x.starts_at == chosen.starts_at]
    if not found:
        return Pass()
    await ctx.fsm.set(MARK + BOOKED, session_id=found[0].session_id)
    return await _class_fact(ctx, found[0], str(ctx.extra["class_asked"]))


@router.message(Text(*LIST_WORDS, predicate=lambda t: bool(OPEN_LIST.match(t.strip()))))
async def list_courses(ctx: Context) -> str:
    return await whats_on(ctx)


# 班 in 上班/下班/值班/加班/班车/航班 is about working hours, a bus or a flight, not a class (社区服务中心几点上班).
NOT_A_CLASS = re.compile(r"航班|班机|上班|下班|值班|加班|班车|排班|倒班|轮班|早班|晚班|夜班|几点|什么时候|时间|周几|星期几|礼拜几|哪天|几号")


def _names_course(text: str) -> bool:
    text = text.strip()
    return (2 <= len(text) <= 14 and (text.endswith(("课", "课程", "班")) or text.startswith(("预约", "报名")))
            and not NOT_A_CLASS.search(text))


def _only_a_course(ctx: Context) -> bool:
    """The message is a course's name and nothing more (书法 after the list, 花艺吧): the intent
    engine may not be sure what a bare name asks for, but nothing else it could mean is offered."""
    said = _BARE.sub("", ctx.text or "")
    if not 2 <= len(said) <= 8:
        return False  # (before the entities: found on demand, not for every message)
    extractor = getattr(ctx.understanding, "extractor", None)
    if extractor is not None and said not in _named_forms(extractor.courses):
        return False  # the name of no course the entities could hold (谢谢, 查进度): none extracted
    named = getattr(getattr(ctx.understanding, "entities", None), "courses", None) or []
    return any(said in (name, name + "课", name + "班") for name in named)


_BARE = re.compile(r"[\s，,。.!！?？~～]+|(?:的|吧|啊|呀|呢|嘛)$")


@functools.lru_cache(maxsize=4)
def _named_forms(courses: LookupMatcher) -> frozenset[str]:
    """Every course's name the entities can hold (a lookup's), alone or with 课 or 班 after it: what
    :func:`_only_a_course` compares the message with (one set per model: a reload makes another)."""
    return frozenset(name + end for name in courses.names for end in ("", "课", "班"))


@router.message(Func(_only_a_course, phase=PHASE_MENU, when=lambda p: p.text))
async def bare_name(ctx: Context) -> str:
    named = getattr(getattr(ctx.understanding, "entities", None), "courses", None) or []
    for name in named:
        found = await search(ctx, name)
        if found:
            return found
    return TEXTS["not_on"].format(name=named[0]) + await whats_on(ctx)


@router.message(Func(lambda ctx: _names_course(ctx.text), phase=PHASE_MENU, when=lambda p: p.text))
async def by_name(ctx: Context) -> str:
    if BOOK_SAID.match(ctx.text.strip()):  # 预约 / 我要报名 naming no class: which one, from what is on
        return TEXTS["which_to_book"] + await whats_on(ctx)
    found = await search(ctx, ctx.text) or await generic(ctx, ctx.text)
    if found is None and NO_NAME.match(ctx.text.strip()):
        return await whats_on(ctx)  # 我想报名课程: no class named, so none "not found" either
    # Nothing by that name (我想给孩子报个课): what is on, to pick from, rather than a dead end.
    return found or TEXTS["not_found"].format(query=ctx.text.strip()[:14]) + await whats_on(ctx)


# A booking or course asked for without naming one (我想报名课程, 报个班, 我要上课).
NO_NAME = re.compile(r"^(?:我|俺)?(?:想|要)?(?:预约|报名|报|学|上|订|约|选)?(?:个|门|点|一下|一个|一门)?(?:课|课程|班|活动|夜校(?:的)?课?)[吧啊呀呢]?$")


# A class asked about by when it is (书法课什么时候上课, 中医讲座几点开始) is still a class: its details say
# when; only 班 of working hours (几点上班) is not.
@router.message(Intent("course_booking"),
                Func(lambda ctx: ctx.decision != "clarify" and not NOT_A_CLASS_HOURS.search(ctx.text)))
async def course_intent(ctx: Context) -> str:
    if ctx.text:
        found = await search(ctx, ctx.text)
        if found:
            return found
        if NEXT_WEEK.search(ctx.text):
            return await next_week(ctx)
        named = list(getattr(getattr(ctx.understanding, "entities", None), "courses", None) or [])
        for name in named:  # 俺想学个太极拳 有没有: the course it names, else say it is not on
            found = await search(ctx, name)
            if found:
                return found
        if named:
            return TEXTS["not_on"].format(name=named[0]) + await whats_on(ctx)
    return await whats_on(ctx)
