"""The resident's own reports: 查进度 (every unfinished one, paged), a ticket number, follow-up
questions (我报的事怎么样了, 上次说的灯修了没有, 我投诉的事有结果没) and the rating of an answered one.

A follow-up is answered from the resident's tickets — status, who handles it, the deadline — and
never starts a new report; in the middle of a new report it calls that one off. It is recognised
by what the resident says (a reference to their own report, a question about its progress), not by
the intent engine's label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from rapidfuzz import fuzz

from bot.handler.choices import (
    is_cancel,
    is_no,
    is_page_word,
    numbered,
    parse_choice,
    parse_phone,
    phone_alone,
)
from bot.handler.context import Context
from bot.handler.middlewares import MARK
from bot.handler.router import PHASE_MENU, PHASE_STATE, Func, Router, State, Text
from bot.logmask import mask_phones
from bot.services import places, reports
from bot.services.dispatch import rules_for
from bot.services.hazards import rules_for as hazard_rules
from bot.services.reports import Report
from bot.services.tickets import CHINA, RATINGS
from intents.entities import extract_tickets
from knowledge.question import reduce_message

router = Router("reports")

PAGE = 5
LIST_STATE = "reports:list"
COMMENT_STATE = "reports:comment"

TEXTS = {
    "none": "您还没有提交过诉求。遇到问题可以直接告诉我，比如“5号楼门口路灯不亮”。",
    "none_open": "您反映的问题都已经办完了：",
    "not_found": "没有找到您名下编号为 {number} 的诉求，请核对一下编号。",
    "head": "您有 {total} 件诉求还在办理：",
    "head_page": "您的诉求（第 {first}–{last} 件，共 {total} 件）：",
    "more": "还有 {left} 件，回复“更多”查看。",
    "no_more": "已经是全部了。",
    "line": "{number}（{summary}）：{status}",
    "who": "，{who}负责",
    "unassigned": "，正在分派",
    "due": "，预计{when}前办好",
    "overdue": "，已超过预计时间，已催办",
    "answer": "：{resolution}。请回复“满意”或“不满意”评价",
    "latest": "。最新：{note}",
    "reason": "：{reason}",
    "followup_one": "您{day}反映的“{summary}”（{number}）：{status}",
    "followup_head": "您反映的问题：",
    "no_match": "没有找到您反映过“{subject}”的问题。",
    "followup_noted": "已把您的催问记在诉求上，办理人员会看到。",
    "followup_fresh": "刚提交不久，办理有进展会在这里通知您。",
    "followup_status": "办理有进展会在这里通知您。着急的话跟我说一声，我帮您催。",
    "urged_again": "好的，已再次催办（{numbers}），办理人员会看到。着急的话可以回复“转人工”找工作人员。",
    "chase_which": "您要催哪一件？回复数字，都要催就回复“都催”：\n{lines}",
    "supplement_added": "收到，已补充到诉求 {number}，办理人员会看到。还有要补充的可以继续发。",
    "supplement_late": "诉求 {number} 已经办结了，如果问题还在，请直接说说情况。",
    "urged_urgent": "已再次通知值班人员。情况危急请直接拨打110、119或120，不要等。",
    # An emergency chased whose hazard is known: its own lines (the gas company's for a leak).
    "urged_hazard": "已再次通知值班人员。情况危急不要等：{first}",
    "not_new": "好的，这次不登记新的问题。",
    "withdraw_ask": "要撤回诉求 {number}（{summary}）吗？撤回后就不再派人处理了。回复“确认”撤回，回复“不用”继续办理。",
    "withdraw_which": "您要撤回哪一件？回复数字：\n{lines}",
    "withdrawn": "好的，诉求 {number} 已撤回，工作人员会看到您说的情况。以后有事随时找我。",
    "withdraw_kept": "好的，诉求 {number} 继续办理。",
    "withdraw_late": "诉求 {number} 已经办结或不在办理中，不用撤回了。",
    "withdraw_none": "您现在没有在办的诉求，不用撤回。",
    "draft": "您刚才说的“{summary}”还没有登记好，",
    "draft_where": "还差具体位置：请告诉我几号楼几单元，或者发送微信位置。",
    "draft_phone": "还差一个联系电话：请留一个电话，不方便留的话回复“不留”，我马上帮您登记。",
    "rated_ok": "谢谢您的评价！诉求 {number} 已完结。",
    "rated_bad": "抱歉没让您满意，诉求 {number} 已重新办理，我们会尽快处理。",
    "ask_comment": "可以说说哪里不满意吗？直接回复，我们转给办理人员。",
    "comment_kept": "已转给办理人员，谢谢您。",
    "phone_none": (
        "我们这里没有单独登记您的电话：只有反映问题时留的联系电话会记在那件诉求上，您现在没有在办的诉求。"
        "以后反映问题时留新号码就行。\n{elsewhere}"
    ),
    "phone_ask": "您在办的诉求 {numbers} 留的联系电话：{phones}。请直接发新的电话号码，我帮您改过来；不改请回复“取消”。\n{elsewhere}",
    "phone_ask_none": "您在办的诉求 {numbers} 还没有留联系电话。请直接发电话号码，我帮您记上；不用的话回复“取消”。\n{elsewhere}",
    "phone_changed": "好的，诉求 {numbers} 的联系电话已改为 {phone}，工作人员需要时会打这个号码。",
    "phone_late": "您现在没有在办的诉求了，电话不用改。以后反映问题时留新号码就行。",
    "phone_kept": "好的，联系电话不改了。",
    "phone_elsewhere": "社区居民信息、社保、医保等登记的电话，请带身份证到社区服务中心窗口或找楼栋网格员更改。",
    "nothing_to_rate": "目前没有等您评价的诉求。如果问题还没解决，直接说说情况，我帮您登记；发“查进度”可以看看办理情况。",
}

# 查进度 and friends: a listing of the resident's reports.
STATUS_RE = re.compile(
    r"我的诉求|我的工单|我的反映|查进度|查询进度|查一下进度|看看进度|看进度|进度查询|诉求进度|工单进度|办理进度"
    r"|^(?:有)?进(?:度|展)(?:如何|怎样|怎么样|咋样|呢|吗|了吗)?[?？。！!]*$"
)
# A reference to the resident's own earlier report.
OWN_REPORT = re.compile(
    r"(?:我|俺|咱)(?:们|家)?(?:之前|上次|上回|前几天|前两天|昨天|前天|刚才|刚刚|早上|上午|下午|上周|上个?礼拜|上个?星期|上个月|前些天|前一阵)?"
    r"(?:报|反映|投诉|举报|报修|提|说|登记|留言)(?:的|得|过|了的)"
    r"|(?:我|俺|咱)的(?:投诉|反映|诉求|报修|工单|举报)"
    r"|(?:报修|报|反映|投诉|举报)(?:的|过的)(?:那个|那件|事|问题)"
    r"|上次|上回|之前(?:说|报|反映|提|投诉)|前几天(?:说|报|反映|投诉)|刚才(?:那个|说的|报的|反映的)"
    r"|那个(?:事|问题|诉求|工单)|那件事|这件事|不是新的|不是新问题|(?:问|查)(?:一下|问)?(?:进度|情况|结果)"
    r"|(?:我|俺|咱)(?:们|家)?(?:的)?那(?:个|件)\S{1,8}?的?(?:事|问题)"
)
# A question about progress.
PROGRESS = re.compile(
    r"怎么样|咋样|如何了|怎样了|结果|进度|进展|修了没|修好了?没|修好了?吗|修了吗|(?:处理|解决|办|弄|清理?|管)(?:好|完)?了?(?:没有?|吗|么)"
    r"|有人(?:管|来|处理)|什么时候|啥时候|几时|还没(?:修|处理|解决|人|弄|动静|好|来)|怎么还没|回复|回音|动静|消息|没下文|问问|问一下"
    r"|(?:什么|啥)情况|多久|多长时间|要等|几天(?:能|会|才)"
    r"|修不修|管不管|处理不处理|解决不解决|弄不弄|清不清|来不来"  # 到底修不修, 管不管: will it be done at all
)
# Urging without naming anything (能不能快点处理, 麻烦尽快, 怎么这么慢): about the open reports.
URGE = re.compile(r"快点|快些|快一点|尽快|赶紧|抓紧|赶快|催一下|催催|催一催|太慢|这么慢|等多久|等到什么时候|多久能"
                  r"|效率(?:太|真|很|也太|这么)?(?:低|差)|拖拖拉拉|磨磨蹭蹭")
_URGE_WORDS = re.compile(
    rf"{URGE.pattern}|能不能|能否|可不可以|可以|麻烦|帮忙|一点|处理|解决|弄|办|修|给|们|呀|啦|哈|呗|吧|好|行|不"
)
# What a follow-up says besides its subject, removed before matching the subject to a ticket.
_NOT_SUBJECT = re.compile(
    rf"{OWN_REPORT.pattern}|{PROGRESS.pattern}|现在|目前|这会儿"
    r"|能|会|要|等|过来|看看|修好|好了"  # 你们多久能来 / 啥时候能来修啊: when, not what
    r"|大概|大约|估计|差不多"  # 那大概什么时候能修好啊
    r"|[我你您们的了吗呢啊呀吧么嘛哦哎咋怎样啥什时候到底一直都也又才再来去人事情问题那这个件说过报修没有还是就在请帮查看一下诉求工单反映投诉]"
    r"|[\s\W\d]"
)
# Right after a reply about the resident's open reports (查进度, 我报的事咋样了), or right after a report
# was filed or an emergency registered, more of the same with no new subject ("怎么还没人来", "都三天了",
# "太慢了吧") urges those reports again: it is no new report. The marks' names (bot.handler.middlewares.MARK):
FOLLOWED = "followed"  # the reply listed the resident's open reports
# A progress question this soon after filing is told the report is new (see _follow_up_answer).
JUST_FILED = timedelta(minutes=10)
FILED = "filed"  # the reply filed a report (the complaint flow)
URGENT = "urgent"  # the reply registered an emergency (the urgent flow)
AGAIN = re.compile(
    r"还没|还不|怎么还|咋还|都.{0,3}[天周月]了|等了|没人来|没人管|没来|没动静|太慢|这么慢|什么时候|啥时候|多久|几时"
    r"|快点|快些|尽快|赶紧|抓紧|催"
)
_WAITED = re.compile(r"[一二两三四五六七八九十几半多好整]|上午|下午|早上|晚上|天|周|月|星期|礼拜|小时|钟头|等|来|能")
# "It is not a new report": the resident asks about an earlier one, not the one being told.
NOT_NEW = re.compile(r"不是新的|不是新问题|不是这个|之前的|以前的|上次|上回")
# The report being told, by the step it waits at: what is still missing.
DRAFT_STEPS = {"complaint:where": "draft_where", "complaint:phone": "draft_phone"}
RATING_RE = re.compile(r"^\s*(不满意|基本满意|非常满意|满意)[\s，,。.!！:：]*(.*)$", re.S)


# -------------------------------------------------------------------------------------- texts
# What a report starts with before it says anything ("喂 你好 我跟你说个事 …"): left out of its summary.
_LEAD_IN = re.compile(r"^(?:我|俺)?(?:想|要)?(?:跟|和|给)?(?:你|您|你们)?(?:说|讲|反映|反应|投诉)(?:一下|下|个|件)?(?:事|事儿|情况|问题)?$")

_AND_ALSO = re.compile(r"^(?:对了|还有|另外|再就是|顺便说一下|顺便)+")


def _summary(text: str, size: int = 12) -> str:
    """The first words of a report, greetings, filler and lead-ins left out."""
    clauses = [c.text for c in reduce_message(text).clauses if not _LEAD_IN.match(c.text)]
    joined = " ".join(clauses) or text.strip()
    stripped = _AND_ALSO.sub("", joined)
    short = stripped if len(stripped) >= 4 else joined
    return short[:size] + ("…" if len(short) > size else "")


def _when(dt: datetime) -> str:
    local = dt.astimezone(CHINA)
    return f"{local.month}月{local.day}日{local:%H:%M}"


def _day(dt: datetime) -> str:
    local = dt.astimezone(CHINA)
    return f"{local.month}月{local.day}日"


def _due(r: Report) -> str:
    """When a report should be done: the hour for a short deadline (an emergency's 2 hours), the
    day for days ("12月14日", not "12月14日06:18")."""
    assert r.deadline is not None
    return _when(r.deadline) if r.deadline - r.created_at <= timedelta(hours=24) else _day(r.deadline)


def _who(r: Report) -> str:
    """Who handles it, unless the status already says (已派给城管市政科)."""
    name = (r.assignee or r.department or "").replace("-", "")
    if not name:
        return TEXTS["unassigned"]
    return "" if name in r.status_label else TEXTS["who"].format(who=name)


def describe(r: Report) -> str:
    """Status, who handles it and by when (or the answer, or the reason it was refused)."""
    text = r.status_label
    if r.open:
        text += _who(r) if r.status != "submitted" else ""
        if r.overdue:
            text += TEXTS["overdue"]
        elif r.deadline is not None:
            text += TEXTS["due"].format(when=_due(r))
    elif r.status == "answered" and r.resolution:
        text += TEXTS["answer"].format(resolution=r.resolution[:80].rstrip("。"))
    elif r.status == "rejected" and r.reject_reason:
        text += TEXTS["reason"].format(reason=r.reject_reason[:80])
    note = r.latest_note
    if note and r.open and note not in (r.resolution, r.reject_reason) and not note.startswith("居民不满意"):
        text += TEXTS["latest"].format(note=note[:60])
    return text


def line(r: Report) -> str:
    return TEXTS["line"].format(number=r.number, summary=_summary(r.text), status=_ended(describe(r)))


def _ended(status: str) -> str:
    """A status that ends its line ends its sentence: "…预计11月30日前办好。"."""
    return status if status.endswith(("。", "！", "？", ".", "!", "?")) else status + "。"


async def _page(ctx: Context, offset: int) -> str:
    assert ctx.resident is not None
    now = ctx.rt.clock.now()
    rows, total = await reports.listed(ctx.rt.db, ctx.resident.id, now, offset=offset, limit=PAGE)
    if total == 0:
        await ctx.fsm.clear()
        done = await reports.recent(ctx.rt.db, ctx.resident.id, now, limit=3)
        if not done:
            return TEXTS["none"]
        return "\n".join([TEXTS["none_open"], *(line(r) for r in done)])
    if not rows:
        await ctx.fsm.clear()
        return TEXTS["no_more"]
    ctx.extra["followed"] = [(r.id, r.number) for r in rows if r.open]
    head = (TEXTS["head"].format(total=total) if total <= PAGE
            else TEXTS["head_page"].format(first=offset + 1, last=offset + len(rows), total=total))
    out = [head, *(line(r) for r in rows)]
    left = total - offset - len(rows)
    if left > 0:
        out.append(TEXTS["more"].format(left=left))
        await ctx.fsm.set(LIST_STATE, offset=offset + len(rows))
    else:
        await ctx.fsm.clear()
    return "\n".join(out)


# -------------------------------------------------------------------------------------- status
def _is_status(ctx: Context) -> bool:
    if ctx.menu_key == "MY_TICKETS":
        return True
    text = ctx.text
    return bool(text) and len(text) <= 40 and (bool(STATUS_RE.search(text)) or bool(extract_tickets(text)))


@router.message(Func(_is_status, phase=PHASE_STATE, when=lambda p: p.text or p.menu_key))
async def status(ctx: Context) -> str:
    note = _leave_report(ctx)
    await ctx.fsm.clear()
    if ctx.resident is None:
        return TEXTS["none"]
    numbers = extract_tickets(ctx.text) if ctx.text else []
    if numbers:
        rows = await reports.by_numbers(ctx.rt.db, ctx.resident.id, numbers, ctx.rt.clock.now())
        if not rows:
            return TEXTS["not_found"].format(number=numbers[0])
        ctx.extra["followed"] = [(r.id, r.number) for r in rows if r.open]
        await _remember(ctx)
        return _with(note, "\n".join(line(r) for r in rows))
    page = await _page(ctx, 0)
    await _remember(ctx)
    return _with(note, page)


@router.message(State(LIST_STATE), Text(predicate=is_page_word))
async def more(ctx: Context) -> str:
    if ctx.resident is None:
        return TEXTS["none"]
    page = await _page(ctx, int(ctx.fsm.data.get("offset", 0)))
    await _remember(ctx)  # the last page: 更多 once more says that was all
    return page


async def _remember(ctx: Context) -> None:
    """After a reply about open reports (and no other step set): remember them for a word more."""
    followed = ctx.extra.get("followed")
    if followed and ctx.fsm.state is None:
        await ctx.fsm.set(MARK + FOLLOWED, tickets=[[i, n] for i, n in followed])


def _again(ctx: Context) -> bool:
    mark, text = ctx.extra.get("mark"), ctx.text
    if not mark or mark[0] != FOLLOWED or not text or len(text) > 30 or ctx.resident is None:
        return False
    return chases(text)


def urges_only(text: str) -> bool:
    """"能不能快点", "麻烦尽快": urging, naming nothing."""
    return bool(URGE.search(text)) and len(_URGE_WORDS.sub("", subject(text))) <= 1


def chases(text: str) -> bool:
    """"怎么还没人来", "都等了三天了": a chase that names nothing new."""
    return bool(AGAIN.search(text)) and len(_WAITED.sub("", _URGE_WORDS.sub("", subject(text)))) <= 1


@router.message(Func(_again, phase=PHASE_STATE, when=lambda p: p.text and p.mark == FOLLOWED))
async def again(ctx: Context) -> str:
    """"怎么还没人来" right after the reports' progress: urged again, not taken for a new report. After
    several were shown, "帮我催一下" asks which (all of them only when the words say so: 都催一下)."""
    assert ctx.resident is not None
    followed = [(int(i), str(n)) for i, n in ctx.extra["mark"][1].get("tickets", [])]
    if len(followed) > 1 and not _ALL.search(ctx.text):
        rows = await reports.listed(ctx.rt.db, ctx.resident.id, ctx.rt.clock.now(), limit=50)
        shown = [r for r in rows[0] if r.id in {i for i, _ in followed}]
        if len(shown) > 1:
            return await ask_which_chase(ctx, shown)
    return await _urge(ctx, followed)


async def _urge(ctx: Context, followed: list[tuple[int, str]], said: str | None = None) -> str:
    """The reports chased (``said``, default the message, noted on each), and remembered for a word more."""
    assert ctx.resident is not None
    await reports.followed_up(ctx.rt.db, ctx.resident.id, [i for i, _ in followed], said or ctx.text,
                              ctx.rt.clock.now())
    ctx.extra["followed"] = followed
    await _remember(ctx)
    return TEXTS["urged_again"].format(numbers="、".join(n for _, n in followed))


# A chase that names every report (都催一下, 全部催一下, 两个都催): no question which.
_ALL = re.compile(r"都|全部|所有|一起|统统|两[个件]|每[个件]|几[个件]")
CHASING = "chase"  # the mark of the question "您要催哪一件？": only the next message answers it
_PICK_FILLER = re.compile(r"催一?催|催一下|催|帮我|帮忙|麻烦|一下|的|那个|那件|这个|吧|呗|啊|呀|就|先|[\s，,。.!！~～]")


async def ask_which_chase(ctx: Context, rows: list[Report]) -> str:
    """"您要催哪一件？" with the open reports numbered; the chase's words are kept for the answer."""
    shown = rows[:PAGE]
    await ctx.fsm.set(MARK + CHASING, tickets=[[r.id, r.number] for r in shown],
                      subjects=[r.subject for r in shown], said=ctx.text.strip()[:200])
    return TEXTS["chase_which"].format(lines=numbered([f"{r.number}（{_summary(r.text)}）" for r in shown]))


def _chase_pick(ctx: Context) -> list[tuple[int, str]] | None:
    """The reports the answer to "您要催哪一件？" picks: a number (第二个), every one (都催) or one
    named by its subject (灯那个); None when it answers nothing (a message of its own)."""
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != CHASING or not ctx.text or len(ctx.text) > 20:
        return None
    tickets = [(int(i), str(n)) for i, n in mark[1].get("tickets", [])]
    word = _PICK_FILLER.sub("", ctx.text)
    if _ALL.search(ctx.text) and len(word) <= 4:
        return tickets
    picked = parse_choice(word, len(tickets)) or parse_choice(ctx.text, len(tickets))
    if picked is not None:
        return [tickets[picked - 1]]
    named = [n for n in extract_tickets(ctx.text) if n in {n for _, n in tickets}]
    if named:
        return [t for t in tickets if t[1] in named]
    subjects = [str(s) for s in mark[1].get("subjects", [])]
    about = subject(ctx.text)
    found = [t for t, s in zip(tickets, subjects, strict=False) if about and _about(about, s)]
    return found if len(found) == 1 else None


@router.message(Func(lambda ctx: _chase_pick(ctx) is not None, phase=PHASE_STATE,
                     when=lambda p: p.text and p.mark == CHASING))
async def chase_picked(ctx: Context) -> str:
    picked = _chase_pick(ctx)
    assert picked is not None
    said = str(ctx.extra["mark"][1].get("said") or "")
    return await _urge(ctx, picked, f"{said}（{ctx.text.strip()}）" if said else None)


# The things reports are about (the complaint flow's too).
THING = re.compile(
    r"路灯|灯|电梯|楼道|下水道?|水管|管道|暖气|燃气|煤气|天然气|井盖|树枝|树|垃圾|停车|车位|飞线|充电|装修|油烟|噪音"
    r"|蚊子|苍蝇|蟑螂|老鼠|虫|野狗|狗|猫|流浪|墙|屋顶|房顶|窗|门禁|大门|单元门|路面|马路|道路|坑|台阶|扶手|栏杆|绿化|草坪"
    r"|化粪池|污水|水压|自来水|停水|停电|电线|电表|水表|网线|信号|广告|小广告|摊|占道|烧烤|广场舞|喇叭|施工|工地|花坛|花池"
)


# "I'll add something" (补充一下, 我再说一下, 再补充两句) leading more words, right after a report was filed
# or after the reports' progress naming one open report: those words are added to that report (a
# note on its timeline for the staff), however much they name a thing or what is wrong with it.
SUPPLEMENT = re.compile(
    r"^(?:那个|对了|哦|嗯|还有)?[\s,，]*(?:我|俺)?(?:再|还)?(?:补充|说明|说|讲|交代)(?:一下|下|一句|两句|几句|个情况|点)"
    r"[\s,，:：。.!！]*(?P<rest>\S.{3,})$"
)


def _supplemented(ctx: Context) -> tuple[int, str] | None:
    """The report the supplement is for: the one just filed, or the only open one just shown."""
    mark = ctx.extra.get("mark")
    if not mark or not ctx.text or ctx.resident is None or SUPPLEMENT.match(ctx.text.strip()) is None:
        return None
    if mark[0] == FILED and isinstance(mark[1].get("ticket_id"), int):
        return int(mark[1]["ticket_id"]), str(mark[1].get("number", ""))
    shown = mark[1].get("tickets", []) if mark[0] == FOLLOWED else []
    return (int(shown[0][0]), str(shown[0][1])) if len(shown) == 1 else None


# More about the thing a report just filed or shown is about, with no place of its own (对了 灯罩也掉了
# after the report of a light, 电梯按钮也不亮 after one of a lift): added to that report like a
# supplement. Another thing (对了 3号楼电梯也坏了 after the light) or a place is a report of its own.
SAME_THING_MAX = 40


# A part of a thing, right after its name (灯罩, 灯管, 电梯按钮, 窗框); 又 (又堆了好多垃圾) is the thing
# happening again, a report of its own.
_PART = re.compile(r"罩|泡|管|座|杆|柱|头|盖|按钮|按键|开关|把手|拉手|门|线|壳|框|玻璃|螺丝|链|叶|板|面板")


# A part named without its thing (罩子也掉了 after a light, 按钮也不灵了 after a lift), by the things it
# is a part of: joined to a report of one of those, never to a report of anything else.
_PARTS_OF = (
    (re.compile(r"灯"), re.compile(r"罩子?|灯?泡|灯管|灯头|灯座|开关|灯杆|杆子")),
    (re.compile(r"电梯"), re.compile(r"按钮|按键|轿厢|显示屏|屏幕|警铃|对讲|楼层")),
    (re.compile(r"门禁|大门|单元门|门"), re.compile(r"门?锁|把手|拉手|闭门器|刷卡|密码|对讲|按钮|门铃|合页")),
    (re.compile(r"窗"), re.compile(r"玻璃|窗框|把手|纱窗|锁|合页")),
    (re.compile(r"水管|管道|下水|自来水|水表|暖气"), re.compile(r"阀门?|水?龙头|接口|接头|管子|暖气片")),
    (re.compile(r"井盖"), re.compile(r"盖子")),
    (re.compile(r"扶手|栏杆|台阶"), re.compile(r"螺丝")),
)


def _names_part(text: str) -> bool:
    """``text`` names a part of a thing (灯罩, 电梯按钮, or 罩子 alone), and nothing happening again (又)."""
    if "又" in text:
        return False
    if THING.search(text) is None:
        return any(part.search(text) for _, part in _PARTS_OF)
    return any(_PART.match(text, m.end()) for m in THING.finditer(text))


def same_thing(text: str, report_text: str) -> bool:
    """Whether ``text`` names a part of the thing ``report_text`` names, and nothing else: 灯罩 → 路灯;
    a part alone, of a thing the report names: 罩子 → 楼道灯."""
    had = [m.group() for m in THING.finditer(report_text)]
    if not _names_part(text):
        return False
    if THING.search(text) is None:
        return any(part.search(text) and any(thing.search(h) for h in had) for thing, part in _PARTS_OF)
    return all(any(m.group() in h or h in m.group() for h in had) for m in THING.finditer(text))


async def _same_thing_reported(ctx: Context) -> tuple[int, str] | None:
    """The one report (just filed, or among those just shown) a short detail names the thing of."""
    mark, text = ctx.extra.get("mark"), (ctx.text or "").strip()
    if not mark or ctx.resident is None or not text or len(text) > SAME_THING_MAX or not _names_part(text):
        return None  # (no part named: the reports are not read)
    if (places.QUESTION.search(text) or PROGRESS.search(text) or AGAIN.search(text) or URGE.search(text)
            or _rating_said(text)):
        return None  # asked of it, urged or rated: the follow-up's or the rating's
    if places.from_text(text) is not None or places.landmark(text) is not None:
        return None  # a place of its own: a report of its own
    if mark[0] == FILED and isinstance(mark[1].get("ticket_id"), int):
        shown = {int(mark[1]["ticket_id"]): str(mark[1].get("number", ""))}
    elif mark[0] == FOLLOWED:
        shown = {int(i): str(n) for i, n in mark[1].get("tickets", [])}
    else:
        return None
    found = [i for i, t, _ in await _listed_texts(ctx) if i in shown and same_thing(text, t)]
    return (found[0], shown[found[0]]) if len(found) == 1 else None


async def _supplementing(ctx: Context) -> bool:
    found = _supplemented(ctx) or await _same_thing_reported(ctx)
    ctx.extra["supplement"] = found
    return found is not None


@router.message(Func(_supplementing, phase=PHASE_STATE, when=lambda p: p.text and p.mark in (FILED, FOLLOWED)))
async def supplement(ctx: Context) -> str:
    found = ctx.extra["supplement"]
    assert found is not None
    return await add_to_report(ctx, *found)


async def add_to_report(ctx: Context, ticket_id: int, number: str, said: str | None = None) -> str:
    """The message as a note on the report's timeline for the staff (the previous reply's mark kept:
    more may follow), and ``said`` (default: 已补充到诉求…) back; a report no longer open says so."""
    assert ctx.resident is not None
    if not await reports.add_update(ctx.rt.db, ticket_id, ctx.resident.id, ctx.text.strip(), ctx.rt.clock.now()):
        return TEXTS["supplement_late"].format(number=number)
    ctx.intent = "complaint"
    await ctx.fsm.set(MARK + ctx.extra["mark"][0], **ctx.extra["mark"][1])
    return (said or TEXTS["supplement_added"]).format(number=number)


def _more_after_all(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    return mark is not None and mark[0] == FOLLOWED and is_page_word(ctx.text or "")


@router.message(Func(_more_after_all, phase=PHASE_STATE, when=lambda p: p.text and p.mark == FOLLOWED))
async def all_shown(ctx: Context) -> str:
    """更多 / 下一页 right after the reports' last page (or the whole list): that was all."""
    ctx.extra["followed"] = [(int(i), str(n)) for i, n in ctx.extra["mark"][1].get("tickets", [])]
    await _remember(ctx)  # a chase (怎么还没人来) still urges them
    return TEXTS["no_more"]


def _just_filed(ctx: Context) -> int | None:
    """The report the previous reply filed (or the emergency it registered), if it did."""
    mark = ctx.extra.get("mark")
    ticket_id = mark[1].get("ticket_id") if mark and mark[0] in (FILED, URGENT) else None
    return ticket_id if isinstance(ticket_id, int) else None


# ------------------------------------------------------------------------------- contact phone
# The resident wants to change the phone they left (我想改一下我登记的电话, 我换手机号了, 电话改成138…):
# the system keeps a phone only with a report (its contact), so it is changed on their open reports
# — the number in the same message, or the next message's — and what other records hold (户籍, 社保)
# is changed at the centre's window.
CHANGE_PHONE = re.compile(
    r"(?:改|换|更改|修改|变更|更新|更换)(?:一下|下|个)?(?:我|俺)?(?:的)?(?:登记|留|填|预留|报)?(?:的)?(?:联系)?"
    r"(?:电话|手机号|号码|联系方式)"
    r"|(?:电话|手机号|手机号码|号码|联系方式)(?:换|改|变|更换|换成|改成|变成)(?:了|成|为)"
)
CHANGING_PHONE = "phone"  # the mark of the question "请发新的电话号码": only the next message answers it


def _changes_phone(ctx: Context) -> bool:
    text = ctx.text
    return bool(text) and len(text) <= 40 and ctx.resident is not None and CHANGE_PHONE.search(text) is not None


@router.message(Func(_changes_phone, phase=PHASE_STATE, when=lambda p: p.text and not p.state))
async def phone_change(ctx: Context) -> str:
    assert ctx.resident is not None
    rows = await reports.contacts(ctx.rt.db, ctx.resident.id)
    elsewhere = TEXTS["phone_elsewhere"]
    if not rows:
        return TEXTS["phone_none"].format(elsewhere=elsewhere)
    number = parse_phone(ctx.text)
    if number is not None:
        return await _phone_changed(ctx, number)
    await ctx.fsm.set(MARK + CHANGING_PHONE, numbers=[n for n, _ in rows])
    phones = "、".join(dict.fromkeys(mask_phones(p) for _, p in rows if p))
    numbers = "、".join(n for n, _ in rows[:PAGE])
    if not phones:
        return TEXTS["phone_ask_none"].format(numbers=numbers, elsewhere=elsewhere)
    return TEXTS["phone_ask"].format(numbers=numbers, phones=phones, elsewhere=elsewhere)


async def _phone_changed(ctx: Context, number: str) -> str:
    assert ctx.resident is not None
    changed = await reports.change_contact(ctx.rt.db, ctx.resident.id, number, ctx.rt.clock.now())
    if not changed:
        return TEXTS["phone_late"]
    return TEXTS["phone_changed"].format(numbers="、".join(changed[:PAGE]), phone=mask_phones(number))


def _new_phone(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != CHANGING_PHONE or not ctx.text:
        return False
    return phone_alone(ctx.text) is not None or is_cancel(ctx.text)


@router.message(Func(_new_phone, phase=PHASE_STATE, when=lambda p: p.text and p.mark == CHANGING_PHONE))
async def new_phone(ctx: Context) -> str:
    """The answer to "请发新的电话号码", as the very next message; anything else is a message of its
    own and the phones stay."""
    number = phone_alone(ctx.text)
    if number is None:
        return TEXTS["phone_kept"]
    return await _phone_changed(ctx, number)


# ----------------------------------------------------------------------------------- withdrawal
# The resident calls a filed report off (撤回): right after it was filed ("算了 已经好了"), or naming it
# ("刚才那个投诉撤了吧 已经清了", "GD20261207-0005 不用来了"). Asked once before it is closed.
WITHDRAW = re.compile(
    r"撤(?:销|回|掉|了|单|诉求|投诉)|不用(?:来|修|管|处理|弄|派人|来人)了|不需要(?:处理|来人|修|管)了"
    r"|已经(?:有人|被|给)?(?:好|修|弄|清|清理|收拾|处理|解决|没事)(?:好|完|掉|走)?了|自己(?:找人)?(?:修|弄|处理|解决)(?:好)?了"
)
# "算了 …" / "不用了 …" with whatever reason follows.
_CALL_OFF = re.compile(r"^(?:那|那就|哦|嗯|好)?(?:算了|不用了|不需要了|不报了|不要了)")
_REFERS = re.compile(r"刚才|刚刚|上次|之前|那个|这个|那件|投诉|诉求|工单|报修|反映的|报的|GD\d{8}", re.I)
# "我想撤回" alone: about the resident's reports (which one is asked; none open is said so).
_BARE_WITHDRAW = re.compile(r"^(?:我|俺)?(?:想|要)?(?:撤回|撤销)(?:一下|下)?(?:吧|啊|呀)?[。.!！]*$")
WITHDRAWING = "withdraw"  # the mark of the question "要撤回…吗？": only the next message answers it
_WITHDRAW_YES = {"确认", "确定", "确认撤回", "撤回", "撤吧", "撤", "是", "是的", "对", "对的", "嗯", "好", "好的", "行", "1"}
_WITHDRAW_NO = {"不", "不用", "不撤", "不撤了", "不要", "算了", "不了", "否", "2", "继续", "继续办", "继续办理"}
# Changing one's mind back at "要撤回…吗？" (还是报吧, 还是要办, 别撤了): the report stays.
_KEEP = re.compile(r"^(?:那|那就|算了|嗯)?(?:还是|继续|接着|就)(?:要|得)?(?:报|办|处理|登记|弄)|^(?:那|那就)?(?:不|别|先别|先不|不用)撤")


def _keeps(word: str) -> bool:
    return word in _WITHDRAW_NO or is_no(word) or _KEEP.match(word) is not None



def _withdraws(ctx: Context) -> bool:
    text = ctx.text
    if not text or len(text) > 40 or ctx.resident is None or ctx.fsm.state is not None:
        return False
    mark = ctx.extra.get("mark")
    if mark and mark[0] == URGENT:
        return False  # "已经好了" after an emergency is news for the duty staff (the urgent flow)
    said = WITHDRAW.search(text) is not None or is_cancel(text) or _CALL_OFF.match(text) is not None
    # right after the reports' progress (查进度, 怎么样了), "撤回吧" is about the reports just shown
    shown = mark is not None and mark[0] == FOLLOWED
    return said and (_just_filed(ctx) is not None or _REFERS.search(text) is not None or shown
                     or _BARE_WITHDRAW.match(text) is not None)


@router.message(Func(_withdraws, phase=PHASE_STATE, when=lambda p: p.text and not p.state))
async def withdraw_start(ctx: Context) -> str:
    assert ctx.resident is not None
    now = ctx.rt.clock.now()
    filed, numbers = _just_filed(ctx), extract_tickets(ctx.text)
    if numbers:
        rows = [r for r in await reports.by_numbers(ctx.rt.db, ctx.resident.id, numbers, now) if r.open]
    else:
        rows, _total = await reports.listed(ctx.rt.db, ctx.resident.id, now, limit=50)
        rows = [r for r in rows if r.open]
        mark = ctx.extra.get("mark")
        shown = {int(i) for i, _n in mark[1].get("tickets", [])} if mark and mark[0] == FOLLOWED else set()
        if filed is not None:
            rows = [r for r in rows if r.id == filed] or rows
        elif shown and not _REFERS.search(ctx.text):
            rows = [r for r in rows if r.id in shown] or rows
        if filed is None and len(rows) > 1:
            rows = _matching(rows, ctx.text) or rows
    if not rows:
        return TEXTS["withdraw_none"]
    reason = ctx.text.strip()[:200]
    await ctx.fsm.set(MARK + WITHDRAWING, ids=[r.id for r in rows[:PAGE]], numbers=[r.number for r in rows[:PAGE]],
                      reason=reason)
    if len(rows) == 1:
        return TEXTS["withdraw_ask"].format(number=rows[0].number, summary=_summary(rows[0].text, 16))
    return TEXTS["withdraw_which"].format(lines=numbered([f"{r.number}（{_summary(r.text)}）" for r in rows[:PAGE]]))


def _withdraw_answer(ctx: Context) -> bool:
    mark = ctx.extra.get("mark")
    if not mark or mark[0] != WITHDRAWING or not ctx.text:
        return False
    ids = mark[1].get("ids") or []
    word = re.sub(r"[\s,，.。!！~～吧啊呀]+", "", ctx.text)
    if len(ids) > 1:
        return parse_choice(ctx.text, len(ids)) is not None or _keeps(word)
    return word in _WITHDRAW_YES or _keeps(word)


@router.message(Func(_withdraw_answer, phase=PHASE_STATE, when=lambda p: p.text and p.mark == WITHDRAWING))
async def withdraw_answer(ctx: Context) -> str:
    """The answer to "要撤回…吗？", as the very next message; anything else is a message of its own
    and the report stays."""
    assert ctx.resident is not None
    data = dict(ctx.extra["mark"][1])
    ids, numbers = [int(i) for i in data.get("ids", [])], [str(n) for n in data.get("numbers", [])]
    word = re.sub(r"[\s,，.。!！~～吧啊呀]+", "", ctx.text)
    if _keeps(word):
        return TEXTS["withdraw_kept"].format(number="、".join(numbers))
    index = (parse_choice(ctx.text, len(ids)) or 1) - 1 if len(ids) > 1 else 0
    report = await reports.withdraw(ctx.rt.db, ids[index], ctx.resident.id, str(data.get("reason") or ""),
                                    ctx.rt.clock.now())
    if report is None:
        return TEXTS["withdraw_late"].format(number=numbers[index])
    return TEXTS["withdrawn"].format(number=report.number)


def _leave_report(ctx: Context) -> str | None:
    """Asking about old reports in the middle of a new one: the new one is not filed."""
    return TEXTS["not_new"] if (ctx.fsm.state or "").startswith("complaint:") else None


def _with(note: str | None, text: str) -> str:
    return f"{note}\n{text}" if note else text


# ---------------------------------------------------------------------------------- follow-ups
def subject(text: str) -> str:
    """What a follow-up is about once the asking words are gone: "灯" in "上次说的灯修了没有"."""
    return _NOT_SUBJECT.sub("", text)


def _about(about: str, report_text: str) -> bool:
    """Whether a report's text holds most of what a follow-up is about ("灯" → 路灯不亮)."""
    shared = sum(ch in report_text for ch in about) / len(about)
    return shared >= 0.5 or fuzz.partial_ratio(about, report_text) >= 75


def _matching(rows: list[Report], text: str) -> list[Report]:
    about = subject(text)
    return [r for r in rows if _about(about, r.subject)] if about else []


# An earlier report named and nothing more said of it ("就是我上礼拜说的那个下水道"): asked about, not
# reported again ("我之前反映的下水道又堵了" says something new of it).
_NAMED_ONLY = re.compile(r"(?:报|说|反映|投诉|提|登记)(?:的|过的)(?:那个|那件)?(?P<what>[^，,。？?！!\s坏堵漏又还不没]{1,8})[啊呀呢吧嘛]?$")


async def _is_follow_up(ctx: Context) -> bool:
    text = ctx.text
    if not text or len(text) > 60 or ctx.resident is None:
        return False
    own, progress = OWN_REPORT.search(text), PROGRESS.search(text)
    filed = _just_filed(ctx)
    if filed is not None and len(text) <= 30 and chases(text):
        ctx.extra["follow_up"] = [filed]  # 怎么还没人来管, right after it was filed
        return True
    if own and (progress or len(subject(text)) <= 2 or _NAMED_ONLY.search(text)):
        return True  # 我报的事怎么样了 / 不是新的 我就是问问刚才那个 / 就是我上礼拜说的那个下水道
    if urges_only(text):
        found = [i for i, _, _ in await _listed_texts(ctx)]
        if found:
            ctx.extra["follow_up"] = found  # 能不能快点处理: every open report is urged
            return True
        # None filed yet: 你们多久能来 while a report is being told is about that one (below).
    if ctx.fsm.state is None and _CHASE_ALONE.match(re.sub(r"[\s，,。.!！~～]+", "", text)):
        found = [i for i, _, _ in await _listed_texts(ctx)]
        if found:
            ctx.extra["follow_up"] = found
        return True  # 都催 / 催一下 with nothing else said: those reports, or the news that there are none
    if not progress:
        return False
    # 灯修了没有: a progress question about something the resident has reported.
    about = subject(text)
    if not about:
        # 怎么样了 / 咋样了 / 有结果没: asked outside any step by a resident with unfinished reports,
        # it is about them (the one just filed, else every one); no new report is started.
        if len(text) > 12:
            return False
        if ctx.fsm.state in DRAFT_STEPS and ctx.fsm.data.get("c_text"):
            return not await _listed_texts(ctx)  # about the only report, still being told (_about_draft)
        if ctx.fsm.state is not None:
            return False
        found = [filed] if filed is not None else [i for i, _, _ in await _listed_texts(ctx)]
        if found:
            ctx.extra["follow_up"] = found
        return bool(found)
    if ctx.fsm.state in DRAFT_STEPS and _about(about, str(ctx.fsm.data.get("c_text") or "")):
        return True  # about the report being told (answered by _about_draft)
    found = [i for i, t, category in await _listed_texts(ctx) if _about(about, f"{t} {category or ''}")]
    if found:
        ctx.extra["follow_up"] = found
    return bool(found)


# A chase and nothing else (都催, 帮我催一下, 全部催催吧): about the resident's open reports.
_CHASE_ALONE = re.compile(r"^(?:那|那就)?(?:帮我|麻烦|给我)?(?:都|全都|全部|一起)?催(?:一下|一催|催|了)?(?:吧|啊|呀|哈|呗)?$")


async def _listed_texts(ctx: Context) -> list[tuple[int, str, str | None]]:
    """The resident's unfinished reports (id, text): none, and nothing read, for a resident who
    never reported anything (most who ask 怎么样了 about something else)."""
    assert ctx.resident is not None
    if reports.never_reported(ctx.resident):
        return []
    return await reports.listed_texts(ctx.rt.db, ctx.resident.id)


def draft_reminder(state: str, data: Mapping[str, object]) -> str | None:
    """"您刚才说的“楼道灯坏了”还没有登记好，还差具体位置：…" for a report waiting at ``state``
    (the complaint flow's place or phone step); None at any other step."""
    step = DRAFT_STEPS.get(state)
    if step is None:
        return None
    return TEXTS["draft"].format(summary=_summary(str(data.get("c_text") or ""), 16)) + TEXTS[step]


def _about_draft(ctx: Context, rows: list[Report]) -> str | None:
    """A progress question about the report being told right now ("刚才说的漏水有人处理没" while
    the phone is asked): it is not filed yet, so say what is missing and keep the report going."""
    step = DRAFT_STEPS.get(ctx.fsm.state or "")
    draft = str(ctx.fsm.data.get("c_text") or "")
    about = subject(ctx.text)
    if step is not None and draft and not about and not rows and PROGRESS.search(ctx.text):
        return draft_reminder(ctx.fsm.state or "", ctx.fsm.data)  # a bare 怎么样了: nothing else to ask of
    if step is None or not draft or not about or NOT_NEW.search(ctx.text) or not _about(about, draft):
        return None
    if any(_about(about, r.text) for r in rows):
        return None  # an earlier report of the same thing: that is the one asked about
    return draft_reminder(ctx.fsm.state or "", ctx.fsm.data)


def _draft_kept(ctx: Context) -> tuple[str, dict[str, object]] | None:
    """A question about an earlier report in the middle of telling a new one ("我那个噪音的事咋样了"
    while the place of 楼道灯坏了 is asked): both are answered — the earlier report's progress, then
    the new one's missing part again. "不是新的 / 上次那个", or a question about the same thing as
    the new one, calls the new one off."""
    state, draft = ctx.fsm.state or "", str(ctx.fsm.data.get("c_text") or "")
    if state not in DRAFT_STEPS or not draft or NOT_NEW.search(ctx.text):
        return None
    about = subject(ctx.text)
    if about and _about(about, draft):
        return None  # "垃圾清了没有" while telling of more 垃圾: the new one was the old one again
    return state, dict(ctx.fsm.data)


@router.message(Func(_is_follow_up, phase=PHASE_STATE, when=lambda p: p.text))
async def follow_up(ctx: Context) -> str:
    assert ctx.resident is not None
    now = ctx.rt.clock.now()
    rows, total = await reports.listed(ctx.rt.db, ctx.resident.id, now, limit=50)
    draft = _about_draft(ctx, rows)
    if draft is not None:
        return draft
    kept = _draft_kept(ctx)
    note = None if kept is not None else _leave_report(ctx)
    await ctx.fsm.clear()
    answer = await _follow_up_answer(ctx, rows, total, now, paged=kept is None)
    mark = ctx.extra.get("mark")
    if mark and mark[0] == URGENT and ctx.extra.get("follow_up"):
        answer += "\n" + urged_urgent(ctx, rows, mark[1].get("ticket_id"))  # who to call meanwhile
    if kept is None:
        await _remember(ctx)
    if kept is not None:
        state, data = kept
        await ctx.fsm.set(state, **data)
        answer += "\n" + (draft_reminder(state, data) or "")
    return _with(note, answer)


def urged_urgent(ctx: Context, rows: list[Report], ticket_id: object) -> str:
    """Whom to call while the duty staff come: the lines of the emergency's own hazard when its
    words name one (a gas leak: the gas company first), else 110, 119 or 120."""
    chased = next((r for r in rows if r.id == ticket_id), None)
    hazard = hazard_rules(ctx.rt.settings.data_dir).recognise(chased.text) if chased is not None else None
    return TEXTS["urged_hazard"].format(first=hazard.first) if hazard is not None else TEXTS["urged_urgent"]


async def _follow_up_answer(ctx: Context, rows: list[Report], total: int, now: datetime, paged: bool) -> str:
    assert ctx.resident is not None
    chosen = [r for r in rows if r.id in ctx.extra.get("follow_up", [])] or _matching(rows, ctx.text)
    out: list[str] = []
    if not chosen:
        if total == 0:
            return await _page(ctx, 0)  # nothing open: what was done, or none at all
        about = subject(ctx.text)
        if about and len(about) <= 8:
            out.append(TEXTS["no_match"].format(subject=about))
        chosen = rows
    urged = bool(AGAIN.search(ctx.text) or URGE.search(ctx.text))
    opened = [r for r in chosen if r.open]
    if urged and paged and len(opened) > 1 and not _ALL.search(ctx.text) and all(r.urgency != "urgent" for r in opened):
        return "\n".join([*out, await ask_which_chase(ctx, opened)])  # 帮我催一下 with several open: which?
    if len(chosen) == 1:
        r = chosen[0]
        out += [TEXTS["followup_one"].format(day=_day(r.created_at), summary=_summary(r.text, 16),
                                            number=r.number, status=_ended(describe(r)))]
    else:
        shown = chosen[:PAGE]
        out += [TEXTS["followup_head"], *(line(r) for r in shown)]
        if len(chosen) > PAGE and paged:  # (not while a new report waits for its answer)
            out.append(TEXTS["more"].format(left=len(chosen) - PAGE))
            await ctx.fsm.set(LIST_STATE, offset=PAGE)
    # A status question (怎么样了, 我报的那个修好没, 帮我查一下) is answered with the status and urges
    # nothing, however long ago the report was filed: a chase (催办) is noted only when the words urge
    # (催一下, 快点, 怎么还没修, 效率太低) or the report is an emergency.
    pending = [r.id for r in chosen if r.open and (urged or r.urgency == "urgent")]
    ctx.extra["followed"] = [(r.id, r.number) for r in chosen if r.open]
    if pending:
        await reports.followed_up(ctx.rt.db, ctx.resident.id, pending, ctx.text, now)
        out.append(TEXTS["followup_noted"])
    elif ctx.extra["followed"]:
        fresh = all(now - r.created_at < JUST_FILED for r in chosen if r.open)
        out.append(TEXTS["followup_fresh"] if fresh else TEXTS["followup_status"])
    return "\n".join(out)


# -------------------------------------------------------------------------------------- rating
# The rating's words by the number the push gives them (请回复“满意”“基本满意”或“不满意”…1、2、3).
RATING_NUMBERS = {"1": "满意", "2": "基本满意", "3": "不满意", "１": "满意", "２": "基本满意", "３": "不满意"}


def _rating_said(text: str) -> re.Match[str] | None:
    return RATING_RE.match(RATING_NUMBERS.get(text.strip(), text))


async def _is_rating(ctx: Context) -> bool:
    if not ctx.text or ctx.resident is None or not _rating_said(ctx.text):
        return False
    if ctx.text.strip() in RATING_NUMBERS and ctx.fsm.state:
        return False  # a number answers the step under way, not the rating
    ticket = await reports.awaiting_rating(ctx.rt.db, ctx.resident.id)
    if ticket is None:
        return False
    ctx.extra["rating_ticket"] = ticket.id
    return True


@router.message(Func(_is_rating, phase=PHASE_MENU, when=lambda p: p.text))
async def rating(ctx: Context) -> str:
    assert ctx.resident is not None
    m = _rating_said(ctx.text)
    assert m is not None
    word = "满意" if m.group(1) == "非常满意" else m.group(1)
    comment = m.group(2).strip() or None
    value = RATINGS[word]
    rated = await reports.rate(ctx.rt.db, int(ctx.extra["rating_ticket"]), ctx.resident.id, value, comment,
                               rules_for(ctx.rt.settings.data_dir), ctx.rt.clock.now())
    if rated is None:
        return TEXTS["none"]
    if value != "unsatisfied":
        return TEXTS["rated_ok"].format(number=rated.number)
    if comment is None:
        await ctx.fsm.set(COMMENT_STATE, ticket_id=rated.id)
        return TEXTS["rated_bad"].format(number=rated.number) + "\n" + TEXTS["ask_comment"]
    return TEXTS["rated_bad"].format(number=rated.number)


def _rating_without_ticket(ctx: Context) -> bool:
    m = RATING_RE.match(ctx.text or "")
    return m is not None and len(m.group(2)) <= 8


@router.message(Func(_rating_without_ticket, phase=PHASE_MENU, when=lambda p: p.text))
async def nothing_to_rate(ctx: Context) -> str:
    """满意/不满意 with no answered report waiting: say so (a bare 不满意 is no new report)."""
    return TEXTS["nothing_to_rate"]


@router.message(State(COMMENT_STATE))
async def rating_comment(ctx: Context) -> str:
    ticket_id = ctx.fsm.data.get("ticket_id")
    await ctx.fsm.clear()
    if ctx.text and isinstance(ticket_id, int) and ctx.resident is not None:
        await reports.comment(ctx.rt.db, ticket_id, ctx.resident.id, ctx.text, ctx.rt.clock.now())
    return TEXTS["comment_kept"]
