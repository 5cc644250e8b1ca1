"""Questions for the knowledge base: the answer, numbered choices, or an honest "don't know" with a
person offered. After an answer the resident can say whether it helped (有用/没用, or 1/2); every
question, its decision and the feedback are kept in ``knowledge_queries`` for operators. Two
answers in a row rated 没用 (within the conversation's idle time) put the resident in the staff's
handoff queue (reason ``unhelpful``), with the questions, and the resident is told when a person
will answer."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from bot.flows import complaint as complaint_flow
from bot.flows.complaint import PROBLEM
from bot.flows.handoff import answer_when
from bot.handler.choices import numbered, parse_choice
from bot.handler.context import Context
from bot.handler.middlewares import MARK, OPTIONAL_STEPS
from bot.handler.router import PHASE_MENU, PHASE_STATE, PHASE_TYPE, Func, Intent, Pass, Router, State
from bot.messages import HandlerResult
from bot.services import handoff, knowledge_log, office

router = Router("query")

TEXTS = {
    "answer": "{answer}",
    "link": "详细说明：{link}",
    "ask_feedback": "这个回答对您有帮助吗？回复 1 有用，2 没用。",
    "choices": "您是想问：\n{choices}\n请回复数字。都不是的话可以换个说法，或回复“转人工”。",
    "none_of_them": "好的，那请换个说法再问一次，说说您要办什么事；也可以回复“转人工”问工作人员。",
    "what_to_ask": "好的，您想问什么？直接说就行，比如“老年证怎么办”“医保怎么报销”。",
    # Only one entry plausibly answers, yet not surely: its answer, said as a guess (no "reply 1").
    "guess": "您问的是不是“{question}”？\n",
    "unknown": (
        "这个问题我暂时答不上来，已经记下了，会请工作人员补充。\n"
        "着急的话回复“转人工”，请社区工作人员为您解答。"
    ),
    # Asked when another place opens (社区医院几点开门, 银行几点开门): not the centre's hours, as a choice
    # or otherwise; whose hours we do not know and where to find them.
    "elsewhere": (
        "{place}的开门时间我这里没有登记，说不准，怕您白跑一趟。请看{place}门口贴的时间，或打电话问{place}；"
        "也可以问问您楼栋的网格员。\n社区服务中心自己的上班时间，回复“社区几点上班”就能查到。"
    ),
    "helpful": "谢谢您的反馈！还有其他问题随时问我。",
    "not_helpful": "抱歉没帮上忙。您可以换个说法再问一次，或回复“转人工”找工作人员。",
    "handoff": "抱歉又没帮上忙，已经请工作人员来为您解答。{when}",
    "same": "还是“{question}”这件事：\n",
    "guess_focus": "您问的是不是“{question}”？{label}：\n{said}",
    "focus": "还是“{question}”这件事，{label}：\n{said}",
    "focus_none": "“{question}”的说明里没有讲{label}，请以办理窗口的说法为准，也可以回复“转人工”问工作人员。",
    "both": "{answer}\n\n另外您说的“{problem}”：\n{reported}",
    "aside": "好的。关于“{question}”，还有不清楚的地方可以接着问我；需要工作人员帮忙，请回复“转人工”。",
}

CHOICES_STATE = "query:choices"
FEEDBACK_STATE = "query:feedback"
# Rated 有用, the answer stays what short follow-ups ("那要带啥材料", "在哪办") are about; the feedback
# question is closed, so a "1" or "好的" is no longer read as a rating.
ANSWERED_STATE = "query:answered"
FOLLOWED_STATES = (FEEDBACK_STATE, ANSWERED_STATE)
OPTIONAL_STEPS.update(FOLLOWED_STATES)  # a report put aside is recalled after an answer all the same
IN_A_ROW = timedelta(hours=2)  # two 没用 this far apart are still one conversation (the state's idle time)
# Out of scope to the intent engine, yet the knowledge base has the answer with a high score
# ("老人卡怎么办": 怎么办 reads like small talk to the engine): the answer wins. Only when a question
# is the engine's best in-scope guess, and above every score the knowledge base gives the
# out-of-scope voice-assistant queries of smp2017 (at most 0.81: 张培的电话号码是多少, 春熙路怎么走).
KNOWN_ANSWER_SCORE = 0.85
HELPFUL = {"有用", "有帮助", "有", "好的有用", "1", "１", "满意", "对", "是的", "谢谢", "有用的", "挺有用", "很有用", "有帮助的",
           "对的", "是"}
NOT_HELPFUL = {"没用", "没有用", "无用", "没帮助", "没有帮助", "不对", "2", "２", "不满意", "不是", "都不是", "不是这个",
               "没啥用", "没什么用", "不太对", "不对的", "没用的", "不是的"}
# "None of these" at the knowledge choices (它们都不是 what was asked): the choices are closed.
NONE_OF_THEM = re.compile(r"^(?:都|全都|好像都|这些都|这几个都)?(?:不是|不对|没有|不是的)(?:我要的|我想问的|我问的)?(?:啊|呀|吧|哦)?[。！!.]*$")


def _log_query(ctx: Context, decision: str, hits: list[Any]) -> None:
    """Log the question with the reply; its id goes into the state the reply leaves (feedback and
    choices refer to it)."""
    resident_id = ctx.resident.id if ctx.resident else None

    def then(query_id: int) -> None:
        if ctx.fsm.state in (CHOICES_STATE, FEEDBACK_STATE):
            ctx.fsm.fill(query_id=query_id)

    ctx.with_reply(knowledge_log.logging(resident_id, ctx.text, decision, hits, ctx.rt.clock.now(), then))


async def _answer_entry(ctx: Context, entry: Any, query_id: int | None = None) -> str:
    parts = [TEXTS["answer"].format(answer=entry.answer.strip())]
    if entry.link:
        parts.append(TEXTS["link"].format(link=entry.link))
    parts.append(TEXTS["ask_feedback"])
    if query_id is None:
        await ctx.fsm.set(FEEDBACK_STATE, entry_id=entry.id)  # its query_id is filled in with the reply
    else:
        await ctx.fsm.set(FEEDBACK_STATE, query_id=query_id, entry_id=entry.id)
    return "\n\n".join(parts)


@router.message(
    State(CHOICES_STATE),
    Func(lambda ctx: parse_choice(ctx.text, len(ctx.fsm.data.get("choices", []))) is not None),
)
async def chosen(ctx: Context) -> str:
    ids = list(ctx.fsm.data.get("choices", []))
    index = parse_choice(ctx.text, len(ids))
    assert index is not None
    entry_id = ids[index - 1]
    query_id = int(ctx.fsm.data.get("query_id", 0))
    entry = ctx.rt.language.knowledge.get(entry_id)
    if entry is None:  # removed by a reload meanwhile
        await ctx.fsm.clear()
        return TEXTS["unknown"]
    ctx.with_reply(lambda connection: knowledge_log.chosen_in(connection, query_id, entry_id))
    return await _answer_entry(ctx, entry, query_id)


@router.message(State(CHOICES_STATE), Func(lambda ctx: NONE_OF_THEM.match(ctx.text.strip()) is not None))
async def none_of_them(ctx: Context) -> str:
    await ctx.fsm.clear()
    return TEXTS["none_of_them"]


def _feedback_word(ctx: Context) -> bool | None:
    text = ctx.text.strip().rstrip("。！!.").strip()
    if text in HELPFUL:
        return True
    if text in NOT_HELPFUL:
        return False
    return None


@router.message(State(FEEDBACK_STATE), Func(lambda ctx: _feedback_word(ctx) is not None))
async def feedback(ctx: Context) -> str:
    helpful = _feedback_word(ctx)
    query_id = int(ctx.fsm.data.get("query_id", 0))
    entry_id = ctx.fsm.data.get("entry_id")
    now = ctx.rt.clock.now()
    await ctx.fsm.clear()
    if helpful:  # the common answer: stored with the reply
        if entry_id:
            await ctx.fsm.set(ANSWERED_STATE, entry_id=entry_id)
        ctx.with_reply(knowledge_log.Rating(query_id, True, now))
        return TEXTS["helpful"]
    await knowledge_log.feedback(ctx.rt.db, query_id, False, now)  # read back at once below
    if ctx.resident is not None:
        questions = await knowledge_log.unhelpful_in_a_row(ctx.rt.db, ctx.resident.id, query_id, now, IN_A_ROW)
        if len(questions) >= 2:
            words = "\n".join(f"没用：{q[:200]}" for q in reversed(questions[:2]))
            await handoff.request(ctx.rt.db, ctx.resident.id, "unhelpful", words, now)
            return TEXTS["handoff"].format(when=answer_when(ctx, now))
    return TEXTS["not_helpful"]


# What a resident says in passing right after an answer ("我今年82了" after the 高龄补贴 answer, "好吧")
# is about that answer: it gets a word back on it, not the greeting menu. Greetings, thanks and
# goodbyes still go to small talk.
SMALLTALK_OWN = ("谢", "再见", "拜拜", "你好", "您好", "在吗", "在不在")


def _aside(ctx: Context) -> bool:
    text = ctx.text.strip()
    if not text or any(w in text for w in SMALLTALK_OWN) or _ASKS.search(text):
        return False  # (a question, "那水费呢", is asked for itself)
    entry = ctx.rt.language.knowledge.get(str(ctx.fsm.data.get("entry_id", "")))  # None: reloaded away
    ctx.extra["answered_entry"] = entry
    return entry is not None


@router.message(State(FEEDBACK_STATE), Intent("smalltalk"), Func(_aside))
async def aside(ctx: Context) -> str:
    question = ctx.extra["answered_entry"].question.rstrip("？?")
    return TEXTS["aside"].format(question=question)  # the feedback question stays open


# When only the scope threshold made it out of scope — the engine's own pick was a question
# (`raw_intent` query: 旧沙发怎么扔 at 0.33 out of scope) — the knowledge base's own gate decides: its
# answer, or its choices when one entry leads clearly. Over smp2017's 3,069 voice-assistant queries
# this applies to one (choices at 0.44, below the floor); over the five knowledge evaluation sets it
# gives 18 right answers, no wrong one, and choices offered to one question the base cannot answer.
KNOWN_CHOICES_SCORE = 0.5
KNOWN_CHOICES_LEAD = 0.3


def _known_answer(ctx: Context) -> bool:
    runner_up = getattr(ctx.understanding, "runner_up", None)
    if not ctx.text or runner_up is None or runner_up[0] != "query":
        return False
    result = ctx.rt.language.knowledge.answer(ctx.text)
    if getattr(ctx.understanding, "raw_intent", None) == "query":
        hits = result.hits
        lead = hits[0].score - (hits[1].score if len(hits) > 1 else 0.0) if hits else 0.0
        if not (result.kind == "answer" or (result.kind == "choices" and hits[0].score >= KNOWN_CHOICES_SCORE
                                            and lead >= KNOWN_CHOICES_LEAD)):
            return False
    elif result.kind != "answer" or result.hits[0].score < KNOWN_ANSWER_SCORE:
        return False
    ctx.extra["knowledge_answer"] = result
    return True


@router.message(Intent("fallback"), Func(_known_answer))
async def known_answer(ctx: Context) -> str:
    result = ctx.extra["knowledge_answer"]
    ctx.intent = "query"
    _log_query(ctx, result.kind, result.hits)
    if result.kind == "choices":
        return _asked(ctx, await _offer(ctx, result.hits[:3]))
    return _asked(ctx, await _answer_entry(ctx, result.hits[0].entry))


ASKED_MAX = 60


def _asked(ctx: Context, reply: str) -> str:
    """``reply``, the resident's question kept with the state it leaves: a few words that narrow
    it next ("住院的") are asked together with it (:func:`refined`)."""
    ctx.fsm.fill(asked=ctx.text.strip()[:ASKED_MAX])
    return reply


async def _offer(ctx: Context, hits: list[Any]) -> str:
    """Numbered choices among the entries that plausibly answer; one alone is answered as a guess."""
    if len(hits) == 1:
        entry = hits[0].entry
        return TEXTS["guess"].format(question=entry.question.rstrip("？?")) + await _answer_entry(ctx, entry)
    await ctx.fsm.set(CHOICES_STATE, choices=[h.entry.id for h in hits])  # query_id: with the reply
    return TEXTS["choices"].format(choices=numbered([h.entry.question for h in hits]))


# A short question right after an answer ("那要带啥材料", "在哪办") asks more about the same thing:
# when it finds no answer alone, it is asked again together with the answered entry's question.
FOLLOW_UP_MAX = 15


def _with_context(ctx: Context, result: Any) -> tuple[Any, str | None]:
    if result.kind == "answer" or ctx.fsm.state not in FOLLOWED_STATES or len(ctx.text.strip()) > FOLLOW_UP_MAX:
        return result, None
    if _yes_or_no(ctx.text):
        return result, None
    entry = ctx.rt.language.knowledge.get(str(ctx.fsm.data.get("entry_id", "")))
    if entry is None or _own_topic(ctx.text, entry):
        return result, None
    again = ctx.rt.language.knowledge.answer(f"{entry.question.rstrip('？?')}，{ctx.text}")
    if again.kind != "answer":
        return result, None
    return again, (entry.question.rstrip("？?") if again.hits[0].entry.id == entry.id else None)


# What a short follow-up asks about the answer just given ("那要带啥", "在哪办", "要多久"), one list:
# each aspect's words and how the answer's sentences say it (the reply is those sentences, not the
# whole answer again). Asked about, yet said by no one kind of sentence (条件, 网上, 家属 …): ``None``.
ASPECTS: tuple[tuple[str | None, tuple[str, ...], re.Pattern[str] | None], ...] = (
    ("要带的材料", ("材料", "资料", "证件", "手续", "带", "准备", "照片", "相片", "户口本", "身份证", "东西"),
     re.compile(r"带|材料|证件|身份证|户口本|照片|证明|复印件|原件")),
    ("在哪里办", ("哪里", "哪儿", "哪", "地方", "地址", "去哪", "找谁"),
     re.compile(r"到|去|窗口|中心|大厅|网点|派出所|营业厅|App|网上|线上|公众号|小程序|找")),
    # What time of day (几点开饭, 几点去): a clock time, a part of the day, or the sentence on its time
    # ("办理时间以窗口安排为准"); not one on a long time (长时间没到账).
    ("具体几点", ("几点钟", "几点"),
     re.compile(r"\d{1,2}\s*(?:[:：]\s*\d{2}|点)|[一二三四五六七八九十]{1,3}点(?!心)|上午|下午|中午|早上|早晨|傍晚|晚上"
                r"|(?<!长)时间")),
    ("要多长时间", ("多久", "多长时间", "几天", "多会儿", "什么时候", "啥时候", "时间"),
     re.compile(r"\d+\s*个?(?:工作日|天|小时|周(?!岁)|月)|[一二三四五六七八九十两]+个?(?:工作日|天|小时|周(?!岁)|月)|当场|当天|立等|即办|时限")),
    ("费用", ("多少钱", "费用", "收费", "要钱", "花钱", "钱"), re.compile(r"元|免费|费用|收费|不收|钱|价格|价钱")),
    ("电话", ("电话", "号码", "热线"), re.compile(r"电话|热线|\d{5,}")),
    (None, ("多少", "一个月", "每月", "每个月", "一年", "每年", "条件", "资格", "要求", "流程", "步骤", "网上",
            "线上", "手机上", "代办", "代领", "家属", "家里人", "家人", "本人", "谁", "替", "儿子", "女儿", "子女", "孩子",
            "亲戚", "委托"), None),
)
# Words that only ask whether or how ("可以", "要", "能不能"): alone they are a yes or a no, not a
# question about the answer.
# So are the words for getting it done ("多长时间能拿到", "几天能办下来") and Shanxi's 行不行 / 中不中.
_MODAL = ("能不能", "可以", "可不可以", "需要", "要", "办", "领", "交", "去", "行不行", "行吗", "中不中", "成不成", "拿到",
          "拿", "办下来", "下来", "办好", "出来", "到手", "领到")
_ASKS_OF = [(label, re.compile("|".join(words)), says) for label, words, says in ASPECTS if label and says]
# How many of a thing (照片要几张, 复印件要几份, 要几寸的): said only by a number with that same unit
# ("两张", "一份"); asked before any other aspect, so 照片要几张 is not answered with the materials.
_UNITS = "张|份|本|寸|套|件|次"
HOW_MANY = re.compile(rf"(?:几|多少)({_UNITS})")
_NUMERAL = r"(?:\d+|[一二两三四五六七八九十百]+)\s*"
# A message made only of aspect words and small words is about the answer just given, whatever the
# intent engine makes of it ("要带什么" reads like a course question on its own). Longest words first,
# so that 可不可以 is one word, not 可以.
_WORDS = sorted({*(w for _, words, _ in ASPECTS for w in words), *_MODAL}, key=len, reverse=True)
ASPECT = re.compile("|".join([rf"(?:几|多少)(?:{_UNITS})", *_WORDS]))
_SMALL = re.compile(r"[那这还就都也又我俺你您的了吗呢啊呀吧么嘛啥什么怎么咋样些个一下请问得是在给能到不\s\W\d]")


def _own_topic(text: str, entry: Any) -> bool:
    """Besides the words of asking, the text says things the entry never does (宠物狗打疫苗去哪里 after
    the senior card's answer): a question of its own, not more about that answer."""
    said = "".join((*entry.phrasings, entry.answer, *entry.tags))
    return sum(ch not in said for ch in _SMALL.sub("", ASPECT.sub("", text))) >= 2


def _yes_or_no(text: str) -> bool:
    """Only small words and words that ask whether or how: "可以", "要", "能不能"."""
    return not _SMALL.sub("", ASPECT.sub("", text)) and all(w in _MODAL for w in ASPECT.findall(text))


def _elliptical(ctx: Context) -> bool:
    text = ctx.text.strip()
    if not text or len(text) > FOLLOW_UP_MAX or _SMALL.sub("", ASPECT.sub("", text)) or _yes_or_no(text):
        return False
    result, _same = _with_context(ctx, ctx.rt.language.knowledge.answer(text))
    if result.kind != "answer":
        # Made only of the words of asking about an answer ("那我儿子替我去行不行"), it can only be
        # about the answer just given, even when no search finds one.
        entry = ctx.rt.language.knowledge.get(str(ctx.fsm.data.get("entry_id", "")))
        if entry is None:
            return False
        ctx.extra["again_on"] = entry
        ctx.extra["knowledge_answer"] = result
        return True
    ctx.extra["knowledge_answer"] = result
    return True


_SENTENCE = re.compile(r"[^。；！？\n]+[。；！？]?")


def focus(answer: str, text: str) -> tuple[str, str] | None:
    """The aspect a follow-up asks about and the answer's sentences on it ("" when none says it);
    None when it asks about no aspect or every sentence is about it (the whole answer, then)."""
    sentences = [s.strip() for s in _SENTENCE.findall(answer) if s.strip()]
    how_many = HOW_MANY.search(text)
    if how_many:  # a count is said by a number of that unit, or not at all: never the whole answer
        unit = how_many.group(1)
        says = re.compile(_NUMERAL + unit)
        return f"要几{unit}", "".join(s for s in sentences if says.search(s))
    for label, asks, says in _ASKS_OF:
        if asks.search(text):
            picked = [s for s in sentences if says.search(s)]
            return None if len(picked) == len(sentences) else (label, "".join(picked))
    return None


# Offered choices and asked "要带啥材料" instead of a number: the first choice whose answer says it
# is answered on that, as a guess (the resident may still reply with a number).
def _aspect_of_choices(ctx: Context) -> bool:
    text = ctx.text.strip()
    if not text or len(text) > FOLLOW_UP_MAX or _SMALL.sub("", ASPECT.sub("", text)) or _yes_or_no(text):
        return False
    for entry_id in ctx.fsm.data.get("choices", []):
        entry = ctx.rt.language.knowledge.get(str(entry_id))
        focused = None if entry is None else focus(entry.answer, text)
        if entry is not None and focused is not None and focused[1]:
            ctx.extra["chosen_entry"] = (entry, *focused)
            return True
    return False


@router.message(State(CHOICES_STATE), Func(_aspect_of_choices, phase=PHASE_STATE, when=lambda p: p.text))
async def aspect_of_choice(ctx: Context) -> str:
    entry, label, said = ctx.extra["chosen_entry"]
    query_id = int(ctx.fsm.data.get("query_id", 0))
    ctx.intent = "query"
    ctx.with_reply(lambda connection: knowledge_log.chosen_in(connection, query_id, entry.id))
    await ctx.fsm.set(FEEDBACK_STATE, query_id=query_id, entry_id=entry.id)
    body = TEXTS["guess_focus"].format(question=entry.question.rstrip("？?"), label=label, said=said)
    return "\n\n".join([body, TEXTS["ask_feedback"]])


@router.message(State(*FOLLOWED_STATES), Func(_elliptical, phase=PHASE_STATE, when=lambda p: p.text))
async def more_on_answer(ctx: Context) -> str:
    result = ctx.extra["knowledge_answer"]
    ctx.intent = "query"
    again = ctx.extra.get("again_on")
    if again is not None:
        _log_query(ctx, "answer", [h for h in result.hits if h.entry.id == again.id][:1])
        return await _again_on(ctx, again)
    entry = ctx.rt.language.knowledge.get(str(ctx.fsm.data.get("entry_id", "")))
    _log_query(ctx, result.kind, result.hits)
    if entry is not None and result.hits[0].entry.id == entry.id:
        return await _again_on(ctx, entry)
    return await _answer_entry(ctx, result.hits[0].entry)


# A few words right after an answer or choices that narrow the question just asked ("住院的" after
# 医保怎么报销, "我是外地的", "给孩子办"): asked again together with it. Only when that finds an
# answer of its own, another entry than the one just given.
REFINE_MAX = 8


def _refines(ctx: Context) -> bool:
    text = ctx.text.strip()
    asked = str(ctx.fsm.data.get("asked") or "")
    if not asked or not text or len(text) > REFINE_MAX or _yes_or_no(text) or not _SMALL.sub("", ASPECT.sub("", text)):
        return False  # nothing asked before, or only asking words (more_on_answer's)
    if text in HELPFUL or text in NOT_HELPFUL or parse_choice(text, len(ctx.fsm.data.get("choices", []))) is not None:
        return False
    result = ctx.rt.language.knowledge.answer(f"{asked.rstrip('？?。')}，{text}")
    if result.kind != "answer" or result.hits[0].entry.id == ctx.fsm.data.get("entry_id"):
        return False
    ctx.extra["knowledge_answer"] = result
    return True


@router.message(State(*FOLLOWED_STATES, CHOICES_STATE), Func(_refines, phase=PHASE_STATE, when=lambda p: p.text))
async def refined(ctx: Context) -> str:
    result = ctx.extra["knowledge_answer"]
    asked = str(ctx.fsm.data.get("asked") or "")
    ctx.intent = "query"
    _log_query(ctx, result.kind, result.hits)
    answer = await _answer_entry(ctx, result.hits[0].entry)
    ctx.fsm.fill(asked=f"{asked.rstrip('？?。')}，{ctx.text.strip()}"[:ASKED_MAX])
    return answer


async def _again_on(ctx: Context, entry: Any) -> str:
    """A follow-up about the entry just answered: what it asks (the materials, where, how long …),
    or the whole answer again when it asks about no one thing."""
    question = entry.question.rstrip("？?")
    focused = focus(entry.answer, ctx.text)
    if focused is None:
        return TEXTS["same"].format(question=question) + await _answer_entry(ctx, entry)
    label, said = focused
    await ctx.fsm.set(FEEDBACK_STATE, entry_id=entry.id)  # its query_id is filled in with the reply
    body = (TEXTS["focus"].format(question=question, label=label, said=said) if said
            else TEXTS["focus_none"].format(question=question, label=label))
    return "\n\n".join([body, TEXTS["ask_feedback"]])


# The intent engine unsure between, say, small talk and a report ("你们这能帮我交电费不", "那水费呢"),
# yet the message asks a question the knowledge base answers by its own gate: the answer, not
# "您是想：1. 随便聊聊 2. 反映问题". Never for a message that describes a problem: that one may be
# a report, and the clarifying question stays; unless the resident says outright that they are
# asking ("我想问一下我们小区的垃圾什么时候收": 垃圾 names a topic here, not a problem).
_ASKS = re.compile(r"[?？]|[吗么呢不没]$|怎么|咋|如何|哪|什么|啥|能不能|可不可以|能否|找谁|多少|几点|多久|有没有"
                   r"|行不行|中不中|成不成|好不好|要不要")
_ASKING = re.compile(r"^(?:您好|你好|那个|就是)?[，,\s]*(?:我)?(?:想|要)?(?:问一下|问下|问问|请问|咨询一下|咨询|打听一下|打听)")


# A cut of water, power or gas ahead, or its notice ("明天停水吗", "这两天停不停电", "停电通知在哪看"),
# is asked about, not reported: it names no problem.
_CUT_AHEAD = re.compile(
    r"(?:明天|后天|明后天|大后天|过两天|过几天|这两天|这几天|下周|下礼拜|下星期|周末|今晚|今天晚上|会不会|要不要|是不是要|哪天|啥时候|什么时候)"
    r"(?:[要会还]|小区|楼里|那片|这片)*停(?:不停)?[水电气暖]|停[水电气暖](?:的)?(?:通知|公告|计划)|计划停[水电气暖]"
)


# When the water, power or gas comes back (啥时候来水, 停水了几点能来电, 停气要多久): asked, whatever cut
# the message tells of; the answer says where the time is posted and whom to ask.
_COMES_BACK = re.compile(
    r"(?:什么时候|啥时候|几点|多会儿|哪天|多久|多长时间)(?:才|能|会|可以|就)*(?:来|通|恢复|有)(?:供)?[水电气暖]"
    r"(?![^\s啊呢吗了呀啦哇？?，,。！!])"
    r"|(?<!自)(?:来|恢复供?)[水电气暖](?:还)?(?:要|得)?(?:多久|多长时间|几点|什么时候|啥时候)"
)


async def answer_if_known(ctx: Context) -> str | None:
    text = ctx.text.strip()
    if not text or not _ASKS.search(text):
        return None
    if (PROBLEM.search(_CUT_AHEAD.sub("", text)) and not _ASKING.search(text) and not _COMES_BACK.search(text)):
        return None
    result = ctx.rt.language.knowledge.answer(text)
    if result.elsewhere:  # when another place opens (银行几点开门): not known here, and where to ask
        ctx.intent = "query"
        _log_query(ctx, result.kind, result.hits)
        await ctx.fsm.clear()
        return TEXTS["elsewhere"].format(place=result.elsewhere)
    if result.kind != "answer":
        return None
    ctx.intent = "query"
    _log_query(ctx, result.kind, result.hits)
    return await _answer_entry(ctx, result.hits[0].entry)


# The centre's own hours and phone (bot/rules/office.yml, an operator's <data_dir>/office.yml): asked
# for (社区几点下班, 周六有人上班吗, 居委会电话多少), they are said as configured, not as the knowledge
# base's general advice.
OFFICE_HOURS = re.compile(
    r"几点(?:上班|下班|开门|关门|办公|有人)|(?:上班|下班|办公|工作|开门|关门|营业)(?:的)?时间|什么时候(?:上班|下班|开门|关门)"
    r"|(?:周[六日末]|星期[六天日]|礼拜[六天日]|中午|午休|晚上|节假日|放假)\S{0,6}?(?:上班|开门|有人|办公|办事|能办)"
)
OFFICE_PHONE = re.compile(r"(?:社区|居委会|服务中心|办事处|你们)(?:的)?(?:电话|联系电话|座机)")
_OFFICE_PLACE = re.compile(r"社区|居委会|服务中心|办事大厅|窗口|你们|工作人员")
_OFFICE_SMALL = re.compile(r"上班|办公|开门|办事|有人|[的吗呢啊呀吧么嘛不没有是还都也就请问一下想我俺那个这\s\W]")
TEXTS_OFFICE = {
    "hours": "社区服务中心工作时间：{hours}。",
    "open_now": "现在正在上班。",
    "closed_now": "现在已经下班了，{next}上班。",
    "phone": "电话：{phone}。",
    "no_phone": "有事可以直接在这里留言，或回复“转人工”找工作人员。",
}


def _office(ctx: Context) -> bool:
    text = ctx.text
    if not text or len(text) > 25:
        return False
    found = OFFICE_HOURS.search(text)
    # nothing named but the centre (社区几点下班, 周六有人上班吗), not 医院几点开门 or 社区图书室周末几点开门
    rest = "" if found is None else _OFFICE_PLACE.sub("", text[: found.start()] + text[found.end():])
    hours = found is not None and not _OFFICE_SMALL.sub("", rest)
    phone = OFFICE_PHONE.search(text) is not None
    if phone and not office.hours_for(ctx.rt.settings.data_dir).phone:
        return hours  # no number configured: the knowledge base says how to reach the centre
    return hours or phone


@router.message(Func(_office, phase=PHASE_MENU, when=lambda p: p.text))
async def office_hours(ctx: Context) -> str:
    hours, now = office.hours_for(ctx.rt.settings.data_dir), ctx.rt.clock.now()
    ctx.intent = "query"
    await ctx.fsm.clear()
    lines = [TEXTS_OFFICE["hours"].format(hours=hours.describe())]
    lines.append(TEXTS_OFFICE["open_now"] if hours.is_open(now)
                 else TEXTS_OFFICE["closed_now"].format(next=hours.when_next(now)))
    lines.append(TEXTS_OFFICE["phone"].format(phone=hours.phone) if hours.phone else TEXTS_OFFICE["no_phone"])
    return "".join(lines)


# Two requests in one message, a question and a problem joined by 还有/另外/顺便 ("老年证在哪办 我今年
# 七十了 还有就是我家门口路灯不亮 6号楼"): the question answered, then the problem reported as on its
# own (its place or phone asked, or filed). Either may come first. Only when the knowledge base
# answers the question by its own gate and the engine reads the other part as a complaint.
_ALSO = re.compile(
    r"[，,。；;！!\s]*(?:还有就是|还有个事儿?|还有一件事|还有一个事|还有个问题|还有一个问题|还有|另外|再一个|再就是|顺便问一下|顺便问下"
    r"|顺便说一下|顺便)[，,：:\s]*"
)
_BOTH = "two_requests"


def _words(text: str) -> int:
    return len(re.sub(r"\W+", "", text))


def _two_requests(ctx: Context) -> bool:
    text = ctx.text
    if ctx.fsm.state not in (None, *FOLLOWED_STATES) or not text or len(text) < 14 or len(text) > 200:
        return False
    found = _ALSO.search(text, 4)
    if found is None:
        return False
    head, tail = text[: found.start()].strip(), text[found.end():].strip()
    if _words(head) < 4 or _words(tail) < 4:
        return False
    for question, problem in ((head, tail), (tail, head)):
        if not PROBLEM.search(problem) or not complaint_flow.describes(problem):
            continue
        if ctx.rt.language.intents.classify(problem).intent != "complaint":
            continue
        result = ctx.rt.language.knowledge.answer(question)
        if result.kind == "answer":
            ctx.extra[_BOTH] = (question, problem, result)
            return True
    return False


@router.message(Func(_two_requests, phase=PHASE_TYPE, when=lambda p: p.text))
async def two_requests(ctx: Context) -> str:
    question, problem, result = ctx.extra[_BOTH]
    entry = result.hits[0].entry
    resident_id, now = (ctx.resident.id if ctx.resident else None), ctx.rt.clock.now()
    ctx.intent = "query"

    ctx.with_reply(knowledge_log.logging(resident_id, question, result.kind, result.hits, now))
    reported = await complaint_flow._start(ctx, problem)  # its place or phone asked, or the ticket
    return TEXTS["both"].format(answer=entry.answer.strip(), problem=problem, reported=reported)


# A question the engine files as a report because of how it is said ("俺有老年证了 坐那个公交车还要钱不",
# "俺家那个电表没钱了 上哪交电费啊": elderly speech reads like the complaints' examples) is answered,
# when it asks, names no problem and the knowledge base answers it by its own gate. Asked before the
# intent handlers (the complaint flow would ask where the problem is).
# The same for a question about how points work filed under `coupon` ("积分会过期吗", "积分能转给家人吗"):
# answered from the knowledge base unless it asks for what the mall shows live (换, 券, 余额, 明细 …).
_MALL_ASKS = re.compile(r"换|兑|券|商城|优惠|买|折|明细|余额|多少|少了|扣|查|记录|没加|没到|没给")


def _question_as_report(ctx: Context) -> bool:
    if ctx.fsm.state not in (None, *FOLLOWED_STATES) or not ctx.text:
        return False
    return ctx.intent == "complaint" or (ctx.intent == "coupon" and not _MALL_ASKS.search(ctx.text))


@router.message(Func(_question_as_report, phase=PHASE_TYPE, when=lambda p: p.text))
async def question_as_report(ctx: Context) -> HandlerResult | Pass:
    answered = await answer_if_known(ctx)
    return Pass() if answered is None else answered


# Wanting to ask, without asking yet (我想问问, 想咨询一下, 问个事, 我想打听个事儿, 请问一下): asked what,
# not "答不上来" about a question nobody asked, nor 帮不上忙.
WANTS_TO_ASK = re.compile(
    r"^(?:你好|您好|喂)?[，,\s]*(?:(?:我|俺)?(?:想|要)?(?:请问|问问|问|咨询|打听)(?:一下|下)?(?:个|点)?"
    r"|(?:我|俺)有(?:个|点|件)?)(?:事|事儿|事情|问题)?(?:儿)?(?:想问|要问|想问问|想咨询|要咨询)?(?:一下|下)?"
    r"(?:吧|啊|呀|哈)?[。.!！?？]*$"
)


@router.message(Func(lambda ctx: WANTS_TO_ASK.match(ctx.text.strip()) is not None, phase=PHASE_MENU,
                     when=lambda p: p.text and not p.state))
async def wants_to_ask(ctx: Context) -> str:
    ctx.intent = "query"
    await ctx.fsm.set(MARK + ASKED_WHAT)
    return TEXTS["what_to_ask"]


# The mark of "您想问什么？": what comes next is the question (就是那个老年证, 那个高龄补贴), asked of
# the knowledge base unless it is plainly something else (楼道灯坏了, 谢谢, 查积分).
ASKED_WHAT = "asked_what"


def _the_question(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if not ctx.text or mark is None or mark[0] != ASKED_WHAT or ctx.fsm.state is not None:
        return False
    return ctx.decision != "accept" or ctx.intent in ("query", "fallback")


@router.message(Func(_the_question, phase=PHASE_MENU, when=lambda p: p.text and p.mark == ASKED_WHAT))
async def the_question(ctx: Context) -> HandlerResult | Pass:
    ctx.intent = "query"
    return await ask(ctx)


@router.message(Intent("query"), Func(lambda ctx: bool(ctx.text)))
async def ask(ctx: Context) -> str:
    result, same = _with_context(ctx, ctx.rt.language.knowledge.answer(ctx.text))
    _log_query(ctx, result.kind, result.hits)
    if result.kind == "answer":
        if same:
            return await _again_on(ctx, result.hits[0].entry)
        return _asked(ctx, await _answer_entry(ctx, result.hits[0].entry))
    if result.kind == "choices":
        return _asked(ctx, await _offer(ctx, result.hits[:3]))
    await ctx.fsm.clear()
    if result.elsewhere:
        return TEXTS["elsewhere"].format(place=result.elsewhere)
    return TEXTS["unknown"]
