"""Starts the WeChat API client (with the shared token store), the services' media source and the
outbox worker."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.runtime import Runtime
from bot.wechat.api import WeChatAPI
from bot.wechat.fairness import WindowLimiter
from bot.wechat.media import MediaStore, WeChatMedia
from bot.wechat.outbox import OutboxWorker
from bot.wechat.tokens import make_token_store


async def start(
    app: web.Application, rt: Runtime, stop: asyncio.Event, background: bool
) -> list[asyncio.Task[None]]:
    rt.api = WeChatAPI(rt.settings, token_store=make_token_store(rt.settings, rt.db, clock=rt.clock))
    rt.media = WeChatMedia(rt.api, MediaStore(rt.settings.media_dir))
    if not background:
        return []
    worker = OutboxWorker(rt.db, rt.api, rt.clock)
    settings = rt.settings
    worker.limiter = WindowLimiter("outbox", settings.outbox_rate, 1.0, redis=rt.redis, share=settings.workers)
    rt.extras["outbox"] = worker
    return [asyncio.create_task(worker.run_forever(stop))]
