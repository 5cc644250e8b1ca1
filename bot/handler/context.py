"""The context a handler receives: the message, the resident, the state, what was understood."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.handler.state import FSM
from bot.messages import Inbound
from bot.storage.models import Resident

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bot.runtime import Runtime

# A small write that goes with the reply: run in the transaction that stores it (``journal``).
ReplyWrite = Callable[["Connection"], None]


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
    # A flow's small writes that need nothing back before the reply (a knowledge question logged,
    # feedback): applied, in order, in the transaction that stores the reply and the state, before
    # the state is taken (a write may still fill it in) — so they are written exactly when the reply
    # is, and cost no transaction of their own. Add them with :meth:`with_reply`.
    reply_writes: list[ReplyWrite] = field(default_factory=list)

    def with_reply(self, write: ReplyWrite) -> None:
        """Write ``write(connection)`` in the reply's transaction (see ``reply_writes``)."""
        self.reply_writes.append(write)

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
