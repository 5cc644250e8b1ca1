"""The points mall in the chat: browse coupons (paged, numbered, by category), redeem by number or
name with a confirmation, receive a code, list "my coupons".

After a redemption the passive reply is the text with the code; an image message with a QR code of
it is queued with the reply (``services/coupons.py:queue_qr_in``) and the outbox worker makes and
uploads the image when it sends it, off the reply's path. If that fails the resident still has the
text code.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from typing import Any

from bot.handler.choices import is_cancel, is_no, is_page_word, is_yes, parse_choice
from bot.handler.context import Context
from bot.handler.middlewares import MARK
from bot.handler.router import PHASE_MENU, Func, Intent, Router, State, Text
from bot.services import coupons, points

router = Router("coupons")
log = logging.getLogger(__name__)

PAGE = 5

TEXTS = {
    "list_head": "积分商城{category}（您有{balance}积分）：",
    "item": "{n}. {title}（{merchant}）{price}积分，剩{stock}张",
    "list_tail": "回复数字查看并兑换{more}；回复“餐饮”“理发”“超市”“交通”按类别看。",
    # Which of the listed coupons the resident's points reach (elderly residents ask 我积分够换啥).
    "affordable": "您的积分够换第{numbers}项。",
    "affordable_none": "您的积分还不够换这几项，发“怎么赚积分”看看怎么攒。",
    "more": "，回复“下一页”看更多",
    "empty": "积分商城{category}暂时没有可兑换的优惠券，过几天再来看看吧。",
    "no_more": "已经是最后一页了。回复数字查看并兑换。",
    "confirm": (
        "「{title}」\n商家：{merchant}{address}\n需要{price}积分（您有{balance}积分）\n"
        "有效期至{until}\n{terms}每人限换{limit}张。\n\n确认兑换请回复“确认”，不换了回复“取消”。"
    ),
    "short": (
        "「{title}」\n商家：{merchant}{address}\n需要{price}积分，您现在有{balance}积分，还差{missing}积分，暂时换不了。\n"
        "发送“怎么赚积分”看看怎么获得，回复“积分商城”看看别的。"
    ),
    "not_found": "没找到“{query}”这样的优惠券。回复“积分商城”看看都有哪些。",
    "how_to_use": "到券上写的商家，结账前出示券码（兑换时发给您的二维码也行）就能用，一张券用一次。发送“我的券”可以看券码和有效期。",
    "choose": "找到几张相关的优惠券：",
    "redeemed": "兑换成功！\n「{title}」券码：{code}\n到{merchant}出示这个券码就能用，有效期至{until}。\n扣{price}积分，还剩{balance}积分。\n发送“我的券”可以随时查看。",
    "redeemed_again": "这张券刚才已经兑换好了，券码：{code}，不会重复扣积分。",
    "error_sold_out": "不好意思，「{title}」刚刚被换完了。看看别的吧，回复“积分商城”。",
    "error_points": "积分不够哦：需要{price}积分，您现在有{balance}积分。发送“怎么赚积分”看看怎么获得。",
    "error_limit": "这张券每人限换{limit}张，您已经换过了。发送“我的券”查看。",
    "error_ended": "这张券已经过了兑换期。",
    "error_not_started": "这张券还没开始兑换，请过几天再来。",
    "error_not_found": "这张券已经下架了。回复“积分商城”看看别的。",
    "cancelled": "好的，不换了，积分没有变化。",
    "left": "好的，先不换了。想换的时候发“积分商城”就行。",
    "confirm_again": "确认兑换请回复“确认”，不换了回复“取消”。",
    "mine_head": "我的优惠券：",
    "mine_item": "{n}. {title}（{merchant}）券码 {code}  {status}",
    "mine_empty": "您还没有兑换过优惠券。回复“积分商城”看看能换什么。",
    "use_head": "您手上能用的券：",
    "use_item": "「{title}」到{merchant}{address}出示券码 {code}，有效期至{until}",
    "use_rule": "结账前出示券码（兑换时发给您的二维码也行）就能用，一张券用一次。",
    "how_to_use_none": "优惠券要先用积分兑换，回复“积分商城”挑一张。换到后到券上写的商家，结账前出示券码就能用。",
    # 券啥时候过期 / 能用到哪天: each held coupon's last day, and what happens after it.
    "expiry_head": "您的优惠券有效期：",
    "expiry_item": "{n}. {title}（{merchant}）{status}",
    "expiry_none": "您还没有兑换过优惠券。每张券的有效期在兑换时会告诉您，换到后发“我的券”也能查看。",
    "expiry_refund": "到期没用的券会自动作废，积分退还给您。",
    "expiry_no_refund": "到期没用的券就作废了，积分不退，记得在有效期内用。",
    "status_issued": "可使用，至{until}",
    "status_used": "已于{used}使用",
    "status_expired": "已过期",
}

CATEGORY_WORDS = {c: c for c in coupons.CATEGORIES} | {
    "吃饭": "餐饮",
    "美发": "理发",
    "剪头": "理发",
    "坐车": "交通",
}
MALL_WORDS = (
    "积分商城",
    "积分兑换",
    "兑换",
    "换券",
    "优惠券",
    "商城",
    "积分换什么",
    "能换什么",
    "积分能换什么",
)
# What names no coupon in particular (换张券, 兑换优惠券 once the asking words are gone).
ANY_COUPON = ("券", "优惠券", "卡券", "代金券", "积分券", "东西", "点东西", "个东西", "礼品", "奖品")
MINE_WORDS = ("我的券", "我的优惠券", "我的卡券", "券码", "我的兑换")
# The resident's own coupons asked for in other words: 我的券呢, 我换的券在哪看, 券在哪儿找.
_COUPON = r"(?:券|优惠券|卡券|代金券|券码)"
_WHERE = r"(?:呢|在哪[儿里]?(?:看|找|查)?|哪去了|哪儿去了|放哪了|怎么(?:看|找|查)|去哪(?:看|找|查)|在什么地方)"
MINE = re.compile(
    rf"^(?:看看|查查?|查一下)?(?:我|俺)(?:的|换的|兑换的|换过的|领的|刚换的|刚才换的)?{_COUPON}{_WHERE}?(?:呀|啊|了)?[?？]?$"
    rf"|^(?:我|俺)?(?:换的|兑换的|换过的|领的|刚换的)?(?:那张|那个)?{_COUPON}{_WHERE}(?:呀|啊|了)?[?？]?$"
)
# A bare 怎么用 (咋用, 怎么使用) or where (在哪用, 去哪个店用, 哪里能用): how and where a coupon is
# used, for a resident holding one.
BARE_HOW_TO_USE = re.compile(
    r"^(?:这个|这张|那个|那张)?券?(?:(?:怎么|咋|如何|怎样)(?:用|使用)"
    r"|(?:在|去|到)?(?:哪|哪里|哪儿|哪个店|哪家店?|哪个商家|什么地方|啥地方)(?:能|可以)?(?:用|使用))"
    r"(?:呢|啊|呀|哦)?[?？]?$"
)
YES = ("确认", "确定", "是", "是的", "好", "好的", "兑换", "换", "确认兑换", "要", "1")
NO = ("取消", "不要", "不换", "不换了", "算了", "不了", "否", "不", "2")


def _day(when: object) -> str:
    from datetime import datetime

    assert isinstance(when, datetime)
    local = when.astimezone(points.rules().tz)
    return f"{local.year}年{local.month}月{local.day}日"


def _time(when: object) -> str:
    from datetime import datetime

    assert isinstance(when, datetime)
    local = when.astimezone(points.rules().tz)
    return f"{local.month}月{local.day}日{local:%H:%M}"


def _shown(ctx: Context, shown: points.Statement) -> int:
    """The balance to show; a registration reward shown for the first time is written with the reply."""
    if shown.pending and ctx.resident is not None and not ctx.extra.get("welcome_written"):
        ctx.extra["welcome_written"] = True
        ctx.with_reply(points.registration_writer(ctx.resident.id, ctx.rt.clock.now()))
    return shown.balance


async def _balance(ctx: Context) -> int:
    """The balance, with the one-off welcome points (as 查积分 shows it: the same figure everywhere)."""
    if ctx.resident is None:
        return 0
    return _shown(ctx, await points.statement(ctx.rt.db, ctx.resident.id, ctx.rt.clock.now()))


async def _shop(ctx: Context, category: str | None = None) -> tuple[list[coupons.Offer], points.Statement | None]:
    """The catalogue and the resident's points, read together."""
    now = ctx.rt.clock.now()
    if ctx.resident is None:
        return await coupons.offers(ctx.rt.db, now, category), None
    return await coupons.shop(ctx.rt.db, now, ctx.resident.id, category)


async def show_page(
    ctx: Context,
    category: str | None,
    page: int,
    items: list[coupons.Offer] | None = None,
    shown: points.Statement | None = None,
) -> str:
    """A page of the mall; ``items`` (and ``shown``): the whole catalogue (and the resident's
    points) when the caller has just read them."""
    if items is None:
        items, shown = await _shop(ctx, category)
    label = f"·{category}" if category else ""
    if not items:
        await ctx.fsm.clear()
        return TEXTS["empty"].format(category=label)
    pages = (len(items) + PAGE - 1) // PAGE
    page = min(max(page, 0), pages - 1)
    shown_items = items[page * PAGE : (page + 1) * PAGE]
    balance = _shown(ctx, shown) if shown is not None else await _balance(ctx)
    lines = [TEXTS["list_head"].format(category=label, balance=balance)]
    for n, o in enumerate(shown_items, 1):
        lines.append(TEXTS["item"].format(n=n, title=o.title, merchant=o.merchant, price=o.price, stock=o.stock))
    reach = _within_reach(shown_items, balance)
    if reach:
        lines.append(reach)
    lines.append(TEXTS["list_tail"].format(more=TEXTS["more"] if page + 1 < pages else ""))
    await ctx.fsm.set("coupons:browse", category=category, page=page, ids=[o.id for o in shown_items])
    return "\n".join(lines)


def _within_reach(listed: list[coupons.Offer], balance: int) -> str | None:
    """Which listed coupons the balance reaches, when that is news: not when it reaches them all."""
    reached = [str(n) for n, o in enumerate(listed, 1) if o.price <= balance and o.stock > 0]
    if len(reached) == len(listed):
        return None
    return TEXTS["affordable"].format(numbers="、".join(reached)) if reached else TEXTS["affordable_none"]


async def offer(ctx: Context, coupon: coupons.Offer, shown: points.Statement | None = None) -> str:
    balance = _shown(ctx, shown) if shown is not None else await _balance(ctx)
    details = dict(
        title=coupon.title,
        merchant=coupon.merchant,
        address=f"（{coupon.merchant_address}）" if coupon.merchant_address else "",
        price=coupon.price,
        balance=balance,
        until=_day(coupon.valid_until),
        terms=f"使用说明：{coupon.terms}\n" if coupon.terms else "",
        limit=coupon.per_resident_limit,
    )
    if balance < coupon.price:  # no confirmation asked for what cannot be had
        await ctx.fsm.clear()
        return TEXTS["short"].format(missing=coupon.price - balance, **details)
    await ctx.fsm.set("coupons:confirm", coupon_id=coupon.id, request_key=secrets.token_hex(8))
    return TEXTS["confirm"].format(**details)


async def find(
    ctx: Context, query: str, items: list[coupons.Offer] | None = None, shown: points.Statement | None = None
) -> str | None:
    """Offer the coupon ``query`` names (fuzzy); a short numbered list when several fit."""
    if items is None:
        items, shown = await _shop(ctx)
    found = coupons.match_offers(query, items)
    if not found:
        return None
    if len(found) == 1 or query.strip() in (found[0].title,):
        return await offer(ctx, found[0], shown)
    listed = found[:PAGE]
    lines = [TEXTS["choose"]]
    for n, o in enumerate(listed, 1):
        lines.append(TEXTS["item"].format(n=n, title=o.title, merchant=o.merchant, price=o.price, stock=o.stock))
    lines.append(TEXTS["list_tail"].format(more=""))
    await ctx.fsm.set("coupons:browse", category=None, page=0, ids=[o.id for o in listed], search=True)
    return "\n".join(lines)


def _category_of(text: str) -> str | None:
    text = text.strip().removesuffix("类").removesuffix("的").removesuffix("券")
    return CATEGORY_WORDS.get(text)


# 换吧, 嗯 换吧, 那就兑换吧, 好 换了: yes to "确认兑换吗", said with the question's own word.
_REDEEM_YES = re.compile(r"^(?:那|那就|就|嗯|嗯嗯|好|好的|行|可以|对)*(?:换|兑换|确认兑换|换一张|换这个|要这个)(?:吧|了|啊|呀|呗|哈)*$")


def _says_yes(text: str) -> bool:
    return is_yes(text) or _REDEEM_YES.match(re.sub(r"[\s,，.。!！~～、]+", "", text)) is not None


@router.message(State("coupons:confirm"), Text(*YES, predicate=_says_yes))
async def confirm(ctx: Context) -> str:
    data = dict(ctx.fsm.data)
    if ctx.resident is None or "coupon_id" not in data:
        await ctx.fsm.clear()
        return TEXTS["error_not_found"]
    db, resident_id, coupon_id = ctx.rt.db, ctx.resident.id, int(data["coupon_id"])
    request_key, openid, now = f"chat:{ctx.resident.id}:{data.get('request_key')}", ctx.openid, ctx.rt.clock.now()
    await ctx.fsm.clear()

    def redeem(connection: Any) -> str:
        """In the reply's transaction: the coupon is issued exactly when this answer is stored."""
        try:
            result = coupons.redeem_with_reply(
                connection, db, resident_id=resident_id, coupon_id=coupon_id, request_key=request_key, now=now,
                qr_to=openid,
            )  # fmt: skip
        except coupons.CouponError as exc:
            coupon = coupons.offer_in(connection, db, coupon_id, now)
            return TEXTS[f"error_{exc.code}"].format(
                title=coupon.title if coupon else "",
                price=exc.info.get("price", coupon.price if coupon else 0),
                balance=exc.info.get("balance", 0),
                limit=exc.info.get("limit", coupon.per_resident_limit if coupon else 1),
            )
        if not result.created:
            return TEXTS["redeemed_again"].format(code=result.issued.code)
        return TEXTS["redeemed"].format(
            title=result.coupon.title,
            code=result.issued.code,
            merchant=result.merchant.name,
            until=_day(result.issued.expires_at),
            price=result.issued.points,
            balance=result.balance,
        )

    return ctx.reply_in(redeem)


@router.message(State("coupons:confirm"), Text(*NO, predicate=lambda t: is_no(t) or is_cancel(t)))
async def decline(ctx: Context) -> str:
    await ctx.fsm.clear()
    return TEXTS["cancelled"]


# At the confirmation, another coupon asked for instead (等一下 我换个超市的吧, 不要这个了 还是要理发那个):
# that one is offered, the first one not redeemed.
_SWITCH_LEAD = re.compile(r"^(?:等一下|等等|等会儿?|算了|不对|哦|噢|呃|唉|嗯)?[\s,，。.!！]*(?:不要这个了?|不换这个了?)?"
                          r"[\s,，。.!！]*(?:那|那就)?(?:我|俺)?(?:还是)?")


async def _other_named(ctx: Context) -> bool:
    text = ctx.text.strip()
    named = _POINTING.sub("", _SWITCH_LEAD.sub("", text))
    if not 2 <= len(text) <= 20 or not 2 <= len(named) <= 12 or named == text:
        return False  # a coupon's kind or name alone is no switch: asked again below
    listed = await coupons.offers(ctx.rt.db, ctx.rt.clock.now())
    kind = _category_of(named)
    found = [o for o in listed if o.category == kind] if kind else coupons.match_offers(named, listed, threshold=80)
    others = [o for o in found if o.id != ctx.fsm.data.get("coupon_id")]
    if len(others) != 1:
        return False
    ctx.extra["coupon_named"] = others[0].id
    return True


async def _offer_named(ctx: Context) -> str:
    """The coupon a filter found named (``coupon_named``), offered for confirmation."""
    coupon = await coupons.offer(ctx.rt.db, int(ctx.extra["coupon_named"]), ctx.rt.clock.now())
    if coupon is None:
        return TEXTS["error_not_found"]
    return await offer(ctx, coupon)


@router.message(State("coupons:confirm"), Func(_other_named, when=lambda p: p.text))
async def switch_offer(ctx: Context) -> str:
    return await _offer_named(ctx)


# The mark of a reply listing the resident's coupons (or saying there are none): 怎么用 next is
# asked of coupons.
MINE_SHOWN = "coupons:mine"


def _status(held: coupons.Held, now: datetime) -> str:
    """A held coupon's state as the resident reads it: used when, expired, or usable until when."""
    if held.status == "used" and held.used_at is not None:
        return TEXTS["status_used"].format(used=_time(held.used_at))
    if held.status == "expired" or held.expires_at <= now:
        return TEXTS["status_expired"]
    return TEXTS["status_issued"].format(until=_day(held.expires_at))


@router.message(Text(*MINE_WORDS, predicate=lambda t: len(t) <= 16 and MINE.match(t.strip()) is not None))
async def mine(ctx: Context) -> str:
    if ctx.fsm.state is None:
        await ctx.fsm.set(MARK + MINE_SHOWN)
    if ctx.resident is None:
        return TEXTS["mine_empty"]
    rows = await coupons.held_by(ctx.rt.db, ctx.resident.id)
    if not rows:
        return TEXTS["mine_empty"]
    now = ctx.rt.clock.now()
    lines = [TEXTS["mine_head"]]
    for n, held in enumerate(rows, 1):
        lines.append(
            TEXTS["mine_item"].format(
                n=n, title=held.title, merchant=held.merchant, code=held.code, status=_status(held, now)
            )
        )
    return "\n".join(lines)


@router.message(State("coupons:browse"), Func(lambda ctx: is_cancel(ctx.text)))
async def leave_mall(ctx: Context) -> str:
    """算了 / 不要了 at the mall's list: nothing is being redeemed, so only a word back."""
    await ctx.fsm.clear()
    return TEXTS["left"]


@router.message(State("coupons:browse"), Text(predicate=is_page_word))
async def next_page(ctx: Context) -> str:
    data = ctx.fsm.data
    if data.get("search"):
        return TEXTS["no_more"]
    category, page = data.get("category"), int(data.get("page", 0)) + 1
    items, shown = await _shop(ctx, category if isinstance(category, str) else None)
    if items and page * PAGE >= len(items):
        return TEXTS["no_more"]  # the last page stays open: a number still picks from it
    return await show_page(ctx, category if isinstance(category, str) else None, page, items, shown)


def _picked(ctx: Context) -> bool:
    return parse_choice(ctx.text, len(ctx.fsm.data.get("ids", []))) is not None


@router.message(State("coupons:browse"), Func(_picked))
async def pick(ctx: Context) -> str:
    ids = list(ctx.fsm.data.get("ids", []))
    choice = parse_choice(ctx.text, len(ids))
    assert choice is not None
    coupon = await coupons.offer(ctx.rt.db, int(ids[choice - 1]), ctx.rt.clock.now())
    if coupon is None:
        return TEXTS["error_not_found"]
    return await offer(ctx, coupon)


# A listed coupon named the way residents point at it: 我要老年餐那个, 换理发的, 超市那张.
_POINTING = re.compile(
    r"^(?:那|那就|就|嗯|好)*(?:我|俺)?(?:就)?(?:要|想要|想换|换|兑换|选|来)?(?:一张|一个|个|张)?(?:那个|这个)?"
    r"|(?:那个|这个|那张|这张|那种|的|吧|呗|啊|呀|券)+$"
)


async def _listed_named(ctx: Context) -> bool:
    """The message names exactly what one of the listed coupons is (kept for :func:`pick_named`)."""
    ids = [int(i) for i in ctx.fsm.data.get("ids", [])]
    named = _POINTING.sub("", ctx.text.strip())
    if not ids or not 2 <= len(named) <= 12:
        return False
    kind = _category_of(named)
    if kind is not None and named == ctx.text.strip():
        return False  # 理发 alone: that part of the mall (回复“理发”按类别看)
    listed = [o for o in await coupons.offers(ctx.rt.db, ctx.rt.clock.now()) if o.id in ids]
    if kind is not None:  # 超市那个, 理发的那张: the one listed coupon of that kind, if only one is
        of_kind = [o for o in listed if o.category == kind]
        found = of_kind if len(of_kind) == 1 else []
    else:
        found = coupons.match_offers(named, listed, threshold=80)
    if not found:
        return False
    ctx.extra["coupon_named"] = found[0].id
    return True


@router.message(State("coupons:browse"), Func(_listed_named, when=lambda p: p.text))
async def pick_named(ctx: Context) -> str:
    return await _offer_named(ctx)


def _category_in_browse(text: str) -> str | None:
    """A category said at the mall's list, alone (理发, 餐饮类) or pointed at (超市那些, 吃饭的)."""
    return _category_of(text) or _category_of(_POINTING.sub("", text.strip()))


@router.message(State("coupons:browse"), Func(lambda ctx: _category_in_browse(ctx.text) is not None))
async def by_category_in_browse(ctx: Context) -> str:
    return await show_page(ctx, _category_in_browse(ctx.text), 0)


# A category the mall's list offers (回复“餐饮”“理发”…) sent with no list open: that part of the mall.
def _bare_category(ctx: Context) -> bool:
    return ctx.fsm.state is None and ctx.text.strip() in LISTED_CATEGORIES


LISTED_CATEGORIES = ("餐饮", "理发", "超市", "交通")


@router.message(Func(_bare_category, phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def by_category(ctx: Context) -> str:
    ctx.intent = "coupon"
    return await show_page(ctx, ctx.text.strip(), 0)


@router.message(Text(*MALL_WORDS))
async def mall(ctx: Context) -> str:
    return await show_page(ctx, None, 0)


# "What can I get?" said at the mall or anywhere (能换个啥, 我能换什么, 换点啥): the mall.
CAN_GET = re.compile(
    r"^(?:我|俺)?(?:的)?(?:这些|这点)?(?:积分|分)?(?:能|可以|还能|够|能够|够不够)?换(?:个|点|些)?(?:啥|什么|哪些|哪个)(?:呀|啊|呢|东西)?[?？]?$"
)
# How a coupon is used (这个券咋用, 优惠券怎么使用).
HOW_TO_USE = re.compile(r"券.{0,4}(?:怎么|咋|如何|怎样)(?:用|使用|花)|(?:怎么|咋|如何|怎样)(?:用|使用).{0,4}券")
# What a redemption request says besides the coupon's name (换那个理发的 → 理发).
_REQUEST_WORDS = re.compile(r"^(?:我|俺)?(?:要|想)?(?:兑换|换)(?:一张|一个|个|张)?(?:那个|这个|那张|这张)?|(?:的|吧|啊|呀)+$")


@router.message(Text(predicate=lambda t: bool(CAN_GET.match(t.strip()))))
async def can_get(ctx: Context) -> str:
    return await show_page(ctx, None, 0)


@router.message(Text(predicate=lambda t: len(t) <= 20 and bool(HOW_TO_USE.search(t))))
async def how_to_use(ctx: Context) -> str:
    return await _use_answer(ctx, TEXTS["how_to_use"])


# How long a coupon lasts (这券啥时候过期, 我的券能用到哪天, 券有效期多久, 过期了咋办): asked of the
# coupons the resident holds; with 券 in it, or right after 我的券 without.
_EXPIRY = re.compile(
    r"过期|到期|有效期|失效|作废|能用到|用到(?:几号|哪天|哪一天|什么时候|啥时候|多会儿)|(?:能|可以)用(?:多久|多长时间|几天)"
)


def _asks_expiry(ctx: Context) -> bool:
    text = ctx.text.strip()
    if len(text) > 20 or not _EXPIRY.search(text):
        return False
    mark = ctx.extra.get("mark")
    return "券" in text or bool(mark and mark[0] == MINE_SHOWN)


@router.message(Func(_asks_expiry, phase=PHASE_MENU, when=lambda p: p.text))
async def expiry(ctx: Context) -> str:
    rows = [] if ctx.resident is None else await coupons.held_by(ctx.rt.db, ctx.resident.id)
    if not rows:
        return TEXTS["expiry_none"]
    now = ctx.rt.clock.now()
    lines = [TEXTS["expiry_head"]]
    for n, held in enumerate(rows, 1):
        lines.append(TEXTS["expiry_item"].format(n=n, title=held.title, merchant=held.merchant, status=_status(held, now)))
    lines.append(TEXTS["expiry_refund"] if points.rules().refund_expired_coupons else TEXTS["expiry_no_refund"])
    return "\n".join(lines)


async def _holds_usable(ctx: Context) -> bool:
    """怎么用 / 在哪用 from a resident holding a coupon still to be used: asked of that coupon
    (券怎么用, which names the coupon, is :func:`how_to_use`)."""
    if not BARE_HOW_TO_USE.match(ctx.text.strip()):
        return False
    mark = ctx.extra.get("mark")
    if mark and mark[0] == MINE_SHOWN:
        return True  # right after 我的券: asked of coupons, held or not
    if ctx.resident is None:
        return False
    now = ctx.rt.clock.now()
    return any(h.status == "issued" and h.expires_at > now for h in await coupons.held_by(ctx.rt.db, ctx.resident.id))


@router.message(Func(_holds_usable, phase=PHASE_MENU, when=lambda p: p.text))
async def how_to_use_held(ctx: Context) -> str:
    return await _use_answer(ctx, TEXTS["how_to_use_none"])


async def _use_answer(ctx: Context, holding_none: str) -> str:
    """Each coupon the resident can still use: where (the merchant and its address), its code and
    its last day; then how. ``holding_none`` for a resident who never redeemed one."""
    held = [] if ctx.resident is None else await coupons.held_by(ctx.rt.db, ctx.resident.id)
    if not held:
        return holding_none
    now = ctx.rt.clock.now()
    usable = [h for h in held if h.status == "issued" and h.expires_at > now]
    if not usable:
        return TEXTS["how_to_use"]
    lines = [] if len(usable) == 1 else [TEXTS["use_head"]]
    for h in usable[:PAGE]:
        address = f"（{h.address}）" if h.address else ""
        lines.append(TEXTS["use_item"].format(
            title=h.title, merchant=h.merchant, address=address, code=h.code, until=_day(h.expires_at)
        ))
    lines.append(TEXTS["use_rule"])
    return "\n".join(lines)


# 换个中医的课, 换成书法班: a class asked for, not a coupon.
_CLASS_NAMED = re.compile(r"课|班|讲座|培训|夜校")


def _names_coupon(text: str) -> bool:
    text = text.strip()
    return (
        2 <= len(text) <= 20
        and (text.endswith("券") or text.startswith(("兑换", "我要换", "换")))
        and not (_CLASS_NAMED.search(text) and not text.endswith("券"))
    )


@router.message(Func(lambda ctx: _names_coupon(ctx.text), phase=PHASE_MENU, when=lambda p: p.text))
async def by_name(ctx: Context) -> str:
    named = _REQUEST_WORDS.sub("", ctx.text.strip())
    if named in MALL_WORDS or named in ANY_COUPON:
        return await show_page(ctx, None, 0)  # 兑换优惠券, 换张券: no coupon named, the mall
    found = await find(ctx, ctx.text)
    if found is None and named and named != ctx.text.strip():
        found = await find(ctx, named)
    return found or TEXTS["not_found"].format(query=(named or ctx.text.strip())[:20])


@router.message(Intent("coupon"), Func(lambda ctx: ctx.decision != "clarify"))
async def coupon_intent(ctx: Context) -> str:
    items, shown = await _shop(ctx)  # read once for both
    if ctx.text:
        found = await find(ctx, ctx.text, items, shown)
        if found:
            return found
    return await show_page(ctx, None, 0, items, shown)
