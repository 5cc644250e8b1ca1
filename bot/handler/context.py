"""The context a handler receives: the message, the resident, the state, what was understood."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.handler.state import FSM
from bot.messages import Inbound
from bot.storage.models import Resident

if TYPE_CHECKING:
    from bot.runtime import Runtime


@dataclass
class Context:
    inbound: Inbound
    rt: Runtime
    fsm: FSM
    resident: Resident | None = None
    intent: str | None = None
    confidence: float | None = None
    understanding: Any = None  # the intent engine's Classification, when it ran
    extra: dict[str, Any] = field(default_factory=dict)
    text_override: str | None = None  # the text being handled, when not the message's own
    # Written in the same transaction that stores the reply (one commit): message-log rows
    # (``journal.message_row``).
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    last_inbound_at: datetime | None = None  # the resident's 48-hour window, stored with the reply

    @property
    def openid(self) -> str:
        return self.inbound.openid

    @property
    def text(self) -> str:
        """The text being handled: typed text or recognised voice, trimmed (or a clarified original)."""
        return self.text_override if self.text_override is not None else self.inbound.text

    @property
    def decision(self) -> str | None:
        """The intent engine's decision for this text: accept, clarify or fallback."""
        if self.extra.get("clarified"):
            return "accept"
        return getattr(self.understanding, "decision", None)

    @property
    def state_name(self) -> str | None:
        return self.fsm.state

    @property
    def menu_key(self) -> str | None:
        """Key of a menu CLICK; for subscribe/SCAN the scene key without ``qrscene_``."""
        inbound = self.inbound
        if inbound.msg_type != "event" or not inbound.event_key:
            return None
        if inbound.event == "click":
            return inbound.event_key
        if inbound.event in ("subscribe", "scan"):
            return inbound.event_key.removeprefix("qrscene_")
        return None
