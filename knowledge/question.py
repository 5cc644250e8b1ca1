"""Reduce a resident's message to its question.

Long messages tell a story first and ask at the end: 您好，我是阳光小区7栋的住户，今年八十一岁了，
老伴前几年走了……想请你们帮我问一下这个高龄的补贴我能不能领，怎么领. Elderly and voice-recognised
text adds filler (那个, 就是, 嗯, 啊, 呢) and runs without punctuation. :func:`reduce_message` splits
the message into clauses, drops greetings, thanks and pure filler, and marks where the request is:

* **focus**: from the last clause that asks (想问, 请问, 问一下, 咨询 …) to the end; without such a
  cue, the last clause that is a question (怎么, 哪, 吗, 能不能 …) and what follows it; a short
  message is all focus;
* **context**: everything before, including self-introductions (我是…的住户, 我姓李, 今年八十一岁).

A request that points back at what the story named (这个卡去哪补 after 社保卡没带, 这个去哪领 after
残疾人能领轮椅) is said with that thing's name, when the caller says which things a clause names
(``resolve_reference``): the request is then judged together with the topic told before it.

Retrieval uses the whole reduced text to find the topic (the topic is often told before the
request: 失业了…想问问这个钱怎么申请), but judges what the question is about mainly on the
focus: words of the story that the knowledge base has never seen must not sink an answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Clause boundaries: punctuation and spaces (elderly and voice text often uses spaces).
_CLAUSE_SPLIT = re.compile(r"[\s,.!?;:，。！？；：、…~～\-—()（）\[\]【】\"'“”‘’]+")
# Voice text has no punctuation: a request cue starts a new clause.
_ASK = (
    "想问一下|想问问|想问下|想问|请问一下|请问|问一下|问问|问下|咨询一下|咨询下|咨询|想了解一下|想了解|想知道|请教一下|请教|"
    "麻烦告诉我|告诉我一下|打问一下|打问打问|打问|打听一下|打听打听"  # 打问: Shanxi for 打听
)
_ASK_RE = re.compile(f"(?:{_ASK})")
# A request cue leading its clause, with who asks and the politeness around it (麻烦问一下啊, 俺想咨询咨询).
_ASK_LEAD_RE = re.compile(f"^(?:麻烦|劳驾)?(?:我|俺|我们|俺们)?(?:就|还)?(?:想|要)?(?:{_ASK}|咨询咨询)(?:您|你|你们)?[啊呀哈吧呢]*")
# (never between who asks and the cue: 俺想问一下 stays one piece, 请问 too)
# (nor before a bare 咨询 naming a service: 法律咨询, 政策咨询 — only 咨询一下 / 咨询下 announce a question)
_ASK_SPLIT = re.compile(f"(?<=.)(?<![我俺想要请烦驾打])(?!咨询(?!一下|下))(?=(?:我|俺)?(?:想|要)?(?:{_ASK}))")
# Marks of a question (or a request) in a clause.
_QUESTION_RE = re.compile(
    r"怎么|怎样|如何|咋|哪|什么|啥|多少|多久|几|谁|吗|么$|呢$|不$|没$|没有$|能不能|可不可以|是不是|要不要|用不用|"
    r"有没有|会不会|行不行|可以吗|能否|是否|找谁|要带|需要|办理|申请|帮我|帮忙|求助|请帮"
)
# Whole clauses that only greet, thank or fill.
# A greeting names whom it greets (社区你好, 王主任好, 大家好) or the time of day (早上好): a clause
# such as 我腿脚不好 or 暖气烧得不好 ends in 好 and is no greeting.
_ADDRESSEE = "同志|领导|老师|工作人员|社区|居委会|书记|主任|大姐|大哥|师傅|小姐|先生|姐|哥"
_GREETING_RE = re.compile(
    r"^(?:喂|嗯+|哎|诶|哈喽|hello|hi|那个|这个|就是|是这样的?|是这样子|这样的)*"
    r"(?:(?:尊敬的)?(?:[\u4e00-\u9fff]{0,10}?(?:" + _ADDRESSEE + r")?(?:你们|您们|大家|你|您)(?:好|早)"
    r"|[\u4e00-\u9fff]{0,10}?(?:" + _ADDRESSEE + r")(?:们)?(?:好|早)"
    r"|[\u4e00-\u9fff]{0,10}?(?:" + _ADDRESSEE + r")?(?:你们|您们|大家|你|您)?(?:早上好|上午好|中午好|下午好|晚上好))"
    r"(?:啊|呀|哈)?)?$"
)
_POLITE_RE = re.compile(
    r"(?:打扰了|打扰一下|打扰您了|打扰|麻烦您了|麻烦你了|麻烦了|谢谢您了|谢谢你们|谢谢你|谢谢您|谢谢了|谢谢啦|谢谢|"
    r"多谢|感谢您|感谢|辛苦了|辛苦你们了|拜托了|拜托|不好意思)"
)
# Filler of spoken text (kept out of every clause; 那个/这个 only when not followed by a noun they
# determine is beyond a regex, but as words they carry no topic either way).
_FILLER_RE = re.compile(
    r"嗯+|呃+|额+|哎呀|哎|诶|喂|那个啥|那啥|那个|就是说|就是|然后呢|然后|反正|其实吧"
    # hearsay that leads into what was heard (听人说公家给老人发钱): who said it is no topic
    r"|听(?:人家|别人|人|邻居|街坊|他们)说|听说|(?:人家|别人|大家|他们)都说|听讲"
    # how the writer feels about it (急死了, 愁坏了, 急得不行): no topic
    r"|(?:急|愁|烦|气|吓|担心)(?:死|坏)(?:人|我|俺)?了|(?:急|愁)得(?:不行|要命|很|慌)"
)
# A clause that introduces the writer (我是…的住户/居民/业主, 我姓李, 我叫…, 今年…岁).
_SELF_RE = re.compile(r"^(?:我|俺|本人)(?:是|叫|姓|今年|住在|家住|住)|^今年.{0,4}岁|^本人")
SHORT_MESSAGE = 16  # characters: a message this short is all focus
# A clause that wants something (想办, 要领, 找谁): no mere telling of circumstances, even without a
# question mark (我想吃个低保).
_WANT_RE = re.compile(r"想|要|打算|准备|办|弄|领|交|补|换|报|查|问|找|求|帮|给")
# 几 that counts rather than asks (好几年了, 十几天, 几十岁).
_SOME_RE = re.compile(r"好几|十几|几十|几百")


@dataclass(frozen=True)
class Clause:
    text: str
    focus: bool


@dataclass(frozen=True)
class Reduced:
    clauses: tuple[Clause, ...]

    @property
    def text(self) -> str:
        """The reduced message: greetings, thanks and filler removed, clauses joined."""
        return " ".join(c.text for c in self.clauses)

    @property
    def focus(self) -> str:
        return " ".join(c.text for c in self.clauses if c.focus)

    @property
    def context(self) -> str:
        return " ".join(c.text for c in self.clauses if not c.focus)


_LEADING_GREETING_RE = re.compile(r"^(?:喂|嗯|哎|诶|你好|您好|你们好|您们好|大家好)+")


def _clean(clause: str) -> str:
    clause = _LEADING_GREETING_RE.sub("", clause)
    clause = _POLITE_RE.sub("", clause)
    clause = _FILLER_RE.sub("", clause)
    return clause.strip()


# 这个 pointing back at something the story named: 这个卡, 这个证, or bare before what is asked of it.
_REFERENCE = "这个"
# What follows a bare 这个 that points back rather than names (这个去哪领, 这个怎么办, 这个要不要交).
_BARE_AFTER = frozenset("去上到在怎咋要得能该找哪多什啥是有可办领交申补报")
# Last characters of a thing's name that 这个 + that character points back at (这个卡 for 社保卡).
_HEADS = frozenset("证照卡费金票车房险款贴助")


def resolve_reference(
    clause: str, before: list[str], named: Callable[[str], list[str]]
) -> tuple[str, bool] | None:
    """``clause`` with a 这个 that points back at a thing named in the clauses ``before`` it said as
    that thing (这个卡去哪补 after 社保卡没带: 社保卡去哪补; 这个去哪领 after 残疾人能领轮椅: 轮椅去哪领),
    and whether 这个 said what it points at (这个卡: True; a bare 这个: False, it points at all the
    clause before says); None when it points at nothing named. ``named`` gives the things a clause
    names that the knowledge base knows, in order."""
    at = clause.find(_REFERENCE)
    if at < 0:
        return None
    rest = clause[at + len(_REFERENCE) :]
    things = [w for c in before for w in named(c)]
    for word in reversed(things):  # 这个卡, 这个补贴: the last thing named that ends so
        for k in range(len(word) - 1, 0, -1):
            if rest.startswith(word[-k:]) and (k > 1 or word[-1] in _HEADS):
                return clause[:at] + word + rest[k:], True
    if rest[:1] and rest[0] in _BARE_AFTER:  # 这个去哪领: the thing the nearest clause names
        for c in reversed(before):
            last = named(c)
            if last:
                return clause[:at] + last[-1] + rest, False
    return None


def _clauses(text: str) -> list[str]:
    """The clauses of ``text`` without greetings, thanks and filler."""
    raw = [c for part in _CLAUSE_SPLIT.split(text) for c in _ASK_SPLIT.split(part) if c]
    clauses: list[str] = []
    for c in raw:
        if _GREETING_RE.match(c):
            continue
        c = _clean(c)
        if c and not _GREETING_RE.match(c):
            clauses.append(c)
    return clauses


def _tells(clause: str) -> bool:
    """Whether ``clause`` only tells circumstances (我家老头子瘫在床上, 我腿脚不好, 孩子刚出生): it neither
    asks nor wants anything."""
    clause = _SOME_RE.sub("", clause)
    return not (_QUESTION_RE.search(clause) or _ASK_RE.search(clause) or _WANT_RE.search(clause))


def without_circumstances(text: str, named: Callable[[str], list[str]]) -> str | None:
    """``text`` without the clauses that only tell the resident's circumstances (低保怎么申请啊 of
    低保怎么申请啊 我家老头子瘫在床上), when a clause beside them asks and names a thing the knowledge base
    knows (``named``); None when there are no such clauses, nothing is asked, or what is asked names
    nothing (老年证丢了 怎么办: the circumstances are the question)."""
    clauses = _clauses(text)
    if len(clauses) < 2:
        return None
    told = [_tells(c) for c in clauses]
    asking = [c for c, t in zip(clauses, told, strict=True) if not t]
    if not any(told) or not asking or not named(asking[-1]):
        return None
    return " ".join(asking)


def reduce_message(text: str, named: Callable[[str], list[str]] | None = None) -> Reduced:
    """Clauses of ``text`` without greetings, thanks and filler, with the request marked as focus.

    With ``named`` (the things a clause names that the knowledge base knows), a request that points
    back at something the story named (这个卡去哪补) is said with that thing's name, and judged so."""
    clauses = _clauses(text)
    if not clauses:
        return Reduced(())
    total = sum(len(c) for c in clauses)
    if total <= SHORT_MESSAGE or len(clauses) == 1:
        return _without_cues(clauses, 0)
    start = None
    for i in range(len(clauses) - 1, -1, -1):
        if _ASK_RE.search(clauses[i]):
            start = i
            break
    if start is None:
        for i in range(len(clauses) - 1, -1, -1):
            if _QUESTION_RE.search(clauses[i]) and not _SELF_RE.match(clauses[i]):
                start = i
                break
    if start is None:
        start = len(clauses) - 1
    asked = start
    # A focus of a few characters (这个钱怎么申请) leans on the clause before it ...
    while start > 0 and sum(len(c) for c in clauses[start:]) < 8 and not _SELF_RE.match(clauses[start - 1]):
        start -= 1
    # ... unless the request names what it points back at (这个证去哪办 after 可以办残疾证 is 残疾证去哪办).
    if named is not None and start > 0:
        for i in range(start, len(clauses)):
            said = resolve_reference(clauses[i], clauses[:i], named)
            if said is not None:
                clauses[i] = said[0]
                if said[1] and i >= asked:
                    start = asked
    return _without_cues(clauses, start)


def _without_cues(clauses: list[str], start: int) -> Reduced:
    """The clauses, the request from ``start`` on, without the words that say a question comes
    (想咨询一下, 麻烦问一下, 我想了解): they only mark where it starts and are no part of it (咨询 would
    be a topic word, the one of the legal-advice entry)."""
    out = []
    for i, c in enumerate(clauses):
        c = _ASK_LEAD_RE.sub("", c)
        if c:
            out.append(Clause(c, i >= start))
    return Reduced(tuple(out))


# A question said as an entry's phrasing but for politeness, particles and the way a question word
# is said (请问低保怎么申请呢, 老年证在哪里办啊): these go, so the two compare equal.
_PLAIN_LEAD_RE = re.compile(
    r"^(?:喂|嗯|你好|您好|麻烦|打扰一下|请问一下|请问|我?想问一下|我?想问问|我?想问下|我?想问|问一下|问下|我?想咨询一下|咨询一下)+"
)
_PLAIN_TAIL_RE = re.compile(r"(?:谢谢您?了?|谢谢你们|多谢)+$")
_PLAIN_PARTICLES_RE = re.compile(r"[呢啊吧呀嘛哦哈啦吗哩咧嘞呗]")
_PLAIN_WORDS = (("怎样", "怎么"), ("如何", "怎么"), ("哪里", "哪"), ("哪儿", "哪"))


def plain_question(text: str) -> str:
    """``text`` (folded) as compared with an entry's phrasings for a direct answer: no punctuation or
    spaces, no greeting or 请问 before it, no thanks after it, no particles, 怎样/如何 said 怎么 and
    哪里/哪儿 said 哪."""
    text = _PLAIN_TAIL_RE.sub("", _PLAIN_LEAD_RE.sub("", "".join(_CLAUSE_SPLIT.split(text))))
    for said, plain in _PLAIN_WORDS:
        text = text.replace(said, plain)
    return _PLAIN_PARTICLES_RE.sub("", text)


_SENTENCE_END_RE = re.compile(r"[?!;。？！；]+")


def sentences_of(text: str) -> list[str]:
    """The sentences of ``text`` (低保怎么申请？要哪些材料？: two)."""
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s.strip()]


# Asked when a place opens (银行几点开门, 社区医院几点上班, 超市什么时候关门, 游泳馆的营业时间): the place
# named before it is what the question is about. Said after folding (啥时候, 多会儿 → 什么时候).
_HOURS_RE = re.compile(
    r"(?:几点|什么时候)(?:开始|才|能)?(?:上班|下班|开门|关门|营业|办公|开放|有人)|几点(?:开|关)(?![^门]{0,1}[证票卡药])"
    r"|(?:上班|下班|开门|关门|营业|办公|开放)(?:的)?时间|开不开门|开门了?[吗没]"
)
# Leading words of a clause that name no place (请问, 俺想问, 那个 …), trailing 的.
_PLACE_LEAD = re.compile(r"^(?:请问|问一下|想问问?|我想问|俺想问|那个|这个|你们|咱们|咱|俺们|俺|我们|我|嗯|就是|还有)+")


def hours_place(text: str) -> str | None:
    """The words before an opening-hours question in its clause (``银行`` of 俺想取钱 银行几点开门,
    ``社区医院`` of 社区医院几点开门); None when the text asks no opening hours."""
    for clause in reversed(_CLAUSE_SPLIT.split(text)):
        found = _HOURS_RE.search(clause)
        if found is not None:
            before = _PLACE_LEAD.sub("", clause[: found.start()]).rstrip("的")
            return before
    return None
