"""How residents answer a question: numbered choices ("回复数字": 1, １, 第一个, 一, 1.), calling it
off (算了, 不报了 …), yes and no, the next page of a list (下一页, 还有吗 …) and phone numbers (digits
or spoken numerals)."""

from __future__ import annotations

import re

_CN = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# The number alone, or said as residents pick from a list: 第二个, 换第二个, 我要第3个, 报第二个吧,
# 就1吧, 选2号, 第一个就行. The verbs are the ones for taking an item of a list (want, choose, redeem,
# sign up, book, look at); a message saying more than that is not a choice.
_PATTERN = re.compile(
    r"^\s*(?P<verb>(?:那|那就|就|嗯|好|我|俺)*\s*"
    r"(?:要|选|想要|想选|就要|选择|换|兑换|报|报名|约|预约|看|看看|听|参加|去)?)\s*"
    r"(?P<nth>第)?\s*([0-9一二两三四五六七八九])\s*(?:个|项|条|号|种|门|张)?\s*"
    r"(?:吧|呗|的|那个|这个|就行|就好|好了|啊|呀|哈|嘛|谢谢)*\s*[.。、,，!！)）~～]?\s*$"
)


def parse_choice(text: str, count: int) -> int | None:
    """The 1-based choice in ``text`` if it is one of ``1..count``, else None."""
    import unicodedata

    match = _PATTERN.match(unicodedata.normalize("NFKC", text or ""))
    if not match:
        return None
    token = match.group(3)
    if token == "两" and match["verb"] and not match["nth"]:
        return None  # 要两个 is how many, not which
    number = int(token) if token.isdigit() else _CN[token]
    return number if 1 <= number <= count else None


def numbered(lines: list[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))


# ------------------------------------------------------------------ other ways residents answer
# "Never mind": 算了, 不报了, 不用了, 先不报了, 取消 … alone or with a little filler (那就算了吧, 算了不报了),
# or with the reason (算了我自己找人修了, 不用了已经好了).
_CANCEL = re.compile(
    r"^(?:那|那就|就|哦|噢|嗯|呃|好|好吧|还是)*(?:先|暂时|我)?"
    r"(?:算了|取消|不报了|不用了|不要了|不弄了|不反映了|不投诉了|不说了|不办了|不需要了|不搞了|没事了|撤销|撤回|"
    r"不想报了|不想反映了|不想投诉了|不想弄了|(?:等会|等一会|等一下|回头|以后|下次|改天|过两天)再说)"
    r"(?:吧|了|啦|哈|啊|呀|嘛|谢谢|谢谢你|谢了|不报了|不用了|不反映了|不说了|取消吧|取消了|先这样|下次再说|以后再说|再说吧|回头再说"
    r"|(?:我|俺)?(?:们|家)?自己(?:找人|去|来)?(?:修|弄|处理|解决|搞|办)(?:好)?|已经好了|已经修好了|修好了|好了)*$"
)
_FILLER = re.compile(r"[\s,，.。!！~～、…]+")
_CN_DIGIT = str.maketrans("零〇一二三四五六七八九幺两", "0012345678912")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d{9})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[-\s](\d{7,8})(?!\d)")
_LANDLINE_COMPACT = re.compile(r"(?<!\d)(01\d|02\d|0[3-9]\d{2})(\d{7,8})(?!\d)")
_LOCAL = re.compile(r"(?<!\d)([2-9]\d{6,7})(?!\d)")


def is_cancel(text: str) -> bool:
    """The resident calls off what is going on (算了, 不报了, 不用了, 先不报了, 取消 …)."""
    compact = _FILLER.sub("", text or "")
    return bool(compact) and len(compact) <= 14 and _CANCEL.match(compact) is not None


# Yes and no as residents say them to a question (确认兑换吗？ 要排队候补吗？ 您符合条件吗？): 嗯, 对, 好的,
# 行, 可以, 是的吧, 嗯嗯好的 … and 不, 不是的, 不用了, 算了 …, with a little filler. What the question
# itself names (候补, 确认取消) stays each step's own word.
_YES = re.compile(
    r"^(?:那|那就|就)?(?:(?:是|是的|是滴|对|对的|对头|嗯|嗯嗯|恩|好|好的|好滴|好嘞|行|行的|可以|可以的|中|成|没问题|确认|确定|同意|要|要的"
    r"|ok|okay|yes)(?:吧|啊|呀|的|呢|哈|嘛|了|哦|噢|谢谢)*)+$"
)
_NO = re.compile(
    r"^(?:那|那就|嗯|哦|噢)?(?:(?:不|不是|不是的|不对|否|没有|不要|不用|不了|不行|算了|先不|先不用|先不了|不需要|别|别了|no"
    r"|(?:先)?不(?:换|兑换|排|排队|候补|报|报名|约|预约|取消|去)|不想(?:换|排|报|去)?)"
    r"(?:吧|啊|呀|的|了|啦|哈|嘛|谢谢)*)+$"
)


def _said(text: str) -> str:
    import unicodedata

    return _FILLER.sub("", unicodedata.normalize("NFKC", text or "").lower())


def is_yes(text: str) -> bool:
    """The answer to a yes-or-no question is yes (是, 嗯, 对的, 好的, 行, 可以, 确认 …)."""
    said = _said(text)
    return 0 < len(said) <= 8 and _YES.match(said) is not None


def is_no(text: str) -> bool:
    """The answer to a yes-or-no question is no (不, 不是的, 不用了, 不要, 算了, 先不了 …)."""
    said = _said(text)
    return 0 < len(said) <= 8 and _NO.match(said) is not None


# "Show me more" at a list that pages (回复“下一页”), as residents say it: 下一页, 更多, 还有吗, 后面的呢,
# 继续 …, with a little filler. One list for every list: the mall, 查进度, a list shown whole.
_PAGE = re.compile(
    r"^(?:那|嗯|好|再)?(?:下一页|下页|下一批|翻页|往下翻|往后翻|更多|更多的|还有更多吗|还有吗|还有呢|还有没有|还有别的吗"
    r"|后面的|后面还有吗|继续|接着看|还有)(?:吧|啊|呀|呢|哈|嘛|的)*$"
)


def is_page_word(text: str) -> bool:
    """The resident asks for the next page of a list (下一页, 更多, 还有吗, 后面的呢, 继续 …)."""
    said = _said(text).rstrip("?")
    return 0 < len(said) <= 8 and _PAGE.match(said) is not None


def parse_phone(text: str) -> str | None:
    """A phone number in the answer: a mobile (13812345678, 138 1234 5678, +86…), a landline with
    its area code (010-62345678) or a local 7–8 digit number; digits may be spoken as Chinese
    numerals (voice: 一三八一二三四五六七八 …)."""
    import unicodedata

    plain = unicodedata.normalize("NFKC", text or "").translate(_CN_DIGIT)
    compact = re.sub(r"(?<=\d)[\s-](?=\d)", "", plain)
    m = _MOBILE.search(compact) or _LANDLINE.search(plain) or _LANDLINE_COMPACT.search(compact) or _LOCAL.search(compact)
    return "-".join(g for g in m.groups() if g) if m else None


_NOT_PHONE = re.compile(r"[\d一二三四五六七八九零〇幺两+\-－()（）]|我的|电话|手机|号码|联系|方式|是|留|个|吧|[\W_]")


def phone_alone(text: str) -> str | None:
    """The phone number when the message is nothing but one ("13812345678", "我的电话是138…吧"):
    None when there is no number or the message says more than that."""
    compact = re.sub(r"\s+", "", text or "")
    number = parse_phone(compact)
    return None if number is None or _NOT_PHONE.sub("", compact) else number
