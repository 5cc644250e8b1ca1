"""Settings from environment variables (and an optional ``.env``), validated at start-up.

Every setting is named ``BOT_*``. An invalid value raises :class:`ConfigError` whose message
names the setting, so ``python -m bot serve`` fails early and readably.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VAR = REPO_ROOT / "var"
WECHAT_API_BASE = "https://api.weixin.qq.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting has an invalid value; the message names it."""


def _check_aes_key(name: str, value: str) -> str:
    if not value:
        return value
    if len(value) != 43:
        raise ConfigError(f"{name} must be the 43-character EncodingAESKey from the 公众号 settings")
    try:
        raw = base64.b64decode(value + "=", validate=True)
    except binascii.Error as exc:
        raise ConfigError(f"{name} is not valid base64: {exc}") from None
    if len(raw) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes")
    return value


def _existing_dir(name: str, value: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{name} must be an existing directory, got {value!r}")
    return path


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = ""
    wechat_token: str = "communitydevtoken"
    wechat_appid: str = "wxdevappid0000001"
    wechat_secret: str = "dev-secret"
    wechat_aes_key: str = ""
    wechat_aes_key_previous: str = ""
    # With an EncodingAESKey set, unencrypted POSTs are refused unless this is on (a mode switch).
    wechat_allow_plaintext: bool = False
    wechat_api_base: str = WECHAT_API_BASE
    wechat_template_ticket: str = ""  # template id for ticket updates outside the 48-hour window; "" = none
    redis_url: str = ""
    data_dir: Path = field(default_factory=lambda: DEFAULT_VAR / "data")
    log_level: str = "INFO"
    reply_budget: float = 4.0
    recover_after: float = 20.0  # seconds without a heartbeat before a pending message is redone
    timestamp_window: int = 300
    max_body_bytes: int = 64 * 1024
    outbox_interval: float = 1.0
    simulator: bool = False
    simulator_public: bool = False  # the simulator on a non-loopback address: a demo exposed on purpose
    intents_dir: Path | None = None  # training data; None = the packaged intents/data
    knowledge_dir: Path | None = None  # entries; None = the packaged knowledge/entries
    takeover_idle: float = 30.0  # minutes without activity before a console takeover goes back to the bot
    console_secure_cookie: bool = True  # the console's session cookie is Secure (off only behind plain HTTP)
    log_format: str = "text"  # text or json (one JSON object a line, with request ids)
    workers: int = 1  # server processes of `serve` sharing the listening socket
    shutdown_timeout: float = 30.0  # seconds a stopping worker gets to finish requests and flush
    resident_rate: int = 30  # messages one resident may send per minute (0 = no limit)
    outbox_rate: int = 100  # customer-service messages sent per second, all processes together

    @property
    def safe_mode_enabled(self) -> bool:
        return bool(self.wechat_aes_key)

    @property
    def accepts_plaintext(self) -> bool:
        """Whether ``/wechat`` takes unencrypted messages: always without a key (明文模式); with a
        key only when ``BOT_WECHAT_ALLOW_PLAINTEXT`` is on, while the 公众号 is switched over."""
        return not self.wechat_aes_key or self.wechat_allow_plaintext

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``) over an optional ``.env`` file."""
        values: dict[str, str] = {}
        dotenv = env_file if env_file is not None else REPO_ROOT / ".env"
        if dotenv.exists():
            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        values.update(os.environ if env is None else env)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        def get(name: str, default: str) -> str:
            return values.get(name, default).strip()

        def number(name: str, default: float, lo: float, hi: float, integer: bool = False) -> float:
            raw = get(name, str(default))
            try:
                num = int(raw) if integer else float(raw)
            except ValueError:
                kind = "an integer" if integer else "a number"
                raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
            if not lo <= num <= hi:
                raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {raw}")
            return num

        data_dir = Path(get("BOT_DATA_DIR", str(DEFAULT_VAR / "data"))).expanduser()
        database_url = get("BOT_DATABASE_URL", "") or f"sqlite+aiosqlite:///{DEFAULT_VAR / 'bot.sqlite3'}"
        if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ConfigError(
                "BOT_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"got {database_url.split('://')[0]!r}"
            )
        redis_url = get("BOT_REDIS_URL", "")
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("BOT_REDIS_URL must be a redis:// or rediss:// URL (or empty for in-process)")
        api_base = get("BOT_WECHAT_API_BASE", WECHAT_API_BASE).rstrip("/")
        if not api_base.startswith(("http://", "https://")):
            raise ConfigError("BOT_WECHAT_API_BASE must be an http(s) URL")
        level = get("BOT_LOG_LEVEL", "INFO").upper()
        if level not in LOG_LEVELS:
            raise ConfigError(f"BOT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        token = get("BOT_WECHAT_TOKEN", cls.wechat_token)
        if not re.fullmatch(r"[A-Za-z0-9]{3,32}", token):
            raise ConfigError(
                "BOT_WECHAT_TOKEN must be 3-32 letters or digits (the Token in the 公众号 settings)"
            )
        return cls(
            host=get("BOT_HOST", cls.host),
            port=int(number("BOT_PORT", cls.port, 0, 65535, integer=True)),
            database_url=database_url,
            wechat_token=token,
            wechat_appid=get("BOT_WECHAT_APPID", cls.wechat_appid),
            wechat_secret=get("BOT_WECHAT_SECRET", cls.wechat_secret),
            wechat_aes_key=_check_aes_key("BOT_WECHAT_AES_KEY", get("BOT_WECHAT_AES_KEY", "")),
            wechat_aes_key_previous=_check_aes_key(
                "BOT_WECHAT_AES_KEY_PREVIOUS", get("BOT_WECHAT_AES_KEY_PREVIOUS", "")
            ),
            wechat_allow_plaintext=_flag("BOT_WECHAT_ALLOW_PLAINTEXT", get("BOT_WECHAT_ALLOW_PLAINTEXT", "0")),
            wechat_api_base=api_base,
            wechat_template_ticket=_check_template_id(
                "BOT_WECHAT_TEMPLATE_TICKET", get("BOT_WECHAT_TEMPLATE_TICKET", "")
            ),
            redis_url=redis_url,
            data_dir=data_dir,
            log_level=level,
            reply_budget=number("BOT_REPLY_BUDGET", cls.reply_budget, 0.05, 4.8),
            recover_after=number("BOT_RECOVER_AFTER", cls.recover_after, 0.5, 3600),
            timestamp_window=int(
                number("BOT_TIMESTAMP_WINDOW", cls.timestamp_window, 0, 86400, integer=True)
            ),
            max_body_bytes=int(
                number("BOT_MAX_BODY_BYTES", cls.max_body_bytes, 1024, 10 * 1024 * 1024, True)
            ),
            outbox_interval=number("BOT_OUTBOX_INTERVAL", cls.outbox_interval, 0.05, 60),
            simulator=get("BOT_SIMULATOR", "0").lower() in ("1", "true", "yes", "on"),
            simulator_public=get("BOT_SIMULATOR_PUBLIC", "0").lower() in ("1", "true", "yes", "on"),
            intents_dir=_existing_dir("BOT_INTENTS_DIR", get("BOT_INTENTS_DIR", "")),
            knowledge_dir=_existing_dir("BOT_KNOWLEDGE_DIR", get("BOT_KNOWLEDGE_DIR", "")),
            takeover_idle=number("BOT_TAKEOVER_IDLE", cls.takeover_idle, 0.05, 24 * 60),
            console_secure_cookie=_flag("BOT_CONSOLE_SECURE_COOKIE", get("BOT_CONSOLE_SECURE_COOKIE", "1")),
            log_format=_choice("BOT_LOG_FORMAT", get("BOT_LOG_FORMAT", "text").lower(), ("text", "json")),
            workers=int(number("BOT_WORKERS", cls.workers, 1, 64, integer=True)),
            shutdown_timeout=number("BOT_SHUTDOWN_TIMEOUT", cls.shutdown_timeout, 0.1, 600),
            resident_rate=int(number("BOT_RESIDENT_RATE", cls.resident_rate, 0, 100000, integer=True)),
            outbox_rate=int(number("BOT_OUTBOX_RATE", cls.outbox_rate, 1, 100000, integer=True)),
        )


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _flag(name: str, value: str) -> bool:
    value = value.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 0 or 1 (or true/false), got {value!r}")


def _check_template_id(name: str, value: str) -> str:
    value = value.strip()
    if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", value):
        raise ConfigError(f"{name} must be a template id (letters, digits, '-' and '_') or empty")
    return value
