"""The dashboard page (驾驶舱) for operators and admins: the figures and tables of
``services/dashboard.py`` for a period beside the previous one, drawn by Apache ECharts (vendored
under ``static/vendor``), every table downloadable as CSV or XLSX."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.appkeys import RUNTIME
from bot.services import dashboard
from bot.web.console.access import error_page, page, render
from bot.web.console.conversations import REASONS as HANDOFF_REASONS
from bot.web.console.labels import POINTS_REASONS, intent_name

ROLES = frozenset({"operator"})  # admin is implied
SECTION_TITLES = {"tickets": "工单", "residents": "居民与会话", "services": "积分、优惠券与课程"}
# Tables whose rows are named by a code: the name people read instead.
NAMES: dict[str, Any] = {
    "messages_by_intent": intent_name,
    "handoffs_by_reason": lambda code: HANDOFF_REASONS.get(code, code),
    "points_by_reason": lambda code: POINTS_REASONS.get(code, code),
}
UNITS = {"s": "秒", "%": "比例（1 = 100%）"}
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def show(figure: dict[str, Any], which: str = "current") -> str:
    """A figure's value as people read it: rates in %, durations in minutes or hours."""
    value = figure[which]
    if value is None:
        return "—"
    unit = figure["unit"]
    if unit == "%":
        return f"{value * 100:.1f}%"
    if unit == "s":
        if value < 60:
            return f"{value:.0f} 秒"
        if value < 3600:
            return f"{value / 60:.1f} 分钟"
        return f"{value / 3600:.1f} 小时"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f} {unit}"
    return f"{int(value)} {unit}"


def cell(value: Any, key: str) -> str:
    if value is None:
        return "—"
    if key.endswith("rate") and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    return str(value)


def readable(table: dict[str, Any]) -> dict[str, Any]:
    """A table of ``services/dashboard.py`` with intents, reasons and units in words (the API keeps
    the codes); numbers unchanged. For the page and the downloads."""
    columns = table["columns"]
    rows = table["rows"]
    if table["name"] == "messages_per_day":  # one column per intent
        columns = [c if c["key"] == "day" else {**c, "label": intent_name(c["key"])} for c in columns]
    name = NAMES.get(table["name"])
    if name is not None:
        rows = [{**r, "name": name(r["name"])} for r in rows]
    if any(c["key"] == "unit" for c in columns):
        rows = [{**r, "unit": UNITS.get(r["unit"], r["unit"])} for r in rows]
    return {**table, "columns": columns, "rows": rows}


def figures_table(table: dict[str, Any]) -> dict[str, Any]:
    """A table of figures (label, current, previous, unit) as the cards read: 100.0%, 56 秒."""
    if not any(c["key"] == "unit" for c in table["columns"]):
        return table
    rows = [{"label": r["label"], "current": show(r), "previous": show(r, "previous")} for r in table["rows"]]
    return {**table, "columns": [c for c in table["columns"] if c["key"] != "unit"], "rows": rows}


def _period(request: web.Request) -> dashboard.Period:
    rt = request.config_dict[RUNTIME]
    return dashboard.period_of(request.query.get("start") or None, request.query.get("end") or None, rt.clock.now())


PERIOD_FIELDS = {"start": "开始日期", "end": "结束日期"}


def period_problem(exc: dashboard.PeriodError) -> str:
    """The service's refusal (English, for the API) as operators read it, naming the field."""
    label = PERIOD_FIELDS.get(exc.field, exc.field)
    if "must be after start" in exc.message:
        return "结束日期要晚于开始日期（结束日期当天不算在内，只看一天就选第二天）。"
    if "at most" in exc.message:
        return f"一次最多看{dashboard.MAX_DAYS}天，请缩短开始日期到结束日期的范围。"
    return f"{label}要写成 2026-11-20 这样的日期（2000年到2100年之间）。"


@page("GET", "/console/dashboard", ROLES)
async def view(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    error = ""
    try:
        period = _period(request)
    except dashboard.PeriodError as exc:  # the dashboard for the usual period, with what was wrong
        error = period_problem(exc)
        period = dashboard.period_of(None, None, rt.clock.now())
    now = rt.clock.now()
    sections = {name: await dashboard.section(rt.db, name, period, now) for name in dashboard.SECTIONS}
    for data in sections.values():
        data["tables"] = [readable(figures_table(t)) for t in data["tables"]]
    charts = {t["name"]: {"chart": t["chart"], "rows": t["rows"], "columns": t["columns"]}
              for s in sections.values() for t in s["tables"] if t["chart"]}
    query = {"start": period.start.isoformat(), "end": period.end.isoformat()}
    today = now.astimezone(dashboard.CHINA).date()
    presets = [(label, urlencode({"start": (today - timedelta(days=days - 1)).isoformat(),
                                  "end": (today + timedelta(days=1)).isoformat()}))
               for label, days in (("近7天", 7), ("近30天", 30), ("近90天", 90))]
    return render(
        request, "dashboard.html", title="驾驶舱", period=period, sections=sections, titles=SECTION_TITLES,
        show=show, cell=cell, query=urlencode(query), presets=presets, definitions=dashboard.DEFINITIONS,
        chart_data=json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"),
        last_day=(period.end - timedelta(days=1)).isoformat(), error=error, status=400 if error else 200,
    )


@page("GET", "/console/dashboard/export", ROLES)
async def export(request: web.Request) -> web.StreamResponse:
    """One table as CSV (UTF-8 with a byte-order mark, which Excel needs for Chinese) or XLSX."""
    rt = request.config_dict[RUNTIME]
    name = request.query.get("section", "")
    fmt = request.query.get("format", "")
    if name not in dashboard.SECTIONS:
        return error_page(request, 400, "没有这个栏目（section）。")
    if fmt not in FORMATS:
        return error_page(request, 400, "格式（format）只能是 csv 或 xlsx。")
    try:
        period = _period(request)
    except dashboard.PeriodError as exc:
        return error_page(request, 400, period_problem(exc))
    data = await dashboard.section(rt.db, name, period, rt.clock.now())
    table = next((t for t in data["tables"] if t["name"] == request.query.get("table")), None)
    if table is None:
        return error_page(request, 400, "这个栏目没有这张表（table）。")
    table = readable(table)
    header = [c["label"] for c in table["columns"]]
    rows = [[row.get(c["key"]) for c in table["columns"]] for row in table["rows"]]
    filename = f"dashboard-{table['name']}-{period.start.isoformat()}_{period.end.isoformat()}.{fmt}"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([f"{table['title']}（{period.start.isoformat()} 至 {period.end.isoformat()}，不含）"])
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in r] for r in rows)
        body = ("\ufeff" + out.getvalue()).encode("utf-8")
    else:
        body = _xlsx(table["title"], header, rows)
    return web.Response(body=body, headers={
        "Content-Type": FORMATS[fmt],
        "Content-Disposition": f'attachment; filename="{filename}"',
    })


def _xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
