"""The dashboard (驾驶舱) as JSON: one route per section, for operators and admins. Figures for a
period of China dates ``[start, end)`` beside the previous period of the same length; see
``bot/services/dashboard.py`` for what each figure means."""

from __future__ import annotations

from typing import Any

from bot.api.errors import bad_request
from bot.api.registry import Call, component, obj, route
from bot.services import dashboard

ROLES = frozenset({"operator"})  # admin is implied

_DATE: dict[str, Any] = {
    "type": "string",
    "maxLength": 10,
    "description": "a China date YYYY-MM-DD",
}
PERIOD_QUERY = obj({
    "start": {**_DATE, "description": "first day of the period (China date YYYY-MM-DD); default: end − 30 days"},
    "end": {**_DATE, "description": "the day after the period (excluded); default: tomorrow, China time"},
})
_PERIOD = {
    "type": "object",
    "required": ["start", "end", "days"],
    "properties": {"start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"},
                   "days": {"type": "integer"}},
}
_FIGURE = {
    "type": "object",
    "required": ["label", "unit", "current", "previous"],
    "properties": {
        "label": {"type": "string"},
        "unit": {"type": "string", "description": "% for rates (a fraction 0–1), s for durations (seconds)"},
        "current": {"type": ["number", "null"]},
        "previous": {"type": ["number", "null"], "description": "null for figures of the present moment"},
    },
}
_TABLE = {
    "type": "object",
    "required": ["name", "title", "columns", "rows"],
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "columns": {"type": "array", "items": {"type": "object", "required": ["key", "label"],
                                               "properties": {"key": {"type": "string"}, "label": {"type": "string"}}}},
        "rows": {"type": "array", "items": {"type": "object"}},
        "chart": {"type": ["object", "null"], "description": "how the console draws it (line, bar, stack)"},
    },
}
SECTION = component("DashboardSection", {
    "type": "object",
    "required": ["section", "period", "previous", "generated_at", "figures", "tables"],
    "properties": {
        "section": {"type": "string", "enum": list(dashboard.SECTIONS)},
        "period": _PERIOD,
        "previous": _PERIOD,
        "generated_at": {"type": "string", "format": "date-time"},
        "figures": {"type": "object", "additionalProperties": _FIGURE},
        "tables": {"type": "array", "items": _TABLE},
    },
})


def period(call: Call) -> dashboard.Period:
    try:
        return dashboard.period_of(call.query.get("start"), call.query.get("end"), call.now())
    except dashboard.PeriodError as exc:
        raise bad_request(exc.message, "bad_param", {"param": exc.field}) from None


async def _section(call: Call, name: str) -> dict[str, Any]:
    return await dashboard.section(call.db, name, period(call), call.now())


@route(
    "GET", "/dashboard/tickets", roles=ROLES, summary="Dashboard: tickets",
    description=(
        "Tickets new per day, by category, department and grid (this period and the previous one, open "
        "and overdue now); response and resolution times (median, p90); 响应率, 解决率, 满意率, reopen rate."
    ),
    tags=("dashboard",), query=PERIOD_QUERY, response=SECTION,
)
async def dashboard_tickets(call: Call) -> dict[str, Any]:
    return await _section(call, "tickets")


@route(
    "GET", "/dashboard/residents", roles=ROLES, summary="Dashboard: residents",
    description=(
        "Active residents, messages per day by intent, handoffs and how fast staff picked them up, the "
        "bot's resolution rate (conversations that needed no person)."
    ),
    tags=("dashboard",), query=PERIOD_QUERY, response=SECTION,
)
async def dashboard_residents(call: Call) -> dict[str, Any]:
    return await _section(call, "residents")


@route(
    "GET", "/dashboard/services", roles=ROLES, summary="Dashboard: points, coupons, courses, check-ins",
    description=(
        "Points issued and spent, coupons redeemed and verified per merchant, course fill rates, volunteer "
        "check-ins (双报到 by work unit)."
    ),
    tags=("dashboard",), query=PERIOD_QUERY, response=SECTION,
)
async def dashboard_services(call: Call) -> dict[str, Any]:
    return await _section(call, "services")
