"""WeChat's errors, for every module of ``bot/wechat`` (the API client, the token stores, the media
store, the outbox worker): :class:`WeChatAPIError` (WeChat answered with an ``errcode``) and
:class:`WeChatUnavailable` (network error, timeout, HTTP 5xx, "system busy"), under
:class:`WeChatError`. It imports nothing of the package, so no module here depends on another for
its errors (the token stores used to import them from the client, which imports the stores)."""

from __future__ import annotations

import re

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
WINDOW_CLOSED = 45015
QUOTA_ERRORS = frozenset({45047, 45009})
SYSTEM_BUSY = -1

_SECRET_QUERY = re.compile(r"(access_token|secret)=[^&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide ``access_token=…`` and ``secret=…`` values in a URL or message."""
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", text)


class WeChatError(Exception):
    """Base class of everything this client raises."""


class WeChatAPIError(WeChatError):
    """WeChat answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        self.errcode = errcode
        self.errmsg = redact(errmsg)
        super().__init__(f"WeChat error {errcode}: {self.errmsg}")

    @property
    def is_token_error(self) -> bool:
        """The access token is invalid or expired: refresh it and retry."""
        return self.errcode in TOKEN_ERRORS

    @property
    def is_window_closed(self) -> bool:
        """45015: the resident has not written within 48 hours; customer messages are refused."""
        return self.errcode == WINDOW_CLOSED

    @property
    def is_quota(self) -> bool:
        """45047 (too many messages to this resident) / 45009 (daily API quota): try again later."""
        return self.errcode in QUOTA_ERRORS


class WeChatUnavailable(WeChatError):
    """WeChat could not be reached or failed on its side (network, timeout, 5xx, system busy)."""


class MediaTooLarge(WeChatError):
    """A media download exceeded the size limit."""
