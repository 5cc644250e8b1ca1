"""Property-based tests (hypothesis) of the API's untrusted input: for every route in the registry,
random path values, query strings and JSON bodies — arbitrary ones and ones built from the route's
own schemas, valid-looking with a field or two broken — sent with an admin token get a 2xx or a JSON
4xx: never a 5xx, never a hang. On SQLite and PostgreSQL (where over-long strings and overflowing
integers are errors, not silently stored).

The service runs on its own event loop in a thread, so hypothesis drives plain blocking HTTP.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.api.registry import API, Route
from bot.clock import ManualClock
from tests.api.conftest import make_tokens
from tests.conftest import IN_CI, create_pg_database, free_port, make_settings, need_service, start_service

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
EXAMPLES = int(os.environ.get("API_PROPERTY_EXAMPLES", "150"))
REQUEST_TIMEOUT = 10.0  # seconds: an answer slower than this counts as a hang
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Served:
    host: str
    port: int
    token: str
    routes: list[Route]


def _seed(url: str, data_dir: Path) -> None:
    """One of everything (ids 1), so random requests reach past 'no such …' into the handlers."""

    async def seed() -> None:
        from bot.services import tickets
        from bot.services.dispatch import rules_for
        from bot.storage.db import Database
        from bot.storage.models import (
            Activity,
            ActivitySession,
            Booking,
            Coupon,
            Merchant,
            Resident,
            StaffNotification,
        )

        db = Database(url)
        try:
            async with db.transaction() as s:
                resident = Resident(openid="oProperty00000000000000001", created_at=NOW, community="新建南社区")
                merchant = Merchant(name="性质测试理发店", category="理发", created_at=NOW)
                s.add_all([resident, merchant])
                await s.flush()
                activity = Activity(title="书法课", category="书法", created_at=NOW)
                s.add_all([activity, Coupon(
                    merchant_id=merchant.id, title="立减", category="理发", price=10, stock=5,
                    valid_from=NOW - timedelta(days=1), valid_until=NOW + timedelta(days=30), created_at=NOW,
                )])
                await s.flush()
                session = ActivitySession(
                    activity_id=activity.id, starts_at=NOW + timedelta(days=2), ends_at=NOW + timedelta(days=2, hours=2),
                    capacity=5, booked=1, created_at=NOW,
                )
                s.add(session)
                await s.flush()
                s.add(Booking(session_id=session.id, resident_id=resident.id, status="booked", queued_at=NOW,
                              booked_at=NOW, updated_at=NOW))
                ticket = await tickets.create_ticket(
                    s, tickets.NewTicket(text="楼道灯坏了", resident=resident), rules_for(data_dir), NOW
                )
                s.add(StaffNotification(role="staff", ticket_id=ticket.id, kind="reminder", text="请处理",
                                        created_at=NOW))
        finally:
            await db.dispose()

    asyncio.run(seed())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, _pg_databases: list[str]
) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp(f"api-properties-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    else:
        need_service("PostgreSQL", "127.0.0.1", 5432)
        name = asyncio.run(create_pg_database())
        _pg_databases.append(name)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    port = free_port()
    config = make_settings(url, tmp_path, BOT_PORT=port)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def up() -> None:
            try:
                state["runner"] = await start_service(config, clock=ManualClock(NOW), background=False)
                state["tokens"] = await make_tokens(url)
            except BaseException as exc:  # reported by the test thread
                state["error"] = exc
            finally:
                ready.set()

        loop.run_until_complete(up())
        loop.run_forever()

    thread = threading.Thread(target=run, name="api-under-test", daemon=True)
    thread.start()
    assert ready.wait(120), "the service did not start"
    if "error" in state:
        raise state["error"]
    try:
        _seed(url, config.data_dir)
        yield Served("127.0.0.1", port, state["tokens"]["admin"], list(API.routes))
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


# -- strategies ---------------------------------------------------------------------------------

# Text of every kind: unpaired surrogates (sent as \ud800 escapes), NUL and other controls, CJK,
# astral characters, long runs.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "é" * 300, "字" * 5000, "a" * 70_000, "0" * 400, "1e309", "NaN", "null"]
)
# Query values stay under aiohttp's 8 KB request line (a longer line is refused before any route).
QUERY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "é" * 300, "字" * 400, "0" * 400, "1e309", "NaN", "null", "-0", "+1", " 1"]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**400])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.0, 5.0, -0.0, 0.5, 1e308])
    | ANY_TEXT
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
DATES = st.sampled_from([
    "2026-11-30T09:00:00+08:00", "2026-12-01T09:00:00Z", "2027-01-01T00:00:00+00:00", "0001-01-01T00:00:00+08:00",
    "9999-12-31T23:59:59-08:00", "2026-02-30T00:00:00+08:00", "2026-11-30T09:00:00", "2026-11-30", "tomorrow",
]) | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())


def _kinds(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type", "string")
    return list(kind) if isinstance(kind, list) else [kind]


def valid_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts (mostly), near its bounds."""
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if "const" in schema:
        return st.just(schema["const"])
    options = []
    for kind in _kinds(schema):
        if kind == "null":
            options.append(st.none())
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "integer":
            lo, hi = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31 - 1)
            options.append(st.integers(lo, hi) | st.sampled_from([lo, hi, min(max(1, lo), hi)]))
        elif kind == "number":
            lo, hi = schema.get("minimum", -1e9), schema.get("maximum", 1e9)
            options.append(st.floats(lo, hi, allow_nan=False) | st.integers(int(lo), int(hi)))
        elif kind == "string":
            if schema.get("format") == "date-time":
                options.append(DATES)
            else:
                lo, hi = schema.get("minLength", 0), schema.get("maxLength", 50)
                options.append(
                    st.text(st.characters(codec="utf-8"), min_size=lo, max_size=min(hi, 60))
                    | st.sampled_from(["字" * hi, "a" * hi, " " * max(lo, 1)])
                )
        elif kind == "array":
            options.append(st.lists(valid_value(schema.get("items", {})), max_size=schema.get("maxItems", 3)))
        elif kind == "object":
            options.append(valid_object(schema))
    return st.one_of(options) if options else ANY_JSON


def valid_object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fixed = {name: valid_value(props[name]) for name in props if name in required}
    optional = {name: valid_value(props[name]) for name in props if name not in required}
    return st.fixed_dictionaries(fixed, optional=optional)


def confused_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value of the wrong type or range for the schema, as careless or hostile clients send:
    integers as 1.0 or "1", out of range or past 64 bits; strings too long, empty, or numbers."""
    kinds = _kinds(schema)
    options: list[st.SearchStrategy[Any]] = [st.sampled_from([None, True, [], {}, "", "1"])]
    if "integer" in kinds or "number" in kinds:
        lo, hi = schema.get("minimum", 0), schema.get("maximum", 2**31)
        options.append(st.sampled_from([float(lo), float(hi), 1.0, 5.0, 0.5, -0.0, 1e300, lo - 1, hi + 1,
                                        2**63, -(2**63) - 1, 10**30]))
        options.append(st.integers(lo, hi).map(float))
    if "string" in kinds:
        n = schema.get("maxLength", 100)
        options.append(st.sampled_from(["字" * (n + 1), "a" * (n + 1), " ", "\x00", "\ud800", "\udfff字",
                                        "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-13-01T00:00:00Z",
                                        1, 1.5, 2**64]))
    return st.one_of(options)


def boundary_value(schema: dict[str, Any], high: bool) -> Any:
    """The schema's largest (``high``) or smallest accepted value: strings at maxLength in 3-byte
    characters, integers and numbers at their bounds — what reveals a column narrower than the schema."""
    if "enum" in schema:
        return schema["enum"][-1 if high else 0]
    kind = next((k for k in _kinds(schema) if k != "null"), "null")
    if kind == "integer":
        return schema["maximum"] if high else schema["minimum"]
    if kind == "number":
        return schema.get("maximum", 1e9) if high else schema.get("minimum", -1e9)
    if kind == "boolean":
        return high
    if kind == "string":
        if schema.get("format") == "date-time":
            return "9999-12-31T23:59:59+00:00" if high else "0001-01-01T00:00:00+00:00"
        return "字" * schema.get("maxLength", 1000) if high else "字" * max(schema.get("minLength", 0), 1)
    if kind == "array":
        return [boundary_value(schema.get("items", {}), high)] * (schema.get("maxItems", 3) if high else 1)
    if kind == "object":
        return {name: boundary_value(sub, high) for name, sub in schema.get("properties", {}).items()}
    return None


def typical_value(schema: dict[str, Any]) -> Any:
    """An ordinary accepted value: what a careful client sends (ids point at the seeded rows)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = next((k for k in _kinds(schema) if k != "null"), "null")
    if kind in ("integer", "number"):
        return min(max(1, schema.get("minimum", 1)), schema.get("maximum", 1))
    if kind == "boolean":
        return True
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-12-01T09:00:00+08:00"
        return "测试" + "字" * max(0, schema.get("minLength", 0) - 2)
    if kind == "array":
        return [typical_value(schema.get("items", {}))]
    if kind == "object":
        values = {name: typical_value(sub) for name, sub in schema.get("properties", {}).items()}
        # date-times in the order declared (valid_from before valid_until, starts_at before ends_at)
        dates = [name for name, sub in schema.get("properties", {}).items() if sub.get("format") == "date-time"]
        for i, name in enumerate(dates):
            values[name] = (datetime(2026, 12, 1, 1, tzinfo=UTC) + timedelta(hours=i)).isoformat()
        return values
    return None


def wrong_values(schema: dict[str, Any]) -> list[Any]:
    """The usual mistakes for one field, as a fixed list (see :func:`confused_value`)."""
    kinds = _kinds(schema)
    values: list[Any] = [None, [True]]
    if "integer" in kinds or "number" in kinds:
        hi = schema.get("maximum", 2**31 - 1)
        values += [float(typical_value(schema)), hi + 1, 2**63, "1"]
    if "string" in kinds:
        n = schema.get("maxLength", 100)
        values += ["字" * (n + 1), "\ud800", 1, "0001-01-01T00:00:00+14:00"]
    return values


def body_for(route: Route) -> st.SearchStrategy[bytes]:
    """A request body: schema-built (maybe with a field replaced by junk or an extra one), any JSON,
    or bytes that are not JSON at all."""
    schema = route.body or {"type": "object", "properties": {}}
    built = valid_object(schema)

    @st.composite
    def broken(draw: st.DrawFn) -> dict[str, Any]:
        data = dict(draw(built))
        props = schema.get("properties", {})
        for _ in range(draw(st.integers(1, 2))):
            if props and draw(st.booleans()):
                name = draw(st.sampled_from(sorted(props)))
                data[name] = draw(confused_value(props[name]))
            else:
                data[draw(st.sampled_from([*props, draw(ANY_TEXT)]))] = draw(ANY_JSON)
        return data

    as_json = (built | broken() | ANY_JSON).map(lambda v: json.dumps(v).encode())
    junk = st.binary(max_size=64) | st.sampled_from(
        [b"", b"{", b'{"a": NaN}', b'{"a": Infinity}', b"[" * 5000, b'{"a": 1e999}', b"\xff\xfe{}", b'{"a":"\\ud800"}']
    )
    return as_json | junk


def query_for(route: Route) -> st.SearchStrategy[str]:
    """A raw query string: the route's parameters with valid-looking or junk values, unknown names,
    repeats, bad percent-escapes."""
    props: dict[str, Any] = (route.query or {}).get("properties", {})
    names = (st.sampled_from(sorted(props)) | st.text(max_size=8)) if props else st.text(max_size=8)
    values = st.one_of([*(valid_value(s).map(_as_param) for s in props.values()), QUERY_TEXT])
    pairs = st.lists(st.tuples(names, values), max_size=4)
    encoded = pairs.map(lambda ps: urllib.parse.urlencode(ps, encoding="utf-8", errors="surrogatepass")[:7000])
    raw = st.sampled_from(["%ff%fe", "a=%", "limit=%00", "limit=1&limit=2", "since=2026-01-01T00:00:00+08:00",
                           "cursor=" + "A" * 300, "cursor=WyJ0aWNrZXRzIiwgOTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ"])
    return encoded | raw


def _as_param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def path_for(route: Route) -> st.SearchStrategy[str]:
    names = _PARAM.findall(route.path)
    segment = (
        st.just("1")  # the seeded rows: reach the handlers, not only "no such …"
        | st.just("1")
        | st.sampled_from(["1", "2", "0", "-1", "2147483647", "2147483648", "9223372036854775808", "1.0", "x"])
        | st.integers(-(2**64), 2**64).map(str)
        | st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
    )
    return st.fixed_dictionaries({n: segment for n in names}).map(
        lambda values: "/api/v1" + _PARAM.sub(lambda m: urllib.parse.quote(values[m.group(1)], safe=""), route.path)
    )


@st.composite
def requests(draw: st.DrawFn, routes: list[Route]) -> tuple[str, str, bytes | None]:
    route = draw(st.sampled_from(routes))
    has_body = route.method in ("POST", "PATCH", "PUT")
    # Junk everywhere mostly stops at the first check (path, then query): so each request puts its
    # junk in one place and keeps the rest plain, to reach the later checks and the handler too.
    focus = draw(st.sampled_from(["path", "query", "body", "body", "all"] if has_body else ["path", "query", "all"]))
    plain = "/api/v1" + _PARAM.sub("1", route.path)
    path = draw(path_for(route)) if focus in ("path", "all") else plain
    query = draw(query_for(route)) if focus in ("query", "all") else ""
    body = draw(body_for(route)) if has_body and focus in ("body", "all") else None
    if has_body and body is None:
        body = json.dumps(draw(valid_object(route.body or {}))).encode()
    return route.method, path + ("?" + query if query else ""), body


# -- the property -------------------------------------------------------------------------------


def call(served: Served, method: str, target: str, body: bytes | None) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection(served.host, served.port, timeout=REQUEST_TIMEOUT)
    try:
        headers = {"Authorization": f"Bearer {served.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type", "")
    finally:
        conn.close()


# Files a route may answer with (the tuning export); every other answer, and every error, is JSON.
DOWNLOADS = {"application/zip", "text/csv",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def check_answer(method: str, target: str, body: bytes | None, status: int, data: bytes, ctype: str) -> None:
    where = f"{method} {target[:200]} body={body[:200] if body else body!r}"
    assert status < 500, f"{status} for {where}: {data[:300]!r}"
    if status == 204:
        return
    if status < 300 and ctype.split(";")[0] in DOWNLOADS:
        assert data, f"empty download for {where}"
        return
    assert ctype.startswith("application/json"), f"{status} {ctype} for {where}"
    answer = json.loads(data)
    if status >= 400:
        assert isinstance(answer, dict) and set(answer) == {"error"}, f"{where}: {answer}"
        assert answer["error"]["code"] and answer["error"]["message"], f"{where}: {answer}"


def test_every_route_answers_any_input_with_a_2xx_or_a_4xx(served: Served) -> None:
    routes = [r for r in served.routes if r.full_path != "/api/v1/openapi.json"]
    assert len(routes) >= 30, [r.path for r in routes]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=IN_CI,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(routes))
    def property_holds(request: tuple[str, str, bytes | None]) -> None:
        method, target, body = request
        check_answer(method, target, body, *call(served, method, target, body))

    property_holds()


def test_each_route_with_bodies_its_schema_accepts(served: Served) -> None:
    """Every route with bodies its schema accepts — all fields at their largest, all at their
    smallest, and a few drawn — on the seeded rows: the property above samples routes at random,
    this makes sure none is left out."""

    def check_route(route: Route) -> None:
        @settings(max_examples=3, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(valid_object(route.body or {}).map(lambda b: json.dumps(b).encode()))
        def once(body: bytes) -> None:
            target = "/api/v1" + _PARAM.sub("1", route.path)
            sent = body if route.method in ("POST", "PATCH", "PUT") else None
            check_answer(route.method, target, sent, *call(served, route.method, target, sent))

        once()

    for route in served.routes:
        target = "/api/v1" + _PARAM.sub("1", route.path)
        if route.method in ("POST", "PATCH", "PUT"):
            for high in (True, False):
                body = json.dumps(boundary_value(route.body or {"type": "object"}, high)).encode()
                check_answer(route.method, target, body, *call(served, route.method, target, body))
        check_route(route)


def test_each_body_field_with_the_usual_mistakes(served: Served) -> None:
    """Every field of every body, one at a time, with the usual mistakes (1.0 for 1, a string past
    its length, an unpaired surrogate, NUL, numbers past 64 bits, the wrong type) in an otherwise
    ordinary body aimed at the seeded rows: a 4xx, never a 5xx — and a wrong-typed integer is
    refused, not stored."""
    sent = 0
    for route in served.routes:
        if route.method not in ("POST", "PATCH", "PUT") or not route.body:
            continue
        target = "/api/v1" + _PARAM.sub("1", route.path)
        typical = typical_value(route.body)
        for name, sub in route.body.get("properties", {}).items():
            for wrong in wrong_values(sub):
                body = json.dumps({**typical, name: wrong}).encode()
                status, data, ctype = call(served, route.method, target, body)
                check_answer(route.method, target, body, status, data, ctype)
                if isinstance(wrong, float) and "integer" in _kinds(sub):
                    assert status == 400 and name.encode() in data, (route.path, name, wrong, data[:200])
                sent += 1
    assert sent > 300, sent
