"""Queueing messages to a resident outside a passive reply (status pushes, reminders, deferred
answers). Rows go into the ``outbox`` table in the caller's transaction; the WeChat outbox worker
(``bot/wechat/outbox.py``) sends them, so services never talk to WeChat themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.messages import Out
from bot.storage.models import OutboxMessage


async def enqueue(
    session: AsyncSession,
    openid: str,
    outs: Sequence[Out],
    dedup_key: str | None = None,
    *,
    not_before: datetime,
    template: tuple[str, Mapping[str, str]] | None = None,
) -> list[OutboxMessage]:
    """Queue ``outs`` for ``openid`` in the caller's transaction (see :func:`enqueue_sync`)."""
    return await session.run_sync(
        lambda sync: enqueue_sync(sync, openid, outs, dedup_key, not_before=not_before, template=template)
    )


def enqueue_sync(
    session: Session,
    openid: str,
    outs: Sequence[Out],
    dedup_key: str | None = None,
    *,
    not_before: datetime,
    template: tuple[str, Mapping[str, str]] | None = None,
    make: Mapping[str, str] | None = None,
) -> list[OutboxMessage]:
    """Queue ``outs`` for ``openid`` in the caller's transaction, due from ``not_before`` (the
    service clock's now, as a rule: the worker compares it with that clock).

    With ``dedup_key`` each message gets the key ``{dedup_key}#{i}`` and is queued at most once,
    however often this is called. ``template`` = (name, fields), e.g. ``("ticket", {"number": …})``:
    when WeChat refuses the message because the resident's 48-hour window has closed and a template
    of that name is configured (``BOT_WECHAT_TEMPLATE_TICKET``), the worker sends a template
    notification with these fields instead. ``make``: the image the worker makes and uploads as
    WeChat media when it sends the message (``{"qr": text, "filename": name}``: a QR code of
    ``text``), for an image ``Out`` without a media_id — the upload stays off the reply's path.
    """
    rows: list[OutboxMessage] = []
    for i, out in enumerate(outs):
        key = f"{dedup_key}#{i}" if dedup_key else None
        if key is not None:
            existing = session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == key))
            if existing is not None:
                continue
        payload: dict[str, Any] = out.to_custom_payload(openid)
        if template is not None:
            name, fields = template
            payload["fallback"] = {"kind": "template", "template": name, "fields": dict(fields)}
        if make is not None:
            payload["make"] = dict(make)
        row = OutboxMessage(
            openid=openid,
            payload=payload,
            dedup_key=key,
            status="pending",
            next_attempt_at=not_before,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows
