"""Multi-turn state is shared by every process (database or Redis), and the router's phases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import ManualClock
from bot.handler.context import Context
from bot.handler.router import Intent, MenuKey, MsgType, Router, State, Text
from bot.handler.state import DatabaseStateStorage, StateRecord
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.conftest import REDIS_URL, need_service


def booking_router() -> Router:
    router = Router("test-flow")

    @router.message(Text("开始"))
    async def start(ctx: Context) -> str:
        await ctx.fsm.set("demo:ask_name", step=1)
        return "请问您贵姓？"

    @router.message(State("demo:ask_name"), MsgType("text"))
    async def got_name(ctx: Context) -> str:
        await ctx.fsm.set("demo:ask_phone", name=ctx.text)
        return f"{ctx.text}您好，请留个电话。"

    @router.message(State("demo:*"), MsgType("text"))
    async def finish(ctx: Context) -> str:
        name = ctx.fsm.data.get("name")
        await ctx.fsm.clear()
        return f"记下了：{name}，{ctx.text}"

    return router


@pytest.fixture(params=["database", "redis"])
async def storage(request):
    if request.param == "redis":
        need_service("Redis", "127.0.0.1", 6379)
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
        return "redis", {"BOT_REDIS_URL": REDIS_URL}
    return "database", {}


async def test_conversation_continues_on_another_process(service_factory, database_url, fake_api, storage):
    storage, extra = storage
    a = await service_factory(database_url, fake_api, app_kwargs={"routers": [booking_router()]}, **extra)
    b = await service_factory(database_url, fake_api, app_kwargs={"routers": [booking_router()]}, **extra)
    sa, sb = a.sender("safe"), b.sender("safe")
    oid = f"o_fsm_{storage}"
    assert (await sa.send(a.http, sa.text(oid, "开始"))).content == "请问您贵姓？"
    assert (await sb.send(b.http, sb.text(oid, "王"))).content == "王您好，请留个电话。"
    assert (await sa.send(a.http, sa.text(oid, "13800000000"))).content == "记下了：王，13800000000"
    # State cleared: back to the ordinary reply.
    assert "社区服务小助手" in (await sb.send(b.http, sb.text(oid, "你好"))).content


async def test_router_phases_state_before_menu_before_type_before_intent():
    from bot.handler.router import PHASE_ANY, PHASE_INTENT, PHASE_MENU, PHASE_STATE, PHASE_TYPE

    r = Router("phases")

    @r.message()
    async def anything(ctx): ...

    @r.message(Intent("complaint"))
    async def by_intent(ctx): ...

    @r.message(MsgType("text"))
    async def by_type(ctx): ...

    @r.message(MenuKey("REPORT"))
    async def by_menu(ctx): ...

    @r.message(State("x:*"))
    async def by_state(ctx): ...

    order = [(reg.name, reg.phase) for reg in r.ordered()]
    assert order == [
        ("phases.by_state", PHASE_STATE),
        ("phases.by_menu", PHASE_MENU),
        ("phases.by_type", PHASE_TYPE),
        ("phases.by_intent", PHASE_INTENT),
        ("phases.anything", PHASE_ANY),
    ]


async def test_handler_error_gets_a_friendly_reply_and_is_logged(service_factory, sqlite_url):
    router = Router("broken")

    @router.message(Text("炸"))
    async def broken(ctx):
        raise RuntimeError("boom")

    svc = await service_factory(sqlite_url, app_kwargs={"routers": [router]})
    s = svc.sender()
    reply = await s.send(svc.http, s.text("o_boom", "炸"))
    assert reply.status == 200 and "开了个小差" in reply.content


async def test_takeover_keeps_the_bot_silent(service_factory, sqlite_url):
    from sqlalchemy import update

    from bot.storage.db import Database
    from bot.storage.models import Resident

    svc = await service_factory(sqlite_url)
    s = svc.sender()
    await s.send(svc.http, s.text("o_take", "你好"))
    db = Database(sqlite_url)
    async with db.transaction() as session:
        await session.execute(update(Resident).where(Resident.openid == "o_take").values(takeover_by="李老师"))
    await db.dispose()
    reply = await s.send(svc.http, s.text("o_take", "在吗"))
    assert reply.body == "success"


async def test_database_state_storage_reads_its_own_writes_and_expires(database_url):
    """The storage's single-resident read (used when no claim preloaded the state) sees what was
    set, forgets what was cleared, and reports an idle state as expired."""
    db = Database(database_url)
    await upgrade(db)
    clock = ManualClock(datetime(2026, 12, 5, 8, 0, tzinfo=UTC))
    states = DatabaseStateStorage(db, clock, ttl=timedelta(hours=2))
    try:
        assert await states.get("o_state") == StateRecord()
        await states.set("o_state", StateRecord("demo:ask_name", {"step": 1, "楼": "3号楼"}))
        assert await states.get("o_state") == StateRecord("demo:ask_name", {"step": 1, "楼": "3号楼"})
        assert await states.get("o_other") == StateRecord()
        clock.advance(timedelta(hours=3))
        assert await states.get("o_state") == StateRecord(None, {"expired_state": "demo:ask_name"})
        await states.clear("o_state")
        assert await states.get("o_state") == StateRecord()
    finally:
        await db.dispose()
