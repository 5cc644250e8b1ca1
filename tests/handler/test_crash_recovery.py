"""A process that dies between a handler's effect and the stored reply loses nothing and repeats
nothing: real server processes (``python -m bot serve``) killed at a controlled step
(``BOT_FAULT``, see ``bot/faults.py``), then another process redoes the message.

What each test checks through the wire, the fake WeChat API and the database: one ticket (or
redemption, or booking) and one answer, sent as a customer-service message well under a minute
after the crash; WeChat's retry of the same message makes nothing new; a handler that is only slow
is never taken over.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.faults import EXIT_CODE
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Booking, InboundKey, IssuedCoupon, PointsEntry, Ticket
from bot.wechat.simulate import WeChatSender
from tests.conftest import (
    AES_KEY,
    APPID,
    REPO,
    SECRET,
    TOKEN,
    create_pg_database,
    free_port,
    need_service,
)
from tests.points.helpers import NOW, assert_ledger_matches, make_coupon, make_course, make_residents

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]  # several servers start in a test

NUMBER = re.compile(r"GD\d{8}-\d{4}")
CODE = re.compile(r"券码[：:]\s*([A-Z2-9]{10})")
RECOVER_AFTER = 1.0  # seconds: a stopped heartbeat is noticed within about this (20 by default)

START_TIMEOUT = 120.0  # seconds for a server to start (it trains its models; a loaded machine is slow)


@dataclass
class Server:
    """``python -m bot serve`` in a subprocess, on loopback."""

    proc: asyncio.subprocess.Process
    base: str
    log: Path

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 30)

    async def died(self) -> int:
        return await asyncio.wait_for(self.proc.wait(), 30)


@dataclass
class Harness:
    tmp: Path
    database_url: str
    fake_api: str
    http: aiohttp.ClientSession
    redis_url: str | None = None
    servers: list[Server] = field(default_factory=list)

    async def serve(self, fault: str = "", **env: Any) -> Server:
        port = free_port()
        values = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BOT_")},
            "BOT_DATABASE_URL": self.database_url,
            "BOT_WECHAT_TOKEN": TOKEN,
            "BOT_WECHAT_APPID": APPID,
            "BOT_WECHAT_SECRET": SECRET,
            "BOT_WECHAT_AES_KEY": AES_KEY,
            "BOT_WECHAT_API_BASE": self.fake_api,
            "BOT_DATA_DIR": str(self.tmp / "data"),
            "BOT_OUTBOX_INTERVAL": "0.05",
            "BOT_RECOVER_AFTER": str(RECOVER_AFTER),
            "BOT_FAULT": fault,
            "BOT_LOG_LEVEL": "INFO",
        }
        if self.redis_url:
            values["BOT_REDIS_URL"] = self.redis_url
        values.update({k: str(v) for k, v in env.items()})
        log = self.tmp / f"server-{len(self.servers)}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
                cwd=REPO, env=values, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        server = Server(proc, f"http://127.0.0.1:{port}", log)
        self.servers.append(server)
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                async with self.http.get(f"{server.base}/healthz") as resp:
                    if resp.status == 200:
                        return server
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"server did not start:\n{log.read_text()[-3000:]}")

    def sender(self, server: Server) -> WeChatSender:
        return WeChatSender(f"{server.base}/wechat", TOKEN, APPID, AES_KEY, mode="safe")

    async def say(self, server: Server, openid: str, text: str, msg_id: int | None = None) -> str:
        s = self.sender(server)
        reply = await s.send(self.http, s.text(openid, text, msg_id=msg_id))
        assert reply.status == 200, reply
        return str(reply.content or "")

    async def say_and_die(self, server: Server, openid: str, text: str, msg_id: int) -> str | None:
        """Send a message during which the server dies; the reply if it answered first."""
        s = self.sender(server)
        try:
            reply = await s.send(self.http, s.text(openid, text, msg_id=msg_id))
        except aiohttp.ClientError:
            reply = None
        assert await server.died() == EXIT_CODE, server.log.read_text()[-3000:]
        return None if reply is None else str(reply.content or "")

    async def sent_texts(self, openid: str) -> list[str]:
        async with self.http.get(f"{self.fake_api}/fake/sent", params={"openid": openid}) as resp:
            data = await resp.json()
        messages = data["messages"] if isinstance(data, dict) else data
        return [m["payload"]["text"]["content"] for m in messages if "text" in m["payload"]]

    async def pushed(self, openid: str, needle: str | re.Pattern[str], within: float = 60.0) -> list[str]:
        """The customer-service texts sent to ``openid`` once one of them matches ``needle``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        texts: list[str] = []
        while loop.time() < deadline:
            texts = await self.sent_texts(openid)
            if any((needle.search(t) if isinstance(needle, re.Pattern) else needle in t) for t in texts):
                return texts
            await asyncio.sleep(0.1)
        logs = "\n".join(s.log.read_text()[-2000:] for s in self.servers)
        raise AssertionError(f"nothing matching {needle!r} was sent to {openid}: {texts}\n{logs}")


@pytest.fixture
async def harness(tmp_path: Path, fake_api: str) -> AsyncIterator[Harness]:
    """Servers on a SQLite file unless a test points ``database_url`` (and ``redis_url``) elsewhere."""
    async with aiohttp.ClientSession() as http:
        h = Harness(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}", fake_api, http)
        try:
            yield h
        finally:
            for server in h.servers:
                await server.stop()


async def _db(h: Harness) -> Database:
    db = Database(h.database_url)
    await upgrade(db)
    return db


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _key_status(db: Database, openid: str) -> list[str]:
    async with db.session() as session:
        return list(
            (await session.scalars(select(InboundKey.status).where(InboundKey.openid == openid))).all()
        )


async def _seed_coupon_and_course(db: Database) -> tuple[int, int]:
    """A resident with 50 points for a coupon (15 points) and one for a course (20 points)."""
    [coupon_rid] = await make_residents(db, 1, points_each=50, prefix="oCrashCoupon")
    [course_rid] = await make_residents(db, 1, points_each=50, prefix="oCrashCourse")
    await make_coupon(db, stock=5, price=15, title="理发立减10元")
    # make_course dates sessions from the tests' fixed NOW; these servers run on the real clock.
    await make_course(db, capacity=5, cost=20, starts_in=datetime.now(UTC) - NOW + timedelta(days=3))
    return coupon_rid, course_rid


@pytest.fixture(params=["sqlite", "postgres+redis"])
async def stores(request: pytest.FixtureRequest, harness: Harness) -> str:
    """Where the database and the conversation state live: a SQLite file (state in it, written in
    the reply's transaction), or PostgreSQL with state in Redis (written after that commit)."""
    if request.param == "postgres+redis":
        need_service("PostgreSQL", "127.0.0.1", 5432)
        name = await create_pg_database()
        request.getfixturevalue("_pg_databases").append(name)
        harness.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        need_service("Redis", "127.0.0.1", 6379)
        import redis.asyncio as aioredis

        # A database of its own: other tests flush the shared one (15) when they start.
        url = "redis://127.0.0.1:6379/12"
        client = aioredis.from_url(url)
        await client.flushdb()
        await client.aclose()
        harness.redis_url = url
    return str(request.param)


async def test_effects_whose_process_dies_before_the_reply_are_answered_once(
    harness: Harness, stores: str
) -> None:
    """A complaint, a redemption and a booking, each in a handler that has done its work when the
    process dies: a ticket, a coupon and a booking are made in the reply's transaction, so the
    first process made none of them; a second process redoes each message, makes each once and
    sends each resident one answer."""
    h = harness
    db = await _db(h)
    try:
        coupon_rid, course_rid = await _seed_coupon_and_course(db)
        complainer, buyer, learner = (
            "oCrashTicket0000000000001",
            f"oCrashCoupon{0:022d}",
            f"oCrashCourse{0:022d}",
        )
        # Four messages pass; the three last ones all reach the fault, which holds each until all
        # three are there (however loaded the machine) and then ends the process.
        dying = await h.serve("delivery.before_finish:skip=4:wait=3:sleep=0.2:exit")
        assert "理发立减10元" in await h.say(dying, buyer, "积分商城", msg_id=7_000_010)
        assert "确认" in await h.say(dying, buyer, "1", msg_id=7_000_011)
        assert "花艺入门" in await h.say(dying, learner, "有什么课", msg_id=7_000_020)
        assert "预约" in await h.say(dying, learner, "1", msg_id=7_000_021)
        lost = await asyncio.gather(
            h.say_and_die(dying, complainer, "3号楼楼下垃圾堆了好几天没人清理", msg_id=7_000_001),
            h.say_and_die(dying, buyer, "确认", msg_id=7_000_012),
            h.say_and_die(dying, learner, "预约", msg_id=7_000_022),
        )
        # None answered: the connection dropped, or "success" when the reply budget ran out first.
        assert not any(lost), lost
        # No reply was stored, nor the ticket, the coupon or the booking, written with their replies.
        assert await _count(db, Ticket) == 0
        assert await _count(db, IssuedCoupon) == 0
        assert await _count(db, Booking, Booking.status == "booked") == 0
        assert await _key_status(db, complainer) == ["processing"]

        survivor = await h.serve()
        ticket_texts = await h.pushed(complainer, NUMBER)
        coupon_texts = await h.pushed(buyer, CODE)
        course_texts = await h.pushed(learner, "预约成功")
        async with db.session() as session:
            ticket = await session.scalar(select(Ticket))
            issued = await session.scalar(select(IssuedCoupon))
            assert ticket is not None and issued is not None
            # Each price paid once, whatever else was credited (the registration reward).
            for rid, price in ((coupon_rid, 15), (course_rid, 20)):
                spent = await session.scalar(
                    select(func.sum(PointsEntry.amount)).where(
                        PointsEntry.resident_id == rid, PointsEntry.amount < 0
                    )
                )
                assert spent == -price
            attempts = await session.scalar(
                select(InboundKey.attempts).where(InboundKey.openid == complainer)
            )
        assert attempts == 1
        assert len(ticket_texts) == 1 and ticket.number in ticket_texts[0], ticket_texts
        code = CODE.search(coupon_texts[-1])
        assert code is not None and code[1] == issued.code
        assert not any("不用重复" in t for t in course_texts), course_texts

        # WeChat's retry of a message: nothing new is made or sent.
        await h.say(survivor, complainer, "3号楼楼下垃圾堆了好几天没人清理", msg_id=7_000_001)
        await asyncio.sleep(0.5)
        assert len(await h.sent_texts(complainer)) == 1
        assert (await _count(db, Ticket), await _count(db, IssuedCoupon), await _count(db, Booking)) == (
            1,
            1,
            1,
        )
        assert await _key_status(db, complainer) == ["done"]
        await assert_ledger_matches(db)
    finally:
        await db.dispose()


async def test_a_deferred_answer_survives_its_process_and_a_slow_handler_is_left_alone(
    harness: Harness,
) -> None:
    """One process answers ``success`` when the budget runs out and dies before the handler's
    answer is queued; another, whose own handler is only slow (it keeps beating), redoes the dead
    one's message and is not taken over itself. Each resident gets one answer."""
    h = harness
    dead, patient = "oCrashDeferred00000000001", "oSlowHandler0000000000001"
    # A heartbeat every 0.6 s, taken over after 2.5 s without one: slack for a loaded machine.
    slow = await h.serve("delivery.before_finish:sleep=4", BOT_REPLY_BUDGET="0.2", BOT_RECOVER_AFTER="2.5")
    dying = await h.serve("delivery.before_finish:sleep=1:exit", BOT_REPLY_BUDGET="0.2")
    assert await h.say_and_die(dying, dead, "5号楼门口路灯不亮了", msg_id=7_000_002) == ""
    db = await _db(h)
    try:
        assert await _key_status(db, dead) == ["deferred"]
        assert await h.say(slow, patient, "8号楼楼道灯坏了 电话13912340003", msg_id=7_000_003) == ""
        await h.pushed(dead, NUMBER)
        await h.pushed(patient, NUMBER)
        await asyncio.sleep(RECOVER_AFTER * 2)
        assert len(await h.sent_texts(dead)) == 1
        assert len(await h.sent_texts(patient)) == 1
        assert await _count(db, Ticket) == 2
        assert await _key_status(db, dead) == ["done"]
        assert await _key_status(db, patient) == ["done"]
        async with db.session() as session:
            attempts = await session.scalar(select(InboundKey.attempts).where(InboundKey.openid == patient))
        assert attempts == 0  # never taken over
    finally:
        await db.dispose()


async def test_a_message_that_keeps_killing_its_process_is_given_up_with_an_apology(harness: Harness) -> None:
    """A message is redone at most three times: then the resident is asked to send it again."""
    h = harness
    openid = "oPoison000000000000000001"
    dying = await h.serve("delivery.before_finish:exit")
    await h.say_and_die(dying, openid, "3号楼楼下垃圾堆了好几天没人清理", msg_id=7_000_030)
    db = await _db(h)
    try:
        async with db.transaction() as session:  # as if three recoveries had died on it already
            key = await session.get(InboundKey, (await _keys(db, openid))[0])
            assert key is not None and key.inbound is not None
            key.attempts = 3
        await h.serve()
        texts = await h.pushed(openid, "再发一次")
        assert len(texts) == 1, texts
        assert await _key_status(db, openid) == ["abandoned"]
    finally:
        await db.dispose()


async def _keys(db: Database, openid: str) -> list[str]:
    async with db.session() as session:
        return list((await session.scalars(select(InboundKey.key).where(InboundKey.openid == openid))).all())
