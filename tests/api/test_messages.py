"""The message query behind the review queue: intent, confidence and time filters."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event

from bot.api.paging import encode_cursor
from bot.appkeys import RUNTIME
from intents.engine import Classification, Decision
from intents.entities import Entities
from tests.api.conftest import Api, assert_error, check_schema, make_tokens, response_schema
from tests.conftest import ServiceFactory

# What the stand-in classifier answers, by text: (intent, confidence).
UNDERSTOOD = {
    "楼上漏水了": ("complaint", 0.93),
    "嗯嗯那个啥": ("fallback", 0.31),
    "想报名夜校": ("course_booking", 0.48),
    "积分怎么用": ("coupon", 0.66),
}


class StandInIntents:
    """The intent engine's interface with fixed answers, so stored confidences are known."""

    def classify(self, text: str) -> Classification:
        intent, confidence = UNDERSTOOD.get(text, ("smalltalk", 0.9))
        decision: Decision = "fallback" if intent == "fallback" else "accept"
        return Classification(text, intent, confidence, None, decision, [], Entities(), intent)


async def send_understood(api: Api) -> None:
    api.svc.runner.app[RUNTIME].language = SimpleNamespace(intents=StandInIntents())
    sender = api.svc.sender("safe")
    for i, text in enumerate(UNDERSTOOD):
        reply = await api.svc.send(sender.text(f"oApiReview{i:016d}", text), "safe")
        assert reply.status == 200


async def test_low_confidence_review_queue(api: Api):
    await send_understood(api)
    doc = await api.openapi()
    queue = await api.ok("/messages", "operator", direction="in", max_confidence="0.5")
    check_schema(doc, response_schema(doc, "/messages"), queue)
    assert [(m["content"], m["intent"], m["confidence"]) for m in queue["items"]] == [
        ("想报名夜校", "course_booking", 0.48),
        ("嗯嗯那个啥", "fallback", 0.31),
    ]
    assert all(m["openid"].startswith("oApiReview") for m in queue["items"])
    fallbacks = await api.ok("/messages", intent="fallback")
    assert [m["content"] for m in fallbacks["items"]] == ["嗯嗯那个啥"]
    # the boundary is inclusive; outbound replies (no confidence) never match
    at_066 = await api.ok("/messages", max_confidence="0.66")
    assert {m["content"] for m in at_066["items"]} == {"想报名夜校", "嗯嗯那个啥", "积分怎么用"}
    everything = await api.ok("/messages")
    assert {m["direction"] for m in everything["items"]} == {"in", "out"}
    assert len(everything["items"]) >= 2 * len(UNDERSTOOD)


async def test_time_window(api: Api):
    before = datetime.now(UTC) - timedelta(seconds=1)
    await send_understood(api)
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert len((await api.ok("/messages", direction="in", since=before.isoformat()))["items"]) == 4
    assert (await api.ok("/messages", since=after.isoformat()))["items"] == []
    assert (await api.ok("/messages", until=before.isoformat()))["items"] == []
    # a +08:00 offset, once URL-encoded and once sent raw ('+' arrives as a space)
    local = (before + timedelta(hours=8)).replace(tzinfo=None).isoformat() + "+08:00"
    assert len((await api.ok("/messages", direction="in", since=local))["items"]) == 4
    raw_url = f"{api.base}/messages?direction=in&since={local}"
    status, body, _ = await api.call("GET", raw_url)
    assert status == 200 and len(body["items"]) == 4


async def test_bad_query_parameters_are_400_naming_the_parameter(api: Api):
    cases = [
        ({"max_confidence": "high"}, "max_confidence"),
        ({"max_confidence": "1.5"}, "max_confidence"),
        ({"max_confidence": "nan"}, "max_confidence"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-01-01T08:00:00"}, "time zone"),  # naive: ambiguous
        ({"until": "2025-02-30T00:00:00Z"}, "until"),
        ({"direction": "sideways"}, "direction"),
        ({"intent": "x" * 33}, "intent"),
        ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "since"),
        ({"since": "0001-01-01T00:00:00+08:00"}, "since"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),  # after year 9999 in UTC
        ({"cursor": encode_cursor("messages", ["0001-01-01T00:00:00+08:00", 1])}, "cursor"),
        ({"cursor": encode_cursor("messages", ["2025-01-01T00:00:00", 1])}, "cursor"),
        ({"cursor": encode_cursor("messages", ["2025-01-01T00:00:00Z", 2**63])}, "cursor"),
    ]
    for params, expected in cases:
        status, body = await api.get("/messages", **params)
        message = assert_error(status, body, 400)
        assert expected in message, (params, message)


async def test_search_by_intent_or_confidence_reads_newest_first_sorting_nothing(
    service_factory: ServiceFactory, sqlite_url: str, fake_api: str
):
    # messages.intent has no index (every message would write it, migration 0018): a search by
    # intent, like one by confidence, reads the messages newest first from ix_messages_created_at
    # and stops at the page's end, rather than sorting every message of that intent.
    svc = await service_factory(sqlite_url, fake_api)
    api = Api(svc, await make_tokens(sqlite_url))
    await send_understood(api)
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "FROM messages" in statement:
            sent.append((statement, parameters))

    engine = svc.runner.app[RUNTIME].db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert [m["content"] for m in (await api.ok("/messages", intent="fallback"))["items"]] == ["嗯嗯那个啥"]
        low = await api.ok("/messages", max_confidence="0.5")
        assert [m["content"] for m in low["items"]] == ["想报名夜校", "嗯嗯那个啥"]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(sent) == 2
    with closing(sqlite3.connect(sqlite_url.split("///", 1)[1])) as conn:
        for statement, parameters in sent:
            plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
            assert "SCAN messages USING INDEX ix_messages_created_at" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
