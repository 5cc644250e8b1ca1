"""The running service's shared parts, handed to middlewares, handlers and services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock
from bot.config import Settings
from bot.handler.state import StateStorage
from bot.services.attachments import MediaSource
from bot.storage.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    states: StateStorage
    redis: Any = None  # redis.asyncio.Redis when BOT_REDIS_URL is set
    api: Any = None  # bot.wechat.api.WeChatAPI once started
    media: MediaSource | None = None  # WeChat's media for the services (bot.wechat.media.WeChatMedia)
    language: Any = None  # bot.language.Language: intent engine and knowledge base
    extras: dict[str, Any] = field(default_factory=dict)
