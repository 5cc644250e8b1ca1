"""The context a handler receives: the message, the resident, the state, what was understood."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.handler.state import FSM
from bot.messages import Inbound, Out
from bot.storage.models import Resident

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bot.runtime import Runtime

_FILL = "\ue000"  # around a placeholder of ``Context.reply_in``

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
    # Text of the reply that its transaction gives (a ticket's number): placeholder → text, filled
    # in by the writes of :meth:`reply_in`.
    fills: dict[str, str] = field(default_factory=dict)

    def with_reply(self, write: ReplyWrite) -> None:
        """Write ``write(connection)`` in the reply's transaction (see ``reply_writes``)."""
        self.reply_writes.append(write)

    def reply_in(self, write: Callable[[Connection], str]) -> str:
        """A placeholder for the text that ``write(connection)`` returns in the reply's transaction,
        to put in the handler's answer: the write runs like those of :meth:`with_reply` (in order,
        exactly when the reply is stored, or never) and what it returns replaces the placeholder.
        For work that decides what the reply says (a ticket and its number): it costs no
        transaction of its own, and what it made is stored with the answer that tells of it."""
        # Private-use characters around a random tag: no text of the reply can hold it by chance
        # (and they survive the reply's clean-up of characters XML cannot carry).
        token = f"{_FILL}{secrets.token_hex(6)}{_FILL}"
        self.fills[token] = ""

        def run(connection: Connection) -> None:
            self.fills[token] = write(connection)

        self.reply_writes.append(run)
        return token

    def filled(self, outs: list[Out]) -> list[Out]:
        """``outs`` with the placeholders of :meth:`reply_in` replaced by their writes' texts."""
        if not self.fills:
            return outs
        done = []
        for out in outs:
            content = out.content
            if _FILL in content:
                for token, text in self.fills.items():
                    content = content.replace(token, text)
                out = dataclasses.replace(out, content=content)
            done.append(out)
        return done

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
