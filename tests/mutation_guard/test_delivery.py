"""bot/handler/delivery.py: undelivered notices in front of an answer, as a rule (the wire path is
``tests/tickets/test_status_pushes.py``), and a retry's replay of the stored answer over the wire.
Written against mutants that survived the earlier tests (docs/testing.md)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot import texts
from bot.clock import ManualClock
from bot.handler.delivery import MAX_RECOVERIES, RECOVER_BATCH, Delivery, _with_notices
from bot.handler.router import Router, Text
from bot.logmask import mask_openid
from bot.messages import Inbound, Out
from bot.storage.db import Database
from bot.storage.models import InboundKey, Message, OutboxMessage, Resident
from bot.wechat.endpoint import DELIVERY


def text(content: str) -> dict:
    return {"msgtype": "text", "text": {"content": content}}


def test_notices_go_in_front_of_a_text_answer_once_joined_by_a_blank_line():
    outs, shown = _with_notices(
        [Out.text("答复"), Out.text("第二条")], [(7, text("通知一")), (9, text("通知二"))]
    )
    assert outs == [Out.text("通知一\n\n通知二\n\n答复"), Out.text("第二条")]
    assert shown == [7, 9]


def test_notices_without_text_are_skipped():
    notices = [(1, text("")), (2, {"msgtype": "image"}), (3, None), (4, "not a dict"), (5, text("留言"))]
    outs, shown = _with_notices([Out.text("答复")], notices)
    assert (outs, shown) == ([Out.text("留言\n\n答复")], [5])
    assert _with_notices([Out.text("答复")], notices[:4]) == ([Out.text("答复")], [])


def test_a_silent_answer_shows_no_notices():
    assert _with_notices([], [(1, text("通知"))]) == ([], [])


def test_before_an_answer_that_is_not_text_each_notice_is_a_message_of_its_own():
    image = Out(kind="image", media_id="m1")
    outs, shown = _with_notices([image], [(1, text("通知一")), (2, text("通知二"))])
    assert (outs, shown) == ([Out.text("通知一"), Out.text("通知二"), image], [1, 2])


def said(caplog: Any, level: str, opening: str, *openids: str) -> list[str]:
    """The delivery step's log lines at ``level`` that begin with ``opening`` and name the message by
    its key with the openid (one of ``openids``) masked (an operator follows a message by them; no
    openid in logs)."""
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.delivery" and r.levelname == level]
    found = [m for m in lines if m.startswith(opening)]
    assert all(any(mask_openid(o) in m for o in openids) and not any(o in m for o in openids) for m in found), found
    return found


async def test_a_retry_gets_the_stored_answer(service_factory, sqlite_url, fake_api, caplog):
    caplog.set_level(logging.INFO, logger="bot.delivery")
    svc = await service_factory(sqlite_url, fake_api, BOT_WECHAT_AES_KEY="")
    sender = svc.sender()
    fields = sender.text("o_retry_guard_openid", "你好")
    first = await sender.send(svc.http, fields)
    assert said(caplog, "INFO", "retry of msg:", "o_retry_guard_openid") == []
    again = await sender.send(svc.http, fields)
    assert first.status == again.status == 200 and first.content
    assert again.content == first.content
    assert len(said(caplog, "INFO", "retry of msg:", "o_retry_guard_openid")) == 1


# -- recovery of messages whose handler's process died (the maintenance loop's recover_stale) ------
#
# A process that died mid-handler leaves its key pending with a stopped heartbeat; the rows below
# are what such a process leaves (the crash itself, with real processes, is
# tests/handler/test_crash_recovery.py, whose servers run outside the test's own process). The
# service runs without its background loops, on a manual clock, so each recovery is the test's.

START = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


@dataclass
class Recovery:
    svc: Any
    clock: ManualClock
    delivery: Delivery
    db: Database

    async def pending(
        self,
        openid: str,
        text: str,
        *,
        age: float,
        status: str = "processing",
        attempts: int = 0,
        stored: bool = True,
    ) -> str:
        """A key as a process left it that stopped beating ``age`` seconds ago."""
        msg_id = 1000 + sum(map(ord, openid))
        inbound = Inbound(
            openid=openid,
            account="gh_test",
            msg_type="text",
            create_time=1700000000,
            msg_id=msg_id,
            content=text,
        )
        at = self.clock.now() - timedelta(seconds=age)
        async with self.db.transaction() as s:
            s.add(
                InboundKey(
                    key=inbound.key,
                    openid=openid,
                    status=status,
                    inbound=inbound.to_dict() if stored else None,
                    attempts=attempts,
                    created_at=at,
                    updated_at=at,
                )
            )
        return inbound.key

    async def key(self, key: str) -> InboundKey:
        async with self.db.session() as s:
            row = await s.get(InboundKey, key)
            assert row is not None
            return row

    async def logged(self, openid: str) -> list[str]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Message.direction)
                .join(Resident, Resident.id == Message.resident_id)
                .where(Resident.openid == openid)
                .order_by(Message.id)
            )
            return list(rows.all())

    async def queued(self, openid: str) -> list[tuple[str, str | None, datetime]]:
        async with self.db.session() as s:
            rows = (
                await s.scalars(
                    select(OutboxMessage).where(OutboxMessage.openid == openid).order_by(OutboxMessage.id)
                )
            ).all()
        return [(r.payload["text"]["content"], r.dedup_key, r.next_attempt_at) for r in rows]


def blocking_router(
    gate: asyncio.Event, started: asyncio.Event, clock: ManualClock | None = None, once: bool = False
) -> Router:
    """``等一等`` waits for ``gate`` (only the first time, with ``once``: a handler stuck in a process
    that died, whose redo then answers); ``稍等`` waits for ``later``; ``出错`` fails."""
    router = Router("blocking-test")
    calls = []

    @router.message(Text("等一等"))
    async def blocked(ctx: Any) -> str:
        calls.append(1)
        started.set()
        if clock is not None and len(calls) == 1:
            clock.advance(timedelta(seconds=10))  # the handler takes a while before the budget runs out
        if not once or len(calls) == 1:
            await gate.wait()
        return "好了，这是您的答复。"

    @router.message(Text("出错"))
    async def broken(ctx: Any) -> str:
        raise RuntimeError("handler failed")

    return router


@dataclass
class Desks:
    """The desks a test opens (services without background loops, on a manual clock), and the
    events its handlers wait on. When the test ends, however it ends, every event is set (no
    handler is left blocked while its service stops) and every desk's database handle is closed."""

    service_factory: Any
    sqlite_url: str
    fake_api: str
    opened: list[Recovery] = field(default_factory=list)
    events: list[asyncio.Event] = field(default_factory=list)

    def event(self) -> asyncio.Event:
        made = asyncio.Event()
        self.events.append(made)
        return made

    async def open(
        self, router: Router | None = None, clock: ManualClock | None = None, **env: Any
    ) -> Recovery:
        clock = clock or ManualClock(START)
        kwargs: dict[str, Any] = {"clock": clock, "background": False}
        if router is not None:
            kwargs["routers"] = [router]
        svc = await self.service_factory(
            self.sqlite_url, self.fake_api, app_kwargs=kwargs, BOT_WECHAT_AES_KEY="", **env
        )
        desk = Recovery(svc, clock, svc.runner.app[DELIVERY], Database(self.sqlite_url))
        self.opened.append(desk)
        return desk


@pytest.fixture
async def desks(service_factory: Any, sqlite_url: str, fake_api: str) -> Any:
    made = Desks(service_factory, sqlite_url, fake_api)
    yield made
    for event in made.events:
        event.set()
    for desk in made.opened:
        await desk.db.dispose()


@pytest.fixture
async def rdesk(desks: Desks) -> Recovery:
    return await desks.open()


async def test_pending_keys_whose_heartbeat_stopped_are_redone_once(rdesk: Recovery, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="bot.delivery")
    assert rdesk.svc.settings.recover_after == 20
    on_time = await rdesk.pending("o_rc_a", "你好", age=20)  # exactly at the cut-off: not yet
    processing = await rdesk.pending("o_rc_b", "你好", age=21)
    deferred = await rdesk.pending("o_rc_c", "你好", age=21, status="deferred")
    recovering = await rdesk.pending("o_rc_d", "你好", age=21, status="recovering", attempts=1)
    replied = await rdesk.pending("o_rc_e", "你好", age=600, status="replied")
    done = await rdesk.pending("o_rc_f", "你好", age=600, status="done")

    assert await rdesk.delivery.recover_stale() == 3
    redone = ("o_rc_b", "o_rc_c", "o_rc_d")
    lines = said(caplog, "WARNING", "redoing msg:", *redone)
    assert len(lines) == 3 and all(m.endswith(": its handler's process stopped") for m in lines)
    assert all(any(mask_openid(o) in m for m in lines) for o in redone), lines  # one line each
    for key, openid, attempts in (
        (processing, "o_rc_b", 1),
        (deferred, "o_rc_c", 1),
        (recovering, "o_rc_d", 2),
    ):
        row = await rdesk.key(key)
        assert (row.status, row.attempts, row.inbound) == ("done", attempts, None)
        answer = await rdesk.queued(openid)
        assert len(answer) == 1 and answer[0][0] and answer[0][0] != texts.ABANDONED
        assert await rdesk.logged(openid) == ["in"]  # the redo logs the message (its answer: when sent)
    for key, status in ((on_time, "processing"), (replied, "replied"), (done, "done")):
        row = await rdesk.key(key)
        assert (row.status, row.attempts) == (status, 0)
        assert row.updated_at < rdesk.clock.now()
    assert await rdesk.queued("o_rc_a") == await rdesk.queued("o_rc_e") == []

    assert await rdesk.delivery.recover_stale() == 0  # nothing is redone twice
    assert len(await rdesk.queued("o_rc_b")) == 1
    assert await rdesk.delivery.recover_stale(timedelta(seconds=19)) == 1  # a shorter wait, asked for
    assert (await rdesk.key(on_time)).status == "done" and len(await rdesk.queued("o_rc_a")) == 1


async def test_a_message_that_cannot_be_redone_is_given_up_with_an_apology(rdesk: Recovery) -> None:
    last_try = await rdesk.pending("o_gu_a", "你好", age=30, status="recovering", attempts=MAX_RECOVERIES - 1)
    given_up = await rdesk.pending("o_gu_b", "你好", age=30, status="recovering", attempts=MAX_RECOVERIES)
    lost = await rdesk.pending("o_gu_c", "你好", age=30, stored=False)
    rdesk.clock.advance(timedelta(seconds=1))  # the apology is due when the key is given up

    assert await rdesk.delivery.recover_stale() == 3
    row = await rdesk.key(last_try)
    assert (row.status, row.attempts) == ("done", MAX_RECOVERIES)
    (answer,) = await rdesk.queued("o_gu_a")
    assert answer[0] != texts.ABANDONED
    for key, openid, attempts in ((given_up, "o_gu_b", MAX_RECOVERIES + 1), (lost, "o_gu_c", 1)):
        row = await rdesk.key(key)
        assert (row.status, row.attempts, row.inbound) == ("abandoned", attempts, None)
        assert row.updated_at == rdesk.clock.now()
        assert await rdesk.queued(openid) == [(texts.ABANDONED, f"{key}:abandoned#0", rdesk.clock.now())]
    assert await rdesk.delivery.recover_stale(timedelta(0)) == 0  # abandoned is final


async def test_recovery_takes_the_oldest_keys_in_batches(rdesk: Recovery) -> None:
    # Given up at once (no redo), so that a batch is cheap; the youngest is left for the next round.
    keys = [
        await rdesk.pending(f"o_bt_{i:02d}", "你好", age=100 + i, attempts=MAX_RECOVERIES)
        for i in range(RECOVER_BATCH + 1)
    ]
    for i in range(RECOVER_BATCH):  # older finished keys take no place in a batch
        await rdesk.pending(f"o_fin_{i:02d}", "你好", age=1000 + i, status="done")
    assert await rdesk.delivery.recover_stale() == RECOVER_BATCH
    assert (await rdesk.key(keys[0])).status == "processing"  # the youngest
    assert {(await rdesk.key(k)).status for k in keys[1:]} == {"abandoned"}
    assert await rdesk.delivery.recover_stale() == 1
    assert (await rdesk.key(keys[0])).status == "abandoned"


def no_tasks(desk: Recovery) -> Any:
    async def check() -> bool:
        return not desk.delivery._tasks  # finished handlers are not kept

    return check


async def wait_for(check: Any, what: str) -> None:
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_a_slow_handler_or_redo_beats_and_is_not_taken_over(desks: Desks, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="bot.delivery")
    gate, started = desks.event(), desks.event()
    clock = ManualClock(START)
    desk = await desks.open(
        blocking_router(gate, started, clock),
        clock=clock,
        BOT_RECOVER_AFTER=1.0,  # a beat every 0.25 s
        BOT_REPLY_BUDGET=0.2,
    )
    sender = desk.svc.sender()
    fields = sender.text("o_slow_guard", "等一等")
    # The request is answered when the budget runs out, not when the handler is done (the
    # bound only keeps a wrong answer from hanging the test).
    reply = await asyncio.wait_for(sender.send(desk.svc.http, fields), 60)
    assert reply.status == 200 and reply.body == "success"  # the budget ran out: deferred
    assert started.is_set()
    async with desk.db.session() as s:
        (key,) = (await s.scalars(select(InboundKey.key).where(InboundKey.openid == "o_slow_guard"))).all()
    row = await desk.key(key)
    assert row.status == "deferred"
    assert row.updated_at == START + timedelta(seconds=10)  # the deferral counts as a beat
    (line,) = said(caplog, "INFO", "deferred msg:", "o_slow_guard")
    assert line.endswith(": answer goes out as a customer-service message")

    # Long past recover_after: only its beats keep the key, and they keep no other key alive.
    dead = await desk.pending("o_dead_guard", "你好", age=5)
    for _ in range(2):  # beat after beat
        desk.clock.advance(timedelta(seconds=30))
        now = desk.clock.now()

        async def beaten(now: datetime = now) -> bool:
            return (await desk.key(key)).updated_at == now

        await wait_for(beaten, "the handler's heartbeat")
        assert await desk.delivery.recover_stale() == (1 if dead else 0)
        assert (await desk.key(key)).status == "deferred"
        if dead:
            assert (await desk.key(dead)).status == "done"
            dead = ""

    gate.set()

    async def finished() -> bool:
        return (await desk.key(key)).status == "done"

    await wait_for(finished, "the deferred answer")
    assert [t for t, _, _ in await desk.queued("o_slow_guard")] == ["好了，这是您的答复。"]
    await wait_for(no_tasks(desk), "the finished handler let go")
    assert said(caplog, "WARNING", "msg:", "o_slow_guard") == []  # its own key: not taken over
    desk.clock.advance(timedelta(seconds=30))
    assert await desk.delivery.recover_stale() == 0  # a finished key is not beaten or taken

    # A redo whose handler fails answers with the apology, and the recovery goes on to the
    # next key.
    broken = await desk.pending("o_redo_x", "出错", age=5)
    fine = await desk.pending("o_redo_y", "你好", age=4)
    assert await desk.delivery.recover_stale() == 2
    assert ((await desk.key(broken)).status, (await desk.key(fine)).status) == ("done", "done")
    assert [t for t, _, _ in await desk.queued("o_redo_x")] == [texts.ERROR]

    # A slow redo beats too (its key is recovering): the next round leaves it alone.
    gate.clear()
    started.clear()
    slow = await desk.pending("o_redo_z", "等一等", age=5)
    first = asyncio.create_task(desk.delivery.recover_stale(timedelta(seconds=2)))
    await asyncio.wait_for(started.wait(), 20)
    desk.clock.advance(timedelta(seconds=30))
    now = desk.clock.now()

    async def redo_beaten() -> bool:
        return (await desk.key(slow)).updated_at == now

    await wait_for(redo_beaten, "the redo's heartbeat")
    assert (await desk.key(slow)).status == "recovering"
    gate.set()
    await asyncio.wait_for(first, 20)
    assert (await desk.key(slow)).status == "done"
    assert [t for t, _, _ in await desk.queued("o_redo_z")] == ["好了，这是您的答复。"]


async def test_a_stuck_handler_is_taken_over_from_the_stored_message_and_its_late_answer_dropped(
    desks: Desks, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="bot.delivery")
    # A handler stuck in a process that died: no beats (a beat every 15 minutes), the budget runs
    # out, and recovery redoes the message from what the claim stored with its key.
    gate, started = desks.event(), desks.event()
    desk = await desks.open(
        blocking_router(gate, started, once=True),
        BOT_RECOVER_AFTER=3600,
        BOT_REPLY_BUDGET=0.2,
    )
    sender = desk.svc.sender()
    fields = sender.text("o_stuck", "等一等")
    reply = await asyncio.wait_for(sender.send(desk.svc.http, fields), 60)
    assert reply.body == "success"
    async with desk.db.session() as s:
        (row,) = (await s.scalars(select(InboundKey).where(InboundKey.openid == "o_stuck"))).all()
    assert row.status == "deferred" and row.inbound is not None
    assert Inbound.from_dict(row.inbound).content == "等一等"

    desk.clock.advance(timedelta(seconds=3601))
    assert await desk.delivery.recover_stale() == 1
    assert (await desk.key(row.key)).status == "done"
    assert [t for t, _, _ in await desk.queued("o_stuck")] == ["好了，这是您的答复。"]

    gate.set()  # the stuck handler ends after all: its answer is not sent a second time
    await wait_for(no_tasks(desk), "the stuck handler ended")
    assert [t for t, _, _ in await desk.queued("o_stuck")] == ["好了，这是您的答复。"]
    assert (await desk.key(row.key)).status == "done"
    (line,) = said(caplog, "WARNING", "msg:", "o_stuck")
    assert line.endswith(" was taken over by a recovery; this answer is dropped")


async def test_one_message_running_out_of_time_defers_only_itself(desks: Desks) -> None:
    slow_gate, slow_started = desks.event(), desks.event()
    other_gate, other_started = desks.event(), desks.event()
    router = blocking_router(slow_gate, slow_started)

    @router.message(Text("稍等"))
    async def other(ctx: Any) -> str:
        other_started.set()
        await other_gate.wait()
        return "这是另一条答复。"

    desk = await desks.open(router, BOT_REPLY_BUDGET=2.0)
    sender = desk.svc.sender()
    slow = asyncio.create_task(sender.send(desk.svc.http, sender.text("o_defer_a", "等一等")))
    await asyncio.wait_for(slow_started.wait(), 30)
    await asyncio.sleep(1.0)  # the second message's budget ends a second after the first's
    second = asyncio.create_task(sender.send(desk.svc.http, sender.text("o_defer_b", "稍等")))
    await asyncio.wait_for(other_started.wait(), 30)
    assert (await asyncio.wait_for(slow, 60)).body == "success"
    other_gate.set()  # the second message's handler is done within its own budget
    reply = await asyncio.wait_for(second, 60)
    assert reply.content == "这是另一条答复。"
    assert await desk.queued("o_defer_b") == []


async def test_a_graceful_stop_waits_for_a_handler_still_running(desks: Desks) -> None:
    gate, started = desks.event(), desks.event()
    desk = await desks.open(blocking_router(gate, started), BOT_REPLY_BUDGET=0.2)
    sender = desk.svc.sender()
    reply = await asyncio.wait_for(sender.send(desk.svc.http, sender.text("o_drain", "等一等")), 60)
    assert reply.body == "success"
    asyncio.get_running_loop().call_later(0.3, gate.set)  # the handler ends during the stop
    await desk.svc.runner.cleanup()
    async with desk.db.session() as s:
        (row,) = (await s.scalars(select(InboundKey).where(InboundKey.openid == "o_drain"))).all()
    assert row.status == "done"  # its answer was stored before the process ended
    assert [t for t, _, _ in await desk.queued("o_drain")] == ["好了，这是您的答复。"]


def failing_write_router() -> Router:
    """``写不进``: the handler answers, but a write that goes with its reply fails (the database
    refusing the reply's transaction)."""
    router = Router("failing-write-test")

    @router.message(Text("写不进"))
    async def failing(ctx: Any) -> str:
        def write(connection: Any) -> None:
            raise RuntimeError("the reply's transaction failed")

        ctx.with_reply(write)
        return "这条答复存不下来。"

    return router


async def test_an_answer_that_cannot_be_stored_is_an_apology_and_a_redo_that_cannot_is_left_pending(
    desks: Desks, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="bot.delivery")
    desk = await desks.open(failing_write_router())
    sender = desk.svc.sender()
    reply = await sender.send(desk.svc.http, sender.text("o_unstored", "写不进"))
    assert reply.status == 200 and reply.content == texts.DELAYED  # no "send again": it is redone
    assert len(said(caplog, "ERROR", "could not finish msg:", "o_unstored")) == 1

    key = await desk.pending("o_unredone", "写不进", age=30)
    assert await desk.delivery.recover_stale() == 1
    assert (await desk.key(key)).status == "recovering"  # taken again after its wait
    assert await desk.queued("o_unredone") == []
    assert len(said(caplog, "ERROR", "could not redo msg:", "o_unredone")) == 1
    desk.clock.advance(timedelta(seconds=1))
    # Both keys stay pending: the next rounds take them again (until MAX_RECOVERIES).
    assert await desk.delivery.recover_stale(timedelta(0)) == 2


async def test_a_redo_whose_process_dies_too_is_redone_again_from_the_stored_message(desks: Desks) -> None:
    gate, started = desks.event(), desks.event()
    desk = await desks.open(
        blocking_router(gate, started, once=True),
        BOT_RECOVER_AFTER=3600,  # no beat within the test: the first redo looks dead
    )
    key = await desk.pending("o_redo_dies", "等一等", age=3601)
    first = asyncio.create_task(desk.delivery.recover_stale())  # this redo gets stuck
    await asyncio.wait_for(started.wait(), 30)
    desk.clock.advance(timedelta(seconds=3601))
    assert await desk.delivery.recover_stale() == 1
    row = await desk.key(key)
    assert (row.status, row.attempts) == ("done", 2)
    assert [t for t, _, _ in await desk.queued("o_redo_dies")] == ["好了，这是您的答复。"]
    gate.set()  # the stuck redo ends after all: nothing more is sent
    assert await asyncio.wait_for(first, 30) == 1
    assert [t for t, _, _ in await desk.queued("o_redo_dies")] == ["好了，这是您的答复。"]
