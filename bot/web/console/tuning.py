"""The tuning loop's console pages (operators and admins): the review queue, the draft with its
conflicts, the intent and knowledge editors, the evaluation beside the published version with the
confirmed publish, and the versions with rollback and export. Every page calls the functions the
JSON API calls (``bot/api/tuning.py`` → ``bot/services/tuning*.py``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.api import tuning as api
from bot.appkeys import RUNTIME
from bot.language import sources_of
from bot.runtime import Runtime
from bot.services import tuning, tuning_data, tuning_review
from bot.services.tuning_data import OverlayError
from bot.services.tuning_review import INTENT_REASONS, KNOWLEDGE_REASONS
from bot.web.console.access import form_of, page, render, user_of
from bot.web.console.labels import INTENT_NAMES

TUNING = frozenset({"operator"})
MAX_EXAMPLES_SHOWN = 300


# What the tuning services and the knowledge loader refuse with (English, for the API and the log),
# as operators read it: the field named as the form names it.
FIELDS = {
    "id": "编号", "question": "标准问题", "answer": "答案", "department": "负责部门", "reviewed": "核对日期",
    "alternatives": "其他问法", "tags": "标签", "link": "链接", "sensitive": "敏感条目", "article": "条文",
    "text": "消息文字", "example": "样例", "synonym name": "同义词的标准词", "synonym word": "同义词",
    "lookup name": "词表名", "lookup word": "词表中的词", "entry id": "条目编号",
}


def _field(name: str) -> str:
    return FIELDS.get(name.strip(), name.strip())


AGAIN = "操作没有完成，请刷新页面后重试。"
SAYINGS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"entry is missing required field\(s\): (.+)"),
     lambda m: "请填写" + "、".join(_field(f) for f in m.group(1).split(",")) + "。"),
    (re.compile(r"missing or empty field '([^']+)'"), lambda m: f"请填写{_field(m.group(1))}。"),
    (re.compile(r"id '(.*)' must be lowercase ASCII letters.*"),
     lambda m: f"编号「{m.group(1)}」只能用小写英文字母、数字和 . _ -，比如 garbage.sorting。"),
    (re.compile(r"field 'reviewed' must be a date.*"), lambda m: "核对日期要写成 2026-11-20 这样的日期。"),
    (re.compile(r"field 'link' must be an http.*"),
     lambda m: "链接要写成 https:// 或 http:// 开头的网址，中间不能有空格。"),
    (re.compile(r"field '([^']+)' must be a list of texts"), lambda m: f"{_field(m.group(1))}要填一组文字。"),
    (re.compile(r"field '([^']+)' must be true or false.*"), lambda m: f"{_field(m.group(1))}只能选是或否。"),
    (re.compile(r"field '([^']+)' must be text.*"), lambda m: f"{_field(m.group(1))}要填文字。"),
    (re.compile(r"unknown field\(s\): (.+)"), lambda m: f"条目里有不认识的项：{m.group(1)}。"),
    (re.compile(r"(.+) is empty"), lambda m: f"{_field(m.group(1))}不能为空。"),
    (re.compile(r"(.+) is longer than (\d+) characters"), lambda m: f"{_field(m.group(1))}最多{m.group(2)}个字。"),
    (re.compile(r"unknown intent '(.*)'"), lambda m: f"没有这个意图：{m.group(1) or '（未选择）'}。请从列表中选择。"),
    (re.compile(r"the draft has no changes to publish"), lambda m: "草稿里没有改动，不需要发布。"),
    (re.compile(r"another version was published meanwhile.*"),
     lambda m: "在您查看评估期间，别人已经发布了新版本。请重新看一遍评估结果再发布。"),
    (re.compile(r"nothing has been published yet"), lambda m: "还没有发布过版本，没有可以回滚的。"),
    (re.compile(r"no version (\d+)"), lambda m: f"没有第{m.group(1)}版。"),
    (re.compile(r"nothing to decide"), lambda m: "请先勾选要处理的消息。"),
    (re.compile(r"a new entry needs its fields"), lambda m: "新条目需要填写编号、标准问题、答案和负责部门。"),
    (re.compile(r"no knowledge entry '(.*)'"), lambda m: f"知识库里没有这个条目：{m.group(1)}。"),
    (re.compile(r"the draft's data does not load: (.*)"),
     lambda m: f"草稿的数据无法加载，请撤销最近的改动（{m.group(1)}）。"),
    (re.compile(r"unknown (decision|review kind|change) .*|entry must be a mapping"), lambda m: AGAIN),
]
SIMILAR = re.compile(r"\S+ (\S+) and \S+ (\S+): '(.*)' ~ '(.*)' \((\d+)%\)")


def chinese(exc: Exception | str) -> str:
    """A refusal of the tuning loop in Chinese; one not known here keeps its words after a general line."""
    text = str(exc).strip()
    for pattern, say in SAYINGS:
        found = pattern.fullmatch(text)
        if found:
            return say(found)
    return f"请检查填写的内容（{text}）。"


def similar(message: str) -> str:
    """A duplicate or near-duplicate knowledge phrasing as operators read it."""
    found = SIMILAR.fullmatch(message)
    if not found:
        return message
    a, b, p, q, percent = found.groups()
    return f"条目 {a} 和 {b} 的问法「{p}」与「{q}」相似度{percent}%"


def _rt(request: web.Request) -> Runtime:
    rt: Runtime = request.config_dict[RUNTIME]
    return rt


def _labels(rt: Runtime) -> dict[str, str]:
    """Intent → the label operators read (the registry's clarifying choice, else the console's
    short name, else the name). Chinese only: pages put the code after it in small grey text or a
    title (handoff · 找工作人员 read as English first)."""
    registry = api.intents_registry(rt)
    labels = {**INTENT_NAMES, **registry.labels()}
    return {name: labels.get(name, name) for name in registry.names}


def _to(path: str, **params: str) -> web.HTTPSeeOther:
    """A redirect to a console page, with a notice or an error line for it to show."""
    sep = "&" if "?" in path else "?"
    return web.HTTPSeeOther(path + (sep + urlencode(params) if params else ""))


# ------------------------------------------------------------------------------------ review queue
CHANGED = ("没有保存：这一组在您打开页面之后有了变化（加入了新的说法，或已经有人处理过）。"
           "下面已刷新为最新的待复核列表，请重新核对后再标注。")


@page("GET", "/console/tuning", TUNING)
async def review(request: web.Request) -> web.StreamResponse:
    return await _review(request)


async def _review(request: web.Request, error: str = "", notice: str = "", status: int = 200) -> web.Response:
    rt = _rt(request)
    kind = request.query.get("kind", "intent")
    if kind not in ("intent", "knowledge"):
        kind = "intent"
    groups = [g.to_dict() for g in (await api.queue(rt, kind))[:100]]
    d = await tuning.draft(rt.db)
    entries: list[Any] = []
    if kind == "knowledge":
        entries = await asyncio.to_thread(tuning_data.draft_entries, d.overlay, sources_of(rt.settings))
    return render(request, "tuning_review.html", status=status, title="调优 · 待复核", kind=kind, groups=groups,
                  intents=_labels(rt), reasons={**INTENT_REASONS, **KNOWLEDGE_REASONS}, draft=d,
                  summary=tuning_data.summary(d.overlay),
                  # (id, its question): the operator picks an entry by what it answers, not by its slug
                  entries=sorted((e.id, e.question) for e in entries), questions={e.id: e.question for e in entries},
                  error=error or request.query.get("error", ""), notice=notice or request.query.get("notice", ""))


@page("POST", "/console/tuning/review", TUNING)
async def decide(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    form = await form_of(request)
    kind = form.get("kind", "intent")
    texts = [t for t in form.get("texts", "").split("\n") if t.strip()]
    action = form.get("action", "")
    entry = None
    if action == "entry":
        entry = {
            "id": form.get("entry_id", "").strip(), "question": form.get("question", "").strip(),
            "answer": form.get("answer", "").strip(), "department": form.get("department", "").strip(),
            "tags": [t for t in form.get("tags", "").replace("，", ",").split(",") if t.strip()],
        }
    if form.get("version"):  # the group as the page showed it: refused when it changed meanwhile
        try:
            tuning_review.check_seen(await api.queue(rt, kind), texts, form["version"])
        except tuning_review.GroupChanged:
            return await _review(request, status=409, error=CHANGED)
    try:
        decided = await tuning.resolve(
            rt.db, kind, texts, action, user_of(request).name, rt.clock.now(), intents=api.names(rt),
            intent=form.get("intent"), entry=entry, entry_id=form.get("entry_id", "").strip() or None,
            current_entry=lambda entry_id: api.entry_of(rt, entry_id))
    except (tuning.TuningError, OverlayError) as exc:
        return await _review(request, error=f"没有保存：{chinese(exc)}", status=400)
    words = {"intent": "已标注", "noise": "已标为噪音", "entry": "已写入新条目", "phrasing": "已加为问法"}
    raise _to("/console/tuning", kind=kind, notice=f"{words.get(action, '已保存')}{decided}条，在草稿中，评估后发布")


# ------------------------------------------------------------------------------------------ draft
@page("GET", "/console/tuning/draft", TUNING)
async def draft_page(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    d = await tuning.draft(rt.db)
    problems = await api.problems(rt)
    return render(request, "tuning_draft.html", title="调优 · 草稿", draft=d, overlay=d.overlay,
                  summary=tuning_data.summary(d.overlay), problems=problems, intents=_labels(rt),
                  notice=request.query.get("notice", ""), similar=similar)


@page("POST", "/console/tuning/changes", TUNING)
async def change(request: web.Request) -> web.StreamResponse:
    """One editor change from a form: example, synonym or lookup word (added or removed), a
    reviewed label taken back, or a knowledge entry removed."""
    rt = _rt(request)
    form = await form_of(request)
    item: dict[str, Any] = {"op": form.get("op", "")}
    for key in ("intent", "text", "canonical", "name", "word", "id"):
        if form.get(key):
            item[key] = form[key]
    item["add"] = form.get("add", "1") == "1"
    if item["op"] == "label":
        item.setdefault("intent", "")
        item.pop("add")
    if item["op"] == "entry_delete":
        item.pop("add")
    back = form.get("back", "/console/tuning/draft")
    if not back.startswith("/console/tuning"):
        back = "/console/tuning/draft"
    try:
        await tuning.change(rt.db, [item], api.names(rt), user_of(request).name, rt.clock.now())
    except OverlayError as exc:
        raise _to(back, error=f"没有保存：{chinese(exc)}") from None
    raise _to(back, notice=_changed(item))


def _changed(item: dict[str, Any]) -> str:
    """What a change did, said at the top of the page it came from (an example added to an intent
    of hundreds lands at the list's end, out of sight on a phone)."""
    if item["op"] == "label":
        return "已撤销标注，在草稿中，评估后发布"
    if item["op"] == "entry_delete":
        return f"已从草稿中删除条目 {item.get('id', '')}，评估后发布"
    what = str(item.get("text") or item.get("word") or "")
    what = what if len(what) <= 30 else what[:30] + "…"
    return f"已{'添加' if item.get('add') else '删除'}“{what}”，在草稿中，评估后发布"


@page("POST", "/console/tuning/discard", TUNING)
async def discard(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    await tuning.discard(rt.db, user_of(request).name, rt.clock.now())
    raise _to("/console/tuning/draft", notice="草稿已清空，回到当前发布版本")


@page("GET", "/console/tuning/intents/{intent}", TUNING)
async def intent_editor(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    intent = request.match_info["intent"]
    if intent not in api.names(rt):
        raise web.HTTPNotFound()
    d = await tuning.draft(rt.db)
    view = await asyncio.to_thread(tuning_data.intent_view, d.overlay, sources_of(rt.settings), intent)
    q = request.query.get("q", "").strip()
    examples = [e for e in view["examples"] if not q or q in e]
    problems = await api.problems(rt)
    conflicts = [c for c in problems["conflicts"] if intent in c["intents"]]
    duplicates = [c for c in problems["duplicates"] if intent in c["intents"]]
    labels = _labels(rt)
    return render(request, "tuning_intent.html", title=f"调优 · {labels[intent]}", intent=intent, view=view, q=q,
                  examples=examples[:MAX_EXAMPLES_SHOWN], total=len(examples), intents=labels,
                  conflicts=conflicts, duplicates=duplicates, error=request.query.get("error", ""),
                  notice=request.query.get("notice", ""))


@page("GET", "/console/tuning/entries", TUNING)
async def entries_page(request: web.Request) -> web.StreamResponse:
    return await _entries(request)


async def _entries(request: web.Request, error: str = "", status: int = 200,
                   kept: dict[str, Any] | None = None) -> web.Response:
    """The entries and the editor: the entry chosen (``?id=``), or a refused form as it was sent."""
    rt = _rt(request)
    d = await tuning.draft(rt.db)
    entries = await asyncio.to_thread(tuning_data.draft_entries, d.overlay, sources_of(rt.settings))
    q = request.query.get("q", "").strip()
    shown = [e for e in entries if not q or q in e.id or any(q in p for p in e.phrasings) or q in e.answer]
    chosen = next((e for e in entries if e.id == (kept or {}).get("id", request.query.get("id"))), None)
    if kept is not None:
        form = kept
    elif chosen is not None:
        form = {"id": chosen.id, "question": chosen.question, "alternatives": "\n".join(chosen.alternatives),
                "answer": chosen.answer, "department": chosen.department, "tags": ", ".join(chosen.tags),
                "link": chosen.link or "", "sensitive": chosen.sensitive}
    else:
        form = {}
    problems = await api.problems(rt)
    return render(request, "tuning_entries.html", status=status, title="调优 · 知识库条目", entries=shown[:200],
                  total=len(shown), q=q, entry=chosen, form=form, changed=set(d.overlay["entries"]),
                  problems=[{**p, "message": similar(p["message"])} for p in problems["knowledge"]],
                  error=error or request.query.get("error", ""), notice=request.query.get("notice", ""))


@page("POST", "/console/tuning/entries", TUNING)
async def save_entry(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    form = await form_of(request)
    def split(value: str) -> list[str]:
        return [p.strip() for p in value.replace("，", ",").replace("\n", ",").split(",") if p.strip()]
    entry_id = form.get("id", "").strip()
    entry: dict[str, Any] = {"id": entry_id, "question": form.get("question", "").strip(),
             "alternatives": split(form.get("alternatives", "")), "answer": form.get("answer", "").strip(),
             "department": form.get("department", "").strip(), "tags": split(form.get("tags", "")),
             "link": form.get("link", "").strip() or None, "sensitive": form.get("sensitive") == "1"}
    if form.get("reviewed"):
        entry["reviewed"] = form["reviewed"]
    try:
        await tuning.change(rt.db, [{"op": "entry", "entry": entry}], api.names(rt), user_of(request).name,
                            rt.clock.now())
    except OverlayError as exc:
        kept: dict[str, Any] = {k: form.get(k, "") for k in ("id", "question", "alternatives", "answer",
                                                             "department", "tags", "link")}
        kept["sensitive"] = form.get("sensitive") == "1"
        return await _entries(request, error=f"没有保存：{chinese(exc)}", status=400, kept=kept)
    raise _to("/console/tuning/entries", id=entry_id, notice="已保存到草稿")


# ------------------------------------------------------------------------------------- evaluation
@page("GET", "/console/tuning/evaluation", TUNING)
async def evaluation_page(request: web.Request) -> web.StreamResponse:
    """The page comes at once; its figures are fetched by the script (training takes seconds)."""
    rt = _rt(request)
    d = await tuning.draft(rt.db)
    return render(request, "tuning_evaluation.html", title="调优 · 评估与发布", draft=d,
                  summary=tuning_data.summary(d.overlay), error=request.query.get("error", ""))


@page("GET", "/console/tuning/evaluation/figures", TUNING)
async def evaluation_figures(request: web.Request) -> web.StreamResponse:
    result = await api.evaluation(_rt(request))
    return render(request, "_tuning_figures.html", result=result)


@page("POST", "/console/tuning/publish", TUNING)
async def publish(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    form = await form_of(request)
    if form.get("confirm") != "1":
        raise _to("/console/tuning/evaluation", error="请先勾选确认，再发布")
    expected = form.get("expected_active", "")
    try:
        number = await api.publish_checked(rt, user_of(request).name, form.get("note", "").strip(), rt.clock.now(),
                                           int(expected) if expected.isdigit() else None)
    except tuning.TuningError as exc:
        raise _to("/console/tuning/evaluation", error=f"没有发布：{chinese(exc)}") from None
    raise _to("/console/tuning/versions", notice=f"已发布 v{number}，各服务进程几秒内切换")


# --------------------------------------------------------------------------------------- versions
@page("GET", "/console/tuning/versions", TUNING)
async def versions_page(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    d = await tuning.draft(rt.db)
    rows = [{"v": v, "summary": tuning_data.summary(v.overlay)} for v in await tuning.versions(rt.db)]
    served = rt.language.version if rt.language is not None else None
    return render(request, "tuning_versions.html", title="调优 · 版本", rows=rows, draft=d, served=served,
                  notice=request.query.get("notice", ""), error=request.query.get("error", ""))


@page("GET", "/console/tuning/serving", TUNING)
async def serving(request: web.Request) -> web.StreamResponse:
    """The published version and the one this process serves (the versions page follows the switch)."""
    rt = _rt(request)
    d = await tuning.draft(rt.db)
    return web.json_response({"active": d.active, "served": rt.language.version if rt.language is not None else None})


@page("GET", "/console/tuning/export", TUNING)
async def export(request: web.Request) -> web.StreamResponse:
    """The zip of the data files to commit, from the console (the API's export answers a lapsed
    session or a failure in JSON, in English)."""
    return await api.export(_rt(request), "draft" if request.query.get("what") == "draft" else "active")


@page("POST", "/console/tuning/rollback", TUNING)
async def rollback(request: web.Request) -> web.StreamResponse:
    rt = _rt(request)
    form = await form_of(request)
    to = form.get("to", "")
    try:
        number = await tuning.rollback(rt.db, user_of(request).name, rt.clock.now(),
                                       int(to) if to.isdigit() else None)
    except tuning.TuningError as exc:
        raise _to("/console/tuning/versions", error=f"没有回滚：{chinese(exc)}") from None
    raise _to("/console/tuning/versions", notice=f"已回滚，当前为 v{number}")
