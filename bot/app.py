"""The aiohttp application factory: storage, handler, WeChat edge, JSON API and web pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from bot import logsetup, metrics
from bot.api import routes as api_routes
from bot.appkeys import RUNTIME, SETTINGS
from bot.clock import Clock
from bot.config import Settings
from bot.flows import build_router
from bot.handler.delivery import Delivery
from bot.handler.dispatcher import Dispatcher
from bot.handler.middlewares import STANDARD
from bot.handler.router import Router
from bot.handler.state import DatabaseStateStorage, RedisStateStorage, StateStorage
from bot.language import Language
from bot.logmask import quiet_chatty_libraries
from bot.runtime import Runtime
from bot.services.jobs import JOBS
from bot.services.scheduler import Scheduler
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.web import pages
from bot.wechat import endpoint, wiring
from bot.wechat.crypto import Codec

log = logging.getLogger("bot.app")


def _redis(settings: Settings) -> Any:
    if not settings.redis_url:
        return None
    import redis.asyncio as aioredis

    return aioredis.from_url(settings.redis_url, decode_responses=True)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers HTTP (nothing else is checked; see ``/readyz``)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: the database and (when configured) Redis answer; 503 naming what does not."""
    rt = request.app[RUNTIME]
    from sqlalchemy import text

    problems: dict[str, str] = {}
    try:
        async with asyncio.timeout(2.0):
            async with rt.db.session() as session:
                await session.execute(text("SELECT 1"))
    except Exception as exc:  # a readiness check reports, it does not raise
        problems["database"] = type(exc).__name__
    if rt.redis is not None:
        try:
            async with asyncio.timeout(2.0):
                await rt.redis.ping()
        except Exception as exc:
            problems["redis"] = type(exc).__name__
    if problems:
        names = " and ".join(problems)
        return web.json_response(
            {"status": "unavailable", "message": f"{names} not reachable", "unavailable": problems}, status=503
        )
    return web.json_response({"status": "ok", "database": "ok", "redis": "ok" if rt.redis is not None else "not used"})


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    background: bool = True,
    routers: Sequence[Router] = (),
) -> web.Application:
    """Build the application. ``background`` runs the outbox and maintenance loops in-process;
    ``routers`` are extra handlers consulted before the standard flows (plugins, tests)."""
    clock = clock or Clock()
    quiet_chatty_libraries()
    db = Database(settings.database_url)
    redis = _redis(settings)
    states: StateStorage = RedisStateStorage(redis) if redis is not None else DatabaseStateStorage(db, clock)
    rt = Runtime(settings=settings, db=db, clock=clock, states=states, redis=redis)
    root = Router("app")
    root.include(*routers, build_router())
    dispatcher = Dispatcher(root, STANDARD)
    delivery = Delivery(rt, dispatcher)
    codec = Codec(
        settings.wechat_token,
        settings.wechat_appid,
        settings.wechat_aes_key,
        settings.wechat_aes_key_previous,
    )

    app = web.Application(
        client_max_size=max(settings.max_body_bytes, 1024 * 1024), middlewares=[logsetup.request_ids]
    )
    app[SETTINGS] = settings
    app[RUNTIME] = rt
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    metrics.setup(app)
    endpoint.setup(app, codec, delivery)
    api = api_routes.setup(app)
    pages.setup(app, api)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if migrate:
            await upgrade(db)
        language = await Language.load(settings, db)
        rt.language = language
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if background:
            tasks.append(asyncio.create_task(_maintenance(delivery, stop)))
            tasks.append(asyncio.create_task(language.watch(db, stop)))
            tasks.append(asyncio.create_task(Scheduler(rt, JOBS).run(stop)))
        tasks.extend(await wiring.start(app, rt, stop, background))
        yield
        stop.set()
        await delivery.drain()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if background and "outbox" in rt.extras:  # what is due now goes out before the process ends
            with contextlib.suppress(Exception):
                async with asyncio.timeout(max(1.0, settings.shutdown_timeout / 2)):
                    await rt.extras["outbox"].run_once()
        if rt.api is not None:
            await rt.api.close()
        await states.close()
        if redis is not None:
            await redis.aclose()
        await db.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def _maintenance(delivery: Delivery, stop: asyncio.Event) -> None:
    """Periodic upkeep: messages whose handler's process died are redone (or the resident is asked
    to send again), checked four times per ``recover_after``."""
    interval = min(30.0, delivery.rt.settings.recover_after / 4)
    while not stop.is_set():
        try:
            await delivery.recover_stale()
        except Exception:
            log.exception("maintenance failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
