"""Outbox: customer-service messages are written here in the caller's transaction, then sent.

:func:`bot.services.notify.enqueue` queues messages (re-exported here); :class:`OutboxWorker` sends them. Any number of worker processes
may run: a row is claimed with a conditional UPDATE (``pending`` and due, or ``sending`` with an
expired claim) that bumps ``attempts``, and ``attempts`` then fences the final UPDATE, so a worker
whose claim was taken over cannot overwrite the newer outcome. Messages to one resident go out in
order: a row is only claimed when no earlier row for the same openid is still pending or sending.
A round looks the due rows up (a read: an idle round writes nothing), claims them at once (one
transaction), sends them concurrently (at most one per resident) and records each outcome as soon
as it is known; a row whose claim ran out while the worker waited for the send quota is left to
whichever worker claims it next.

The worker shares its process with the replies, so it is paced not to stall them: the sends of a
round start one per turn of the event loop (each begins with work of its own on the loop's thread:
a QR image made, about 1-2.5 ms, the request to WeChat built), not all in one turn, where forty of
them held every request under way for 40-100 ms at once; and the outcomes known at about the same
time are recorded in one transaction (a group commit of their own, ``storage/groupcommit.py``),
each still fenced by its claim, instead of a transaction each taking the write lock between the
replies' batched commits (on the realistic mix, 400 outcomes took about 140 transactions). On
PostgreSQL such a batch is one statement in autocommit (the fenced updates and the sent messages'
log rows from arrays): one round trip, where each outcome took two (its update, its log row)
inside a BEGIN and COMMIT.

Outcomes: sent → ``sent`` (+ an outbound ``Message`` row); WeChat unavailable, quota (45047/45009)
or a token error → back to ``pending`` with exponential backoff; 45015 (48-hour window closed) →
``expired``, kept and not retried; other WeChat errors, or too many attempts → ``failed``.

Template fallback: a row queued with ``template=(name, fields)`` (ticket updates) that WeChat refuses
with 45015 is sent, within the same claim, as a template message when that template is configured
(``BOT_WECHAT_TEMPLATE_TICKET``); the row's payload becomes the template payload (kind ``template``,
the original text kept). A refused template (e.g. 43101, the resident declined) → ``expired``, so
the text is still shown on the resident's next message; quota/unavailable → retried as a template.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from bot import qrcodes
from bot.clock import Clock
from bot.logmask import mask_openid
from bot.services.notify import enqueue
from bot.storage.db import Database, json_dumps
from bot.storage.groupcommit import GroupCommit
from bot.storage.models import JSONType, Message, OutboxMessage, Resident, UTCDateTime
from bot.wechat.errors import WeChatAPIError, WeChatUnavailable

__all__ = ["CustomSender", "OutboxWorker", "enqueue"]

log = logging.getLogger(__name__)


class CustomSender(Protocol):
    """What the worker needs from :class:`bot.wechat.api.WeChatAPI`."""

    async def send_custom(self, payload: dict[str, Any]) -> None: ...

    async def send_template(self, payload: dict[str, Any]) -> int | None: ...

    async def upload_media(self, kind: str, content: bytes, filename: str, content_type: str) -> str: ...


INTERNAL_KEYS = frozenset({"fallback", "kind", "make"})  # ours, never sent to WeChat


def _made(payload: dict[str, Any]) -> tuple[bytes, str] | None:
    """The image a queued message asks the worker to make (``make``, see ``notify.enqueue_sync``)."""
    make = payload.get("make")
    if not isinstance(make, dict) or "qr" not in make:
        return None
    return qrcodes.png(str(make["qr"])), str(make.get("filename") or "qr.png")


def _custom_body(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in INTERNAL_KEYS}


def _template_body(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: payload[k] for k in ("touser", "template_id", "url", "data") if k in payload}


def _now() -> Any:
    return bindparam("p_now", type_=UTCDateTime())


def _due() -> Any:
    return or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= _now()),
        and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until < _now()),
    )


# The worker's statements, built once and executed with parameters (SQLAlchemy reuses their cache
# key and compiled form), each transaction one hop to the database's synchronous connection.
_EARLIER = aliased(OutboxMessage)
_CANDIDATES = (
    select(OutboxMessage.id)
    .where(
        _due(),
        ~exists().where(
            _EARLIER.openid == OutboxMessage.openid,
            _EARLIER.id < OutboxMessage.id,
            _EARLIER.status.in_(("pending", "sending")),
        ),
    )
    .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
    .limit(bindparam("p_limit", type_=Integer()))
)  # due rows, each the earliest of its resident's unsent ones (messages to one resident in order)
_CLAIM = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(bindparam("p_ids", expanding=True)), _due())
    .values(
        status="sending",
        claimed_until=bindparam("p_until", type_=UTCDateTime()),
        attempts=OutboxMessage.attempts + 1,
    )
    .returning(OutboxMessage.id, OutboxMessage.openid, OutboxMessage.payload, OutboxMessage.attempts)
)
_RECORD = insert(Message).from_select(
    ["resident_id", "direction", "msg_type", "content", "payload", "via", "created_at"],
    select(
        Resident.id,
        bindparam("p_direction", type_=String()),
        bindparam("p_type", type_=String()),
        bindparam("p_content", type_=Text()),
        bindparam("p_payload", type_=JSONType()),
        bindparam("p_via", type_=String()),
        _now(),
    ).where(Resident.openid == bindparam("p_openid", type_=String())),
)  # the sent message in the resident's log (nothing for an openid that is no resident)
_OUTCOME_TYPES: dict[str, Any] = {"payload": JSONType(), "sent_at": UTCDateTime(), "next_attempt_at": UTCDateTime()}


@functools.cache
def _finish_statement(keys: tuple[str, ...]) -> Any:
    """The fenced outcome update setting ``keys`` (and clearing the claim)."""
    return (
        update(OutboxMessage)
        .where(
            OutboxMessage.id == bindparam("p_id"),
            OutboxMessage.status == "sending",
            OutboxMessage.attempts == bindparam("p_attempts"),
        )
        .values(claimed_until=None, **{k: bindparam(f"v_{k}", type_=_OUTCOME_TYPES.get(k)) for k in keys})
    )


def _logged(payload: dict[str, Any]) -> tuple[str, str | None]:
    """A sent message's type and text, as the resident's log keeps them."""
    msg_type = str(payload.get("msgtype") or "text")
    body = payload.get("text")
    content = body.get("content") if isinstance(body, dict) and msg_type in ("text", "template") else None
    return msg_type, content if isinstance(content, str) else None


def _pg_array(name: str, column: Any) -> Any:
    return bindparam(name, type_=ARRAY(column.type))


def _pg_finish_from_arrays() -> Any:
    """PostgreSQL: a batch's outcomes in one statement from arrays (one SQL text whatever the
    batch, one round trip): each row's fenced update (``o``: its id, the attempt that claimed it,
    the new status and error, and the sent time, next attempt and payload where set, NULL
    keeping the column), and for the rows sent whose claim still stood, the message in the
    resident's log (``m``), in the batch's order; returns the ids updated. Two statements per
    outcome before (the update, then the log row), each a round trip."""
    table = cast(Table, OutboxMessage.__table__)
    messages = cast(Table, Message.__table__)
    residents = cast(Table, Resident.__table__)
    outcomes = (
        func.unnest(
            _pg_array("o_ids", table.c.id),
            _pg_array("o_attempts", table.c.attempts),
            _pg_array("o_statuses", table.c.status),
            _pg_array("o_errors", table.c.last_error),
            _pg_array("o_sent_ats", table.c.sent_at),
            _pg_array("o_next_ats", table.c.next_attempt_at),
            bindparam("o_payloads", type_=ARRAY(Text)),  # JSON texts (NULL: the payload kept)
            bindparam("o_set_errors", type_=ARRAY(Boolean)),
        )
        .table_valued("id", "attempts", "status", "error", "sent_at", "next_at", "payload", "set_error")
        .render_derived(name="o")
    )
    done = (
        update(table)
        .where(table.c.id == outcomes.c.id, table.c.status == "sending", table.c.attempts == outcomes.c.attempts)
        .values(
            status=outcomes.c.status,
            claimed_until=None,
            last_error=case((outcomes.c.set_error, outcomes.c.error), else_=table.c.last_error),
            sent_at=func.coalesce(outcomes.c.sent_at, table.c.sent_at),
            next_attempt_at=func.coalesce(outcomes.c.next_at, table.c.next_attempt_at),
            payload=func.coalesce(sql_cast(outcomes.c.payload, table.c.payload.type), table.c.payload),
        )
        .returning(table.c.id, table.c.openid)
        .cte("done")
    )
    logs = (
        func.unnest(
            _pg_array("m_ids", table.c.id),
            _pg_array("m_types", messages.c.msg_type),
            _pg_array("m_contents", messages.c.content),
            bindparam("m_payloads", type_=ARRAY(Text)),
            _pg_array("m_ats", messages.c.created_at),
        )
        .table_valued("id", "type", "content", "payload", "at", with_ordinality="n")
        .render_derived(name="m")
    )
    logged = (
        insert(messages)
        .from_select(
            ["resident_id", "direction", "msg_type", "content", "payload", "via", "created_at"],
            select(
                residents.c.id,
                literal("out", String()),
                logs.c.type,
                logs.c.content,
                sql_cast(logs.c.payload, messages.c.payload.type),
                literal("custom", String()),
                logs.c.at,
            )
            .select_from(logs)
            .join(done, done.c.id == logs.c.id)
            .join(residents, residents.c.openid == done.c.openid)
            .order_by(logs.c.n),
        )
        .cte("logged")
    )
    return select(done.c.id).add_cte(logged)


_PG_FINISH = _pg_finish_from_arrays()
_PG_KEYS = frozenset({"status", "last_error", "sent_at", "next_attempt_at", "payload"})


class OutboxWorker:
    """Sends due outbox rows through ``api.send_custom``; safe to run in several processes at once."""

    def __init__(
        self,
        db: Database,
        api: CustomSender,
        clock: Clock | None = None,
        *,
        interval: float | None = None,
        batch_size: int = 50,
        max_attempts: int = 10,
        claim_ttl: timedelta = timedelta(seconds=60),
        base_backoff: timedelta = timedelta(seconds=2),
        max_backoff: timedelta = timedelta(minutes=15),
    ) -> None:
        self.db = db
        self.api = api
        self.clock = clock or Clock()
        settings = getattr(api, "settings", None)
        self.interval = interval if interval is not None else float(getattr(settings, "outbox_interval", 1.0))
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.claim_ttl = claim_ttl
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        # WeChat's quota on customer-service messages, all processes together (wechat/fairness.py).
        self.limiter: Any = None
        # Outcomes known at about the same time share one transaction (each still fenced).
        # On PostgreSQL they are one statement (``_PG_FINISH``), run in autocommit: no BEGIN and
        # COMMIT round trips around it.
        pg = db.dialect == "postgresql"
        self._outcomes: GroupCommit[tuple[OutboxMessage, dict[str, Any], datetime], str] = GroupCommit(
            db, self._finish_all, run=db.run_sync_autocommit if pg else None
        )
        self._pg = pg

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next try after ``attempts`` failed ones: base · 2^(attempts-1), capped."""
        delay = self.base_backoff * (2 ** max(0, min(attempts - 1, 30)))
        return min(delay, self.max_backoff)

    def _claim_in(self, connection: Connection, ids: list[int], now: datetime) -> list[OutboxMessage]:
        """Claim the rows ``ids`` that are still due (conditional UPDATE: a row another worker claimed
        first is not due any more) and return them in that order, ``attempts`` bumped (the fence of
        their outcome)."""
        until = now + self.claim_ttl
        claimed = connection.execute(_CLAIM, {"p_ids": ids, "p_now": now, "p_until": until}).all()
        rows = [OutboxMessage(id=i, openid=o, payload=p, attempts=a, claimed_until=until) for i, o, p, a in claimed]
        return sorted(rows, key=lambda row: ids.index(row.id))

    async def _claim(self, now: datetime, limit: int) -> list[OutboxMessage]:
        """Up to ``limit`` due rows, claimed. The look-up is a read (no write lock): a round that
        finds nothing, as most do, writes nothing."""
        ids: list[int] = await self.db.run_sync_read(
            lambda connection: list(connection.execute(_CANDIDATES, {"p_now": now, "p_limit": limit}).scalars())
        )
        if not ids:
            return []
        return await self.db.run_sync_transaction(lambda connection: self._claim_in(connection, ids, now))

    async def _finish(self, row: OutboxMessage, values: dict[str, Any], now: datetime) -> str:
        """Apply the outcome if our claim still stands (fenced by ``attempts``); returns the status.
        Recorded with the other outcomes known meanwhile, in one transaction (a failing batch is
        applied again outcome by outcome, so one bad outcome fails alone)."""
        return await self._outcomes.submit((row, values, now))

    def _finish_all(
        self, connection: Connection, outcomes: Sequence[tuple[OutboxMessage, dict[str, Any], datetime]]
    ) -> list[str]:
        if self._pg:
            return self._finish_from_arrays(connection, outcomes)
        return [self._finish_in(connection, row, values, now) for row, values, now in outcomes]

    def _finish_from_arrays(
        self, connection: Connection, outcomes: Sequence[tuple[OutboxMessage, dict[str, Any], datetime]]
    ) -> list[str]:
        """PostgreSQL: the outcomes in one statement (``_PG_FINISH``), each still fenced by its claim."""
        params: dict[str, list[Any]] = {
            k: [] for k in ("o_ids", "o_attempts", "o_statuses", "o_errors", "o_sent_ats", "o_next_ats", "o_payloads", "o_set_errors")
        }
        logs: dict[str, list[Any]] = {"m_ids": [], "m_types": [], "m_contents": [], "m_payloads": [], "m_ats": []}
        for row, values, now in outcomes:
            if not values.keys() <= _PG_KEYS or "status" not in values:
                raise ValueError(f"outbox outcome with unexpected fields: {sorted(values)}")
            payload = values.get("payload")
            params["o_ids"].append(row.id)
            params["o_attempts"].append(row.attempts)
            params["o_statuses"].append(str(values["status"]))
            params["o_errors"].append(values.get("last_error"))
            params["o_set_errors"].append("last_error" in values)
            params["o_sent_ats"].append(values.get("sent_at"))
            params["o_next_ats"].append(values.get("next_attempt_at"))
            params["o_payloads"].append(None if payload is None else json_dumps(payload))
            if values["status"] == "sent":
                msg_type, content = _logged(payload or row.payload or {})
                logs["m_ids"].append(row.id)
                logs["m_types"].append(msg_type)
                logs["m_contents"].append(content)
                logs["m_payloads"].append(json_dumps(payload or row.payload or {}))
                logs["m_ats"].append(now)
        updated: set[int] = set(connection.execute(_PG_FINISH, {**params, **logs}).scalars())
        statuses = []
        for row, values, _ in outcomes:
            if row.id in updated:
                statuses.append(str(values["status"]))
            else:
                log.warning("outbox %s: claim was taken over before the outcome was recorded", row.id)
                statuses.append("")
        return statuses

    def _finish_in(self, connection: Connection, row: OutboxMessage, values: dict[str, Any], now: datetime) -> str:
        keys = tuple(sorted(values))
        params = {"p_id": row.id, "p_attempts": row.attempts, **{f"v_{k}": values[k] for k in keys}}
        result: Any = connection.execute(_finish_statement(keys), params)
        if result.rowcount != 1:
            log.warning("outbox %s: claim was taken over before the outcome was recorded", row.id)
            return ""
        status = str(values["status"])
        if status == "sent":
            self._record_message(connection, row, now, values.get("payload") or row.payload or {})
        return status

    def _record_message(self, connection: Connection, row: OutboxMessage, now: datetime, payload: dict[str, Any]) -> None:
        msg_type, content = _logged(payload)
        connection.execute(
            _RECORD,
            {
                "p_direction": "out", "p_type": msg_type, "p_content": content,
                "p_payload": payload, "p_via": "custom", "p_now": now, "p_openid": row.openid,
            },
        )  # fmt: skip

    def _template_payload(self, row: OutboxMessage, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The template message to send instead of ``payload``, if it has one and it is configured."""
        fallback = payload.get("fallback")
        if not isinstance(fallback, dict) or fallback.get("kind") != "template":
            return None
        settings = getattr(self.api, "settings", None)
        template_id = str(getattr(settings, f"wechat_template_{fallback.get('template')}", "") or "")
        fields = fallback.get("fields")
        if not template_id or not isinstance(fields, dict):
            return None
        template: dict[str, Any] = {
            "kind": "template",
            "msgtype": "template",
            "touser": row.openid,
            "template_id": template_id,
            "data": {str(k): {"value": str(v)} for k, v in fields.items()},
        }
        if "text" in payload:
            template["text"] = payload["text"]  # shown on the next message if the template fails too
        return template

    async def _send(self, row: OutboxMessage, replacement: dict[str, Any] | None = None) -> str:
        """Send one claimed row; returns its new status (``""`` if the claim was lost meanwhile).

        ``replacement``: the template payload that replaces the row's (stored with the outcome)."""
        who = mask_openid(row.openid)
        payload = replacement if replacement is not None else (row.payload or {})
        extra: dict[str, Any] = {} if replacement is None else {"payload": replacement}
        is_template = payload.get("kind") == "template"
        if self.limiter is not None:
            await self.limiter.wait()
            if row.claimed_until is not None and self.clock.now() >= row.claimed_until:
                log.info("outbox %s to %s: claim expired while waiting for the send quota", row.id, who)
                return ""  # due again: sent by whichever worker claims it next
        try:
            if is_template:
                await self.api.send_template(_template_body(payload))
            else:
                image = _made(payload)
                if image is not None:  # made and uploaded now, off the reply's path; stored once uploaded
                    media_id = await self.api.upload_media("image", image[0], image[1], "image/png")
                    payload = {k: v for k, v in payload.items() if k != "make"}
                    payload["image"] = {"media_id": media_id}
                    extra = {"payload": payload}
                await self.api.send_custom(_custom_body(payload))
        except WeChatAPIError as exc:
            now = self.clock.now()
            error = f"{exc.errcode}: {exc.errmsg}"
            if exc.is_quota or exc.is_token_error:
                return await self._retry(row, error, now, extra)
            if is_template:
                log.info("outbox %s to %s: template refused (%s), kept for the next message", row.id, who, error)
                return await self._finish(row, {"status": "expired", "last_error": error, **extra}, now)
            if exc.is_window_closed:
                template = self._template_payload(row, payload)
                if template is not None:
                    log.info("outbox %s to %s: outside the 48-hour window, sending a template", row.id, who)
                    return await self._send(row, template)
                log.info("outbox %s to %s expired: outside the 48-hour window", row.id, who)
                return await self._finish(row, {"status": "expired", "last_error": error}, now)
            log.warning("outbox %s to %s failed: %s", row.id, who, error)
            return await self._finish(row, {"status": "failed", "last_error": error, **extra}, now)
        except WeChatUnavailable as exc:
            return await self._retry(row, f"unavailable: {exc}", self.clock.now(), extra)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not stop the worker; the row is retried
            log.exception("outbox %s to %s: unexpected error", row.id, who)
            return await self._retry(row, f"{type(exc).__name__}: {exc}", self.clock.now(), extra)
        now = self.clock.now()
        return await self._finish(row, {"status": "sent", "sent_at": now, "last_error": None, **extra}, now)

    async def _retry(
        self, row: OutboxMessage, error: str, now: datetime, extra: dict[str, Any] | None = None
    ) -> str:
        if row.attempts >= self.max_attempts:
            log.warning(
                "outbox %s to %s failed after %s attempts: %s",
                row.id,
                mask_openid(row.openid),
                row.attempts,
                error,
            )
            return await self._finish(row, {"status": "failed", "last_error": error, **(extra or {})}, now)
        delay = self.backoff(row.attempts)
        log.info(
            "outbox %s to %s: retry in %ss (%s)",
            row.id,
            mask_openid(row.openid),
            int(delay.total_seconds()),
            error,
        )
        return await self._finish(
            row,
            {"status": "pending", "next_attempt_at": now + delay, "last_error": error, **(extra or {})},
            now,
        )

    async def run_once(self) -> int:
        """Send what is due now; returns the number of messages sent.

        Each round claims the due rows in one transaction and sends them concurrently (at most one
        per resident: a resident's later rows wait for the earlier ones' outcome, so they go out in
        order), each outcome recorded as soon as it is known."""
        sent = 0
        claims = 0
        while claims < self.batch_size:
            rows = await self._claim(self.clock.now(), self.batch_size - claims)
            if not rows:
                break
            claims += len(rows)
            sends: list[asyncio.Future[str]] = []
            try:
                for row in rows:
                    sends.append(asyncio.ensure_future(self._send(row)))
                    # One send starts per turn of the loop: its first step (a QR image made, the
                    # request built) runs between the replies' work, not with every other send's.
                    await asyncio.sleep(0)
                statuses = await asyncio.gather(*sends)
            except asyncio.CancelledError:  # shutdown: as gather would, no send is left running alone
                for send in sends:
                    send.cancel()
                raise
            sent += sum(status == "sent" for status in statuses)
            # A final outcome unblocks the resident's next message; a retry keeps it waiting.
            if not any(status in ("sent", "failed", "expired") for status in statuses):
                break  # only retries this round: the rest waits for its backoff
        return sent

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Call :meth:`run_once` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox worker round failed; continuing")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass
