"""The outbox worker against the fake WeChat API: retries, expiry, outages and racing workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Settings
from bot.messages import Out
from bot.storage.db import Database
from bot.storage.models import Message, OutboxMessage, Resident
from bot.wechat.api import WeChatAPI
from bot.wechat.outbox import OutboxWorker, enqueue
from bot.wechat.tokens import DatabaseTokenStore
from tests.wechat.conftest import WX_APPID, Databases, FakeControl

RESIDENT = "oResident000000000000000001"
STRANGER = "oStranger000000000000000002"
SEND = "/cgi-bin/message/custom/send"


async def add_resident(db: Database, openid: str = RESIDENT) -> int:
    async with db.transaction() as session:
        resident = Resident(openid=openid)
        session.add(resident)
        await session.flush()
        return resident.id


CLOCK = ManualClock()  # the workers' time; messages are queued as due "now" on it


@pytest.fixture
def wx_clock() -> ManualClock:
    CLOCK.set(ManualClock().now())
    return CLOCK


async def queue(db: Database, openid: str, *texts: str, key: str | None = None) -> None:
    async with db.transaction() as session:
        await enqueue(session, openid, [Out.text(t) for t in texts], key, not_before=CLOCK.now())


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


def contents(sent: list[dict[str, Any]]) -> list[str]:
    return [m["payload"]["text"]["content"] for m in sent]


@pytest.fixture
def worker(wx_db: Database, wx_api: WeChatAPI, wx_clock: ManualClock) -> OutboxWorker:
    return OutboxWorker(wx_db, wx_api, wx_clock)


async def test_sends_in_order_and_records_outbound_messages(
    worker: OutboxWorker, wx_db: Database, wx_fake: FakeControl
) -> None:
    resident_id = await add_resident(wx_db)
    await queue(wx_db, RESIDENT, "第一条", "第二条", key="reply:1")
    await queue(wx_db, RESIDENT, "第一条", "第二条", key="reply:1")  # deduplicated
    await queue(wx_db, STRANGER, "给没登记的人")
    assert await worker.run_once() == 3
    assert contents(await wx_fake.sent(RESIDENT)) == ["第一条", "第二条"]
    assert contents(await wx_fake.sent(STRANGER)) == ["给没登记的人"]
    assert {r.status for r in await rows(wx_db)} == {"sent"}
    assert all(r.sent_at is not None and r.attempts == 1 for r in await rows(wx_db))
    async with wx_db.session() as session:
        messages = list((await session.scalars(select(Message).order_by(Message.id))).all())
    assert [(m.resident_id, m.direction, m.via, m.msg_type, m.content) for m in messages] == [
        (resident_id, "out", "custom", "text", "第一条"),
        (resident_id, "out", "custom", "text", "第二条"),
    ]
    assert await worker.run_once() == 0
    assert len(await wx_fake.sent()) == 3


async def test_window_closed_expires_without_retry(
    worker: OutboxWorker, wx_db: Database, wx_fake: FakeControl, wx_clock: ManualClock
) -> None:
    await queue(wx_db, RESIDENT, "超过48小时")
    await wx_fake.inject("message/custom/send", count=1, errcode=45015)
    assert await worker.run_once() == 0
    (row,) = await rows(wx_db)
    assert row.status == "expired"
    assert row.last_error is not None and "45015" in row.last_error
    wx_clock.advance(timedelta(days=1))
    assert await worker.run_once() == 0
    assert await wx_fake.calls(SEND) == 1
    assert await wx_fake.sent() == []


async def test_quota_error_is_retried_later(
    worker: OutboxWorker, wx_db: Database, wx_fake: FakeControl, wx_clock: ManualClock
) -> None:
    await queue(wx_db, RESIDENT, "稍后再发")
    await wx_fake.inject("message/custom/send", count=1, errcode=45047)
    assert await worker.run_once() == 0
    (row,) = await rows(wx_db)
    assert row.status == "pending" and row.next_attempt_at > wx_clock.now()
    assert await worker.run_once() == 0  # not due yet: WeChat is not asked again
    assert await wx_fake.calls(SEND) == 1
    wx_clock.advance(worker.backoff(1))
    assert await worker.run_once() == 1
    assert contents(await wx_fake.sent()) == ["稍后再发"]


async def test_outage_delays_but_loses_nothing(
    worker: OutboxWorker, wx_db: Database, wx_fake: FakeControl, wx_clock: ManualClock
) -> None:
    expected: dict[str, list[str]] = {}
    for i in range(3):
        openid = f"oOutage{i:020d}"
        texts = [f"{i}-{j}" for j in range(3)]
        expected[openid] = texts
        await queue(wx_db, openid, *texts)
    await wx_fake.inject("message/custom/send", count=4, status=503)
    await wx_fake.inject("message/custom/send", count=2, errcode=-1)
    await wx_fake.inject("message/custom/send", count=1, hang=2)
    worker.api.timeout = 0.5  # type: ignore[attr-defined]
    for _ in range(30):
        await worker.run_once()
        if all(r.status == "sent" for r in await rows(wx_db)):
            break
        wx_clock.advance(worker.max_backoff)
    sent = await wx_fake.sent()
    for openid, texts in expected.items():
        assert contents(await wx_fake.sent(openid)) == texts  # every message once, in order
    assert len(sent) == 9
    assert all(r.status == "sent" for r in await rows(wx_db))


async def test_gives_up_after_max_attempts(
    wx_db: Database, wx_api: WeChatAPI, wx_fake: FakeControl, wx_clock: ManualClock
) -> None:
    worker = OutboxWorker(wx_db, wx_api, wx_clock, max_attempts=3)
    await queue(wx_db, RESIDENT, "发不出去")
    await wx_fake.inject("message/custom/send", count=10, status=502)
    for _ in range(5):
        await worker.run_once()
        wx_clock.advance(worker.max_backoff)
    (row,) = await rows(wx_db)
    assert row.status == "failed" and row.attempts == 3
    assert row.last_error and "502" in row.last_error
    assert await wx_fake.calls(SEND) == 3


async def test_permanent_error_fails_without_blocking_the_next_message(
    worker: OutboxWorker, wx_db: Database, wx_fake: FakeControl
) -> None:
    await queue(wx_db, RESIDENT, "坏消息", "好消息")
    await wx_fake.inject("message/custom/send", count=1, errcode=40003)
    assert await worker.run_once() == 1
    first, second = await rows(wx_db)
    assert first.status == "failed" and first.last_error and "40003" in first.last_error
    assert second.status == "sent"
    assert contents(await wx_fake.sent()) == ["好消息"]


async def test_two_workers_never_send_the_same_row(
    wx_dbs: Databases, wx_settings: Settings, wx_fake: FakeControl, wx_clock: ManualClock
) -> None:
    db = wx_dbs.opened[0]
    expected: dict[str, list[str]] = {}
    for i in range(5):
        openid = f"oRace{i:022d}"
        expected[openid] = [f"{i}-{j}" for j in range(6)]
        await queue(db, openid, *expected[openid])
    await wx_fake.inject("message/custom/send", count=3, status=503)
    workers = []
    apis = []
    for _ in range(2):
        other = wx_dbs.open()  # each worker its own engine, like a separate process
        api = WeChatAPI(wx_settings, token_store=DatabaseTokenStore(other, WX_APPID, clock=wx_clock))
        apis.append(api)
        workers.append(OutboxWorker(other, api, wx_clock, batch_size=4))
    try:
        for _ in range(40):
            await asyncio.gather(*(w.run_once() for w in workers))
            if all(r.status == "sent" for r in await rows(db)):
                break
            wx_clock.advance(timedelta(seconds=5))
    finally:
        for api in apis:
            await api.close()
    assert len(await wx_fake.sent()) == 30
    for openid, texts in expected.items():
        assert contents(await wx_fake.sent(openid)) == texts


async def test_a_claim_abandoned_mid_send_is_taken_over(
    wx_dbs: Databases, wx_settings: Settings, wx_fake: FakeControl, wx_clock: ManualClock
) -> None:
    db = wx_dbs.opened[0]
    await queue(db, RESIDENT, "被中断的消息")
    api = WeChatAPI(wx_settings, token_store=DatabaseTokenStore(db, WX_APPID, clock=wx_clock))
    try:
        await api.access_token()
        await wx_fake.inject("message/custom/send", count=1, errcode=45047, hang=5)
        first = OutboxWorker(db, api, wx_clock)
        crashed = asyncio.ensure_future(first.run_once())
        while await wx_fake.calls(SEND) == 0:  # noqa: ASYNC110 - polling another process's state
            await asyncio.sleep(0.01)
        crashed.cancel()  # the process dies while WeChat has not answered
        with pytest.raises(asyncio.CancelledError):
            await crashed
        (row,) = await rows(db)
        assert row.status == "sending"
        second = OutboxWorker(wx_dbs.open(), api, wx_clock)
        assert await second.run_once() == 0  # the claim is still live
        wx_clock.advance(second.claim_ttl + timedelta(seconds=1))
        assert await second.run_once() == 1
    finally:
        await api.close()
    assert contents(await wx_fake.sent()) == ["被中断的消息"]
    (row,) = await rows(db)
    assert row.status == "sent" and row.attempts == 2


async def test_run_forever_until_stopped(wx_db: Database, wx_api: WeChatAPI, wx_fake: FakeControl) -> None:
    worker = OutboxWorker(wx_db, wx_api)  # the wall clock, the settings' interval
    assert worker.interval == 0.05
    stop = asyncio.Event()
    task = asyncio.ensure_future(worker.run_forever(stop))
    await queue(wx_db, RESIDENT, "后台发送")
    while not await wx_fake.sent():  # noqa: ASYNC110 - waiting on the fake server
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert contents(await wx_fake.sent()) == ["后台发送"]


class SlowQuota:
    """A send quota that makes each send wait longer than a claim lasts (the worker's clock moves on)."""

    def __init__(self, clock: ManualClock, wait: timedelta) -> None:
        self.clock, self.delay, self.slow = clock, wait, True

    async def wait(self) -> None:
        if self.slow:
            self.clock.advance(self.delay)


async def test_a_claim_that_expires_waiting_for_the_quota_is_not_sent_by_its_worker(
    wx_dbs: Databases, wx_api: WeChatAPI, wx_fake: FakeControl, wx_clock: ManualClock
) -> None:
    """A round claims its rows together; one whose claim ran out while the worker waited for the send
    quota may already be another worker's, so this worker leaves it: each message still goes once."""
    db = wx_dbs.opened[0]
    for i in range(3):
        await queue(db, f"oQuota{i:021d}", f"配额{i}")
    worker = OutboxWorker(db, wx_api, wx_clock)
    quota = SlowQuota(wx_clock, worker.claim_ttl + timedelta(seconds=1))
    worker.limiter = quota
    assert await worker.run_once() == 0
    assert await wx_fake.sent() == []
    assert {r.status for r in await rows(db)} == {"sending"}  # due again for any worker
    quota.slow = False
    other = OutboxWorker(wx_dbs.open(), wx_api, wx_clock)
    assert await other.run_once() == 3
    assert sorted(contents(await wx_fake.sent())) == ["配额0", "配额1", "配额2"]
    assert {(r.status, r.attempts) for r in await rows(db)} == {("sent", 2)}


async def test_a_round_paces_its_sends_and_records_their_outcomes_together(
    worker: OutboxWorker, wx_db: Database, wx_fake: FakeControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sends of a round start one per turn of the event loop (each starts with work on the
    loop's thread: a QR image, the request), not all in one turn beside the replies; the outcomes
    known meanwhile share transactions instead of one each."""
    openids = [f"oPaced{i:021d}" for i in range(12)]
    for openid in openids:
        await queue(wx_db, openid, f"给{openid[-2:]}")
    turns = 0
    counting = True
    loop = asyncio.get_running_loop()

    def turn() -> None:
        nonlocal turns
        turns += 1
        if counting:
            loop.call_soon(turn)

    started: list[int] = []
    send = worker._send

    async def counted(row: OutboxMessage, replacement: dict[str, Any] | None = None) -> str:
        started.append(turns)
        return await send(row, replacement)

    monkeypatch.setattr(worker, "_send", counted)
    loop.call_soon(turn)
    assert await worker.run_once() == 12
    counting = False
    assert len(started) == 12 and len(set(started)) == 12  # each in a turn of its own
    assert {r.status for r in await rows(wx_db)} == {"sent"}
    assert worker._outcomes.items == 12 and worker._outcomes.batches < 12


async def test_a_batch_of_outcomes_is_one_round_trip_on_postgresql(
    worker: OutboxWorker, wx_db: Database, wx_api: WeChatAPI, wx_fake: FakeControl
) -> None:
    """On PostgreSQL the outcomes recorded together (each fenced by its claim, each sent message in
    its resident's log, a made QR image's media stored in its row) are one statement, in
    autocommit: no BEGIN and COMMIT, and not an UPDATE and an INSERT per message."""
    if not wx_db.url.startswith("postgresql"):
        pytest.skip("round trips to PostgreSQL")
    from sqlalchemy import event

    from bot.services import notify

    ids = {openid: await add_resident(wx_db, openid) for openid in (f"oBatch{i:021d}" for i in range(12))}
    openids = list(ids)
    for openid in openids[:-1]:
        await queue(wx_db, openid, f"给{openid[-2:]}")
    async with wx_db.transaction() as session:
        await session.run_sync(
            lambda sync: notify.enqueue_sync(
                sync, openids[-1], [Out(kind="image")], "qr:1", not_before=CLOCK.now(), make={"qr": "券码7NGH", "filename": "c.png"}
            )
        )
    await queue(wx_db, STRANGER, "给没登记的人")
    await wx_api.access_token()  # its statements are not the outbox's
    trips: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        trips.append(sql.split()[0])

    def begin(conn: Any) -> None:  # a BEGIN sent (SQLAlchemy sends none in autocommit)
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            trips.append("BEGIN")

    engine = wx_db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    try:
        assert await worker.run_once() == 13
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)
    batches = worker._outcomes.batches
    # The round's two look-ups and its claim (BEGIN, UPDATE), then one statement per batch of outcomes.
    assert trips.count("BEGIN") == 1 and len(trips) == 4 + batches, " ".join(trips)
    assert batches < 13
    assert {r.status for r in await rows(wx_db)} == {"sent"}
    image = next(r for r in await rows(wx_db) if r.openid == openids[-1])
    assert "make" not in image.payload and image.payload["image"]["media_id"]
    async with wx_db.session() as session:
        logged = list((await session.scalars(select(Message).order_by(Message.id))).all())
    assert sorted((m.resident_id, m.msg_type, m.content) for m in logged) == sorted(
        [(ids[o], "text", f"给{o[-2:]}") for o in openids[:-1]] + [(ids[openids[-1]], "image", None)]
    )
    assert all(m.direction == "out" and m.via == "custom" and m.created_at is not None for m in logged)
    assert next(m for m in logged if m.msg_type == "image").payload["image"] == image.payload["image"]
