"""A message read as the resident meant it, before it is understood.

Two slips of everyday typing that the intent engine and the flows should not have to know about:

- 券 typed as a character of the same sound (卷, 劵, 倦: 我想换个理发的卷, 我的劵) where the message is
  about coupons. 劵 is hardly ever anything else; 卷 and 倦 are words of their own (卷帘门, 卷发, 花卷,
  试卷, 疲倦), so they are read as 券 only in a message about coupons, and only where no such word
  can be meant: not after 花, 试, 疲 …, and not before a character that would make one (卷发, 卷子).
- An aside in front of the question ("等一下 我先问问积分", "稍等，我先看看我的券"): the question is
  what the rest says ("积分", "我的券").
"""

from __future__ import annotations

import re

from bot.handler.choices import is_cancel

_QUAN = re.compile(r"[卷劵倦]")
# The message speaks of coupons: redeeming, the mall, points, a merchant's kind of coupon.
_COUPON_CUE = re.compile(
    r"换|兑|领|抢|积分|优惠|代金|抵用|打折|\d折|满\d+减|减\d+|理发|剪头|美发|超市|餐|商城|商家|码|我的|几张|一张"
)
# 卷/倦 after these is a word of its own: 花卷 春卷 试卷 答卷 考卷 胶卷 蛋卷 书卷 画卷 烫卷 席卷 龙卷 案卷
# 手卷 疲倦 厌倦 困倦 开卷 被卷.
_WORD_BEFORE = frozenset("花春试答考胶蛋书画烫席龙案手疲厌困开被铺烟")
# After 券 in a coupon message: the end, punctuation, a particle or a verb (券怎么用, 券码, 卷了吗);
# any other character may make a word with 卷 (卷发, 卷子, 卷帘门, 卷走).
_AFTER = re.compile(r"[了吗呢吧啊呀么嘛哦呗怎咋能可还在有用码给是不没就都和跟要换兑领过到哪呐咯]")

_HOLD = r"(?:等一下|等一等|等等|等会儿?|等下|稍等(?:一下)?|慢着|先等等|先别急)"
_ASK = r"(?:问问|问一下|问下|问个事|打听一下|打听下|咨询一下|看看|看一下|查查|查一下|查下)"
# An aside, then the question: 等一下 我先问问积分 / 等等，先查查我的券 / 我先问问积分.
_ASIDE = re.compile(
    rf"^(?:{_HOLD}[\s,，。.！!~～、…]*(?:(?:我|俺)?(?:先|还)?{_ASK}|(?:我|俺)?先)?|(?:我|俺)?先{_ASK})[\s,，:：。.、]*"
)


def _coupon_typos(text: str) -> str:
    if not _QUAN.search(text) or not _COUPON_CUE.search(text):
        return text
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch not in "卷劵倦":
            continue
        if ch != "劵":
            before = chars[i - 1] if i else ""
            after = chars[i + 1] if i + 1 < len(chars) else ""
            if before in _WORD_BEFORE or (after and "\u4e00" <= after <= "\u9fff" and not _AFTER.match(after)):
                continue
        chars[i] = "券"
    return "".join(chars)


def _aside(text: str) -> str:
    match = _ASIDE.match(text)
    if match is None or not match.group(0).strip() or is_cancel(text):  # 等会再说 calls it off
        return text
    rest = text[match.end():].strip()
    return rest if len(re.sub(r"\W+", "", rest)) >= 2 else text


def as_meant(text: str) -> str:
    """``text`` with these slips read as meant (the same text when there are none)."""
    if not text:
        return text
    return _aside(_coupon_typos(text))
