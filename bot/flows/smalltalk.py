"""Greetings, thanks and chit-chat: a warm word, and what the assistant can do; the date and the
time when asked (elderly residents ask 今天几号), and the weather said plainly not to be known."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.flows.handoff import ASKED, answer_when
from bot.flows.help import menu, shown
from bot.flows.reports import FILED, URGENT
from bot.handler.choices import is_page_word, is_yes
from bot.handler.context import Context
from bot.handler.middlewares import MARK
from bot.handler.router import PHASE_MENU, PHASE_STATE, Func, Intent, Router
from bot.services import handoff
from bot.services.office import CHINA

router = Router("smalltalk")

TEXTS = {
    "thanks": "不客气！还有什么需要帮忙的，随时跟我说。",
    "bye": "好的，祝您生活愉快！有事随时找我。",
    "greeting": "您好！{menu}",
    "robot": "我是社区服务小助手，一个智能助手，白天晚上都在。需要真人帮忙，请回复“转人工”。",
    # Asked while a request for a person waits (right after 转人工): no second 转人工 offered.
    "robot_waiting": "我是社区服务小助手，是智能助手，不是真人。您找工作人员的请求已经登记了，{when}",
    # A bare number with no list open: right after a report was filed, and otherwise.
    "number_filed": "您的问题已经登记好了，编号 {number}，不用再选数字。还有别的事直接跟我说；想看办理进度，发“查进度”。",
    # 嗯 / 好的 / 行 right after a report was filed: a word on what happens next, the report kept.
    # 好的 / 谢谢 right after 转人工: the request stands.
    "handoff_ack": "好的，请稍等。{when}",
    "filed_ack": "好的。有进展会在这里通知您，也可以随时发“查进度”看看。还有别的事随时跟我说。",
    "number_beyond": "列表里是1到{last}，请回复其中的一个数字；不看了回复“算了”。",
    "number": "现在没有要选的项目。需要什么帮忙，直接打字或发语音告诉我；回复“帮助”看看我能做什么。",
    "unsure_phone": "没关系，慢慢来。直接打几个字或者发语音，说说您要办的事就行；也可以回复“转人工”，请工作人员帮您。",
    "praise": "谢谢您的肯定！您的话工作人员会在后台看到，我们会继续努力。",
    # Anything else said in passing (好吧, 不留, 我今年82了): a word back, not the whole menu again.
    "other": "嗯嗯，我在呢。有什么需要帮忙的，直接跟我说就行；回复“帮助”看看我能做什么。",
    # A message of only emoji or marks (👍, 🙏, ？？？): a word back, not "I can't help with that".
    "nod": "收到😊 有需要随时跟我说。",
    "marks": "有什么需要帮忙的，直接打字或者发语音告诉我就行；回复“帮助”看看我能做什么。",
    "sad": "怎么了？遇到什么难处了，跟我说说，我帮您想办法。",
    "annoyed": "对不起，没帮上您。您再说说想办什么事，我尽量帮您；着急的话回复“转人工”找工作人员。",
    # 确认 when nothing waits for it (the exchange it meant was refused, or the question ran out).
    "today": "今天是{month}月{day}日，{weekday}，现在{hour}:{minute:02d}。",
    "tomorrow": "明天是{month}月{day}日，{weekday}。",
    "weather": "天气我这里查不到，可以看看手机上的天气预报，或者听听电视、广播。社区的事随时跟我说，需要工作人员帮忙请回复“转人工”。",
    "nothing_to_confirm": "现在没有等您确认的事。需要什么帮忙，直接跟我说就行；回复“帮助”看看我能做什么。",
    # 继续, 不留, 候补, 下一页 … (what a step asks for) when no step waits for it.
    "nothing_waiting": "现在没有等您回答的事。需要什么帮忙，直接跟我说就行；回复“帮助”看看我能做什么。",
    # 更多 / 下一页 at a list that was shown whole.
    "whole_list": "上面就是全部了。需要别的，直接跟我说就行。",
}

THANKS = ("谢", "感谢", "辛苦", "多谢", "thank")
BYE = ("再见", "拜拜", "晚安", "bye")
ROBOT = ("机器人", "是真人", "真人吗", "是人吗", "人工智能", "你是谁", "你是哪位", "智能客服",
         "你叫啥", "你叫什么", "你的名字", "怎么称呼你", "你是干啥的人")
UNSURE_PHONE = ("不会用手机", "不会用这个", "不会打字", "不会弄", "不会用微信", "看不清", "眼神不好", "眼睛不好", "字太小", "不会操作")
# Praise for someone's work (表扬网格员小李, 服务特别好): thanked, whatever the engine makes of it.
PRAISE = re.compile(r"表扬|点赞|夸一?夸|(?:服务|态度|效率)(?:特别|非常|很|真|挺|太)?好|办得(?:特别|非常|很|真|挺)?(?:好|快)|负责任")
NOT_PRAISE = re.compile(r"差|不|没|投诉|举报|怎么|吗|？|\?")
GREETING = ("你好", "您好", "在吗", "在不在", "哈喽", "hello", "hi", "早上好", "下午好", "晚上好")


# "What is this for?" (你们这个是干啥的, 你能干什么, 这个公众号怎么用): what the assistant can do.
WHAT_FOR = re.compile(r"干啥的|干什么的|干嘛的|做什么的|做啥的|能干啥|能干什么|能做什么|能做啥|会干啥|会干什么|会什么|有什么用|有啥用|怎么用")
ABOUT_US = re.compile(r"你|您|这个|这是|小助手|公众号|助手|这里|这儿")
# Only emoji, pictographs and marks: nothing to understand, nothing misunderstood either.
_NOT_WORDS = re.compile(r"[\s\W_\u2600-\u27bf\U0001f000-\U0001faff\ufe0f\u200d]+")
# WeChat's own faces arrive as their names in brackets ([微笑], [强], [抱拳]).
_WECHAT_FACE = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,4}\]")
_NOD = re.compile(r"[👍👌🙏❤💕😊😀😁😄🙂☺🌹💐✌👏🤝🥰😘]|\[(?:微笑|强|OK|抱拳|玫瑰|握手|爱心|胜利|鼓掌|愉快|憨笑|呲牙|好的|耶)\]")
_SAD = re.compile(r"[😭😢😡😠💔😞😔😩😫]|\[(?:流泪|大哭|快哭了|难过|发怒|委屈|心碎|衰|抓狂)\]")


# A bare confirmation with no question open: said so, not "I can't help with that".
CONFIRM = re.compile(r"^(?:确认|确定|确认兑换|确定兑换|确认预约|确认报名|确认提交|确认取消|确定取消|提交|同意)(?:了|吧|啊|的)?[。！!.]*$")

# The answers the steps ask for (回复“继续”, “不留”, “候补”, “是”/“不是”, “下一页”, “更多”, “不了”) said
# when no step waits for them: said so, not a clarifying question or "I can't help with that".
STEP_ANSWER = re.compile(r"^(?:继续|不留|不留了|候补|排队|是|是的|不是|不是的|不了|下一页|下页|更多)(?:吧|啊|呀|的)?[。！!.]*$")


# "Am I talking to a person?" (你是真人吗, 是机器人在回复吗, 你是人还是机器, 这是自动回复吗): asked, not
# a request for a person (找个真人 is one: handoff.py).
_BEING = r"(?:个|一个)?(?:真人|机器人|机器|人工智能|ai|人工|人|自动回复|智能客服|客服)"
ROBOT_ASKED = re.compile(
    rf"^(?:请问|那个|哎)?(?:你|您|你们|这|这个|这边|对面|回复的|回我的|回消息的|跟我聊天的|和我说话的|跟我说话的)?"
    rf"(?:到底|究竟)?(?:是不是|是)(?:不是)?{_BEING}(?:还是{_BEING})?(?:在回复|在回|在说话|在聊|回复)?"
    r"(?:吗|么|嘛|啊|呀|吧|呢|哦)*[?？。!！]*$"
)


def _robot_asked(ctx: Context) -> bool:
    text = re.sub(r"\s+", "", ctx.text.lower())
    return len(text) <= 16 and ROBOT_ASKED.match(text) is not None


@router.message(Func(_robot_asked, phase=PHASE_STATE, when=lambda p: p.text and not p.state))
async def robot_asked(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return await _robot(ctx)


async def _robot(ctx: Context) -> str:
    """What the assistant is; while the resident's request for a person waits (right after 转人工,
    or later) that it stands and when someone answers, not 转人工 offered again."""
    mark = ctx.extra.get("mark")
    if mark is not None and mark[0] == ASKED:
        await ctx.fsm.set(MARK + ASKED)  # "算了不用了" next still withdraws it
    elif ctx.resident is None or not await handoff.is_waiting(ctx.rt.db, ctx.resident.id):
        return TEXTS["robot"]
    return TEXTS["robot_waiting"].format(when=answer_when(ctx, ctx.rt.clock.now()))


# A number alone (1, ２, 第一个) with no list open and no step waiting.
BARE_NUMBER = re.compile(r"^(?:第)?\s*(?:[0-9]{1,2}|[一二两三四五六七八九十])\s*(?:个|项|号|条)?[.。、,，!！]?$")


def _bare_number(ctx: Context) -> bool:
    import unicodedata

    return ctx.fsm.state is None and BARE_NUMBER.match(unicodedata.normalize("NFKC", ctx.text.strip())) is not None


@router.message(Func(_bare_number, phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def bare_number(ctx: Context) -> str:
    """Not "I can't help with that" (nor, the second time, a person called): right after a report
    was filed, that it is filed; else that nothing is being chosen."""
    ctx.intent = "smalltalk"
    mark = ctx.extra.get("mark")
    if mark is not None and mark[0] in (FILED, URGENT) and mark[1].get("number"):
        await ctx.fsm.set(MARK + mark[0], **mark[1])  # a phone or a photo next still joins the report
        return TEXTS["number_filed"].format(number=mark[1]["number"])
    return TEXTS["number"]


def _number_beyond_list(ctx: Context) -> bool:
    """A number that is on no line of the list still open (9 at a list of 7): that list's items are
    under ``ids`` (classes, coupons, bookings) or ``choices`` (knowledge answers) of its step."""
    import unicodedata

    if ctx.fsm.state is None or BARE_NUMBER.match(unicodedata.normalize("NFKC", ctx.text.strip())) is None:
        return False
    listed = ctx.fsm.data.get("ids") or ctx.fsm.data.get("choices")
    return isinstance(listed, list) and len(listed) > 0


@router.message(Func(_number_beyond_list, phase=PHASE_MENU, when=lambda p: p.text and p.state))
async def number_beyond_list(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    listed = ctx.fsm.data.get("ids") or ctx.fsm.data.get("choices") or []
    return TEXTS["number_beyond"].format(last=len(listed))  # the list stays open


# 更多 / 下一页 at a list shown whole (我的预约, a class's bookings, knowledge choices): the lists that
# page (the mall, 查进度, the classes) take these words in their own step first.
def _page_of_whole_list(ctx: Context) -> bool:
    return ctx.fsm.state is not None and is_page_word(ctx.text)


@router.message(Func(_page_of_whole_list, phase=PHASE_MENU, when=lambda p: p.text and p.state))
async def page_of_whole_list(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return TEXTS["whole_list"]  # the list stays open: a number still picks from it


# The date, the weekday or the time asked on its own (今天几号, 今天星期几, 现在几点了, 明天礼拜几).
CALENDAR = re.compile(
    r"^(?:请问|问一下|问下|那个|哎)?(?P<day>今天|今儿|今儿个|今日|明天|明儿|明儿个|现在|这会儿)?(?:是)?"
    r"(?:几月)?(?:几号|几日|星期几|周几|礼拜几|几点(?:钟)?|多少号|什么日子|啥日子)(?:了|啊|呀|呢|来着)?[?？。]*$"
)
# The weather (明天天气咋样, 今天下雨吗, 冷不冷): not something this assistant knows.
WEATHER = re.compile(r"天气|下雨|下雪|气温|几度|刮风|雾霾|空气质量")
WEEKDAYS = "一二三四五六日"


def _calendar(ctx: Context) -> bool:
    """Asked in the middle of something too (a coupon waiting to be confirmed): answered, the step kept."""
    return len(ctx.text) <= 14 and CALENDAR.match(ctx.text.strip()) is not None


@router.message(Func(_calendar, phase=PHASE_MENU, when=lambda p: p.text))
async def calendar(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    match = CALENDAR.match(ctx.text.strip())
    now = ctx.rt.clock.now().astimezone(CHINA)
    if match is not None and match["day"] in ("明天", "明儿", "明儿个"):
        day = now + timedelta(days=1)
        return TEXTS["tomorrow"].format(month=day.month, day=day.day, weekday="星期" + WEEKDAYS[day.weekday()])
    return TEXTS["today"].format(
        month=now.month, day=now.day, weekday="星期" + WEEKDAYS[now.weekday()], hour=now.hour, minute=now.minute
    )


def _weather(ctx: Context) -> bool:
    text = ctx.text.strip()
    return len(text) <= 14 and WEATHER.search(text) is not None and ctx.intent == "fallback"


@router.message(Func(_weather, phase=PHASE_MENU, when=lambda p: p.text))
async def weather(ctx: Context) -> str:
    return TEXTS["weather"]


def _nothing_to_confirm(ctx: Context) -> bool:
    """No conversation step open (a question such as "要撤回吗？" is answered in an earlier phase)."""
    return ctx.fsm.state is None and CONFIRM.match(ctx.text.strip()) is not None


@router.message(Func(_nothing_to_confirm, phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def nothing_to_confirm(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return TEXTS["nothing_to_confirm"]


def _nothing_waiting(ctx: Context) -> bool:
    return ctx.fsm.state is None and STEP_ANSWER.match(ctx.text.strip()) is not None


@router.message(Func(_nothing_waiting, phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def nothing_waiting(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return TEXTS["nothing_waiting"]


def _what_for(ctx: Context) -> bool:
    text = ctx.text
    return bool(text) and len(text) <= 16 and bool(WHAT_FOR.search(text)) and bool(ABOUT_US.search(text))


@router.message(Func(_what_for, phase=PHASE_MENU, when=lambda p: p.text))
async def what_for(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return await shown(ctx, menu(ctx.rt))


def _only_marks(ctx: Context) -> bool:
    text = ctx.text
    return (bool(text) and not any(ch.isdigit() for ch in text)
            and not _NOT_WORDS.sub("", _WECHAT_FACE.sub("", text)))


@router.message(Func(_only_marks, phase=PHASE_MENU, when=lambda p: p.text))
async def only_marks(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    if _SAD.search(ctx.text):
        return TEXTS["sad"]
    return TEXTS["nod"] if _NOD.search(ctx.text) else TEXTS["marks"]


# Annoyance at the assistant itself (你真笨, 垃圾机器人, 什么破玩意): an apology and a way on, not
# "我在呢". Only when said of the assistant: 垃圾 alone is a report (垃圾没人清).
_DIM = r"(?:笨|傻|蠢|没用|差劲|废物|智障|弱智)(?:蛋|子|瓜)?"
ANNOYED = re.compile(
    rf"^(?:你|你们|您|这个?|这破)?(?:是|是个)?(?:真|太|好|也太|可真|咋这么|怎么这么|这么)?{_DIM}(?:吗|啊|呀|吧|了|死了)*[!！?？。.]*$"
    r"|^(?:垃圾|破|傻|笨|没用的?)(?:机器人|玩意儿?|东西|助手|系统|客服)(?:啊|呀)?[!！?？。.]*$"
    r"|^(?:什么|啥|啥子)破(?:玩意儿?|东西|机器人|助手)(?:啊|呀)?[!！?？。.]*$"
)


@router.message(Func(lambda ctx: len(ctx.text) <= 12 and ANNOYED.match(ctx.text.strip()) is not None,
                     phase=PHASE_MENU, when=lambda p: p.text and not p.state))
async def annoyed(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return TEXTS["annoyed"]


def _praise(ctx: Context) -> bool:
    text = ctx.text
    return bool(text) and len(text) <= 60 and bool(PRAISE.search(text)) and not NOT_PRAISE.search(text)


@router.message(Func(_praise, phase=PHASE_MENU, when=lambda p: p.text))
async def praise(ctx: Context) -> str:
    ctx.intent = "smalltalk"
    return TEXTS["praise"]


@router.message(Intent("smalltalk"))
async def smalltalk(ctx: Context) -> str:
    text = ctx.text.lower()
    mark = ctx.extra.get("mark")
    if mark is not None and mark[0] == ASKED and (is_yes(text) or any(w in text for w in THANKS)):
        await ctx.fsm.set(MARK + ASKED)  # right after 转人工: "算了" next still withdraws it
        return TEXTS["handoff_ack"].format(when=answer_when(ctx, ctx.rt.clock.now()))
    if any(w in text for w in THANKS):
        return TEXTS["thanks"]
    if any(w in text for w in BYE):
        return TEXTS["bye"]
    if any(w in text for w in ROBOT):
        return await _robot(ctx)
    if any(w in text for w in UNSURE_PHONE):
        return TEXTS["unsure_phone"]
    if mark is not None and mark[0] in (FILED, URGENT) and is_yes(text):
        await ctx.fsm.set(MARK + mark[0], **mark[1])  # a phone or a photo next still joins the report
        return TEXTS["filed_ack"]
    if any(w in text for w in GREETING) or not text:
        return await shown(ctx, TEXTS["greeting"].format(menu=menu(ctx.rt).removeprefix("您好，")))
    return TEXTS["other"]
