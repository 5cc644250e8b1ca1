"""Human takeover of a resident's conversation (the staff console's work on ``handoff_requests``).

One staff member holds a conversation at a time (``conversation_claims``, keyed by resident).
Claiming sets ``residents.takeover_by``, which the ``takeover`` middleware reads with every
message, in every process: the bot stays silent while the conversation is held (messages are still
deduplicated and logged). A reply goes to the outbox (the customer-service API) unless WeChat would
refuse it: the resident's last message is older than 48 hours. Releasing (or the idle job) gives
the conversation back to the bot and closes the resident's open handoff request.

Every claim and every staff reply is also kept in ``takeover_events`` (claims are deleted on
release): the dashboard counts such a conversation as one that needed a person, whether or not the
resident asked for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError

from bot.messages import Out
from bot.runtime import Runtime
from bot.services.handoff import OPEN
from bot.services.notify import enqueue
from bot.storage.dashboard_models import TakeoverEvent
from bot.storage.db import Database
from bot.storage.models import (
    CannedReply,
    ConversationClaim,
    ConversationNote,
    HandoffRequest,
    Resident,
    UTCDateTime,
)

WINDOW = timedelta(hours=48)  # WeChat accepts customer-service messages this long after the resident's last message
MAX_REPLY = 600
MAX_NOTE = 2000
TEXTS = {
    "idle": "工作人员暂时离开了，接下来由智能助手为您服务。需要人工时请再回复“转人工”。",
}


class TakeoverError(Exception):
    """A refused takeover action; ``message`` is Chinese, for the console."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Window:
    open: bool
    closes_at: datetime | None  # None: the resident never wrote
    unsubscribed: bool = False  # the resident unfollowed: WeChat delivers nothing (43004)

    def reason(self) -> str:
        if self.unsubscribed:
            return "居民已取消关注公众号，微信不会送达客服消息。居民重新关注后才能回复。"
        if self.closes_at is None:
            return "居民还没有给公众号发过消息，微信不允许主动发送客服消息。"
        return (
            "居民最后一条消息已超过48小时，微信会拒绝客服消息。请等居民再次发消息，"
            "或通过工单进展通知（模板消息）联系。"
        )


def window(resident: Resident, now: datetime) -> Window:
    last = resident.last_inbound_at
    if resident.subscribed is False:  # the unfollow event itself is the last message
        return Window(False, None if last is None else last + WINDOW, unsubscribed=True)
    if last is None:
        return Window(False, None)
    return Window(now < last + WINDOW, last + WINDOW)


async def holder(db: Database, resident_id: int) -> ConversationClaim | None:
    async with db.session() as session:
        return await session.get(ConversationClaim, resident_id)


async def claim(db: Database, resident_id: int, user: str, now: datetime) -> None:
    """``user`` holds the conversation from now on (again, if they held it already)."""
    try:
        async with db.transaction() as session:
            resident = await session.get(Resident, resident_id)
            if resident is None:
                raise TakeoverError("not_found", "没有这位居民。")
            current = await session.get(ConversationClaim, resident_id, with_for_update=True)
            if current is not None and current.user_name != user:
                raise TakeoverError("held", f"该会话已由 {current.user_name} 接管。")
            if current is None:
                session.add(ConversationClaim(resident_id=resident_id, user_name=user, claimed_at=now,
                                              last_activity_at=now))
            else:
                current.last_activity_at = now
            session.add(TakeoverEvent(resident_id=resident_id, user_name=user, action="claim", at=now))
            await session.execute(update(Resident).where(Resident.id == resident_id).values(takeover_by=user))
            await session.execute(
                update(HandoffRequest)
                .where(HandoffRequest.resident_id == resident_id, HandoffRequest.status.in_(OPEN))
                .values(status="claimed", claimed_by=user, updated_at=now,
                        claimed_at=func.coalesce(HandoffRequest.claimed_at, literal(now, UTCDateTime())))
            )
    except IntegrityError:  # claimed concurrently by someone else
        raise TakeoverError("held", "该会话刚刚被其他工作人员接管。") from None


async def release(
    db: Database, resident_id: int, user: str | None, now: datetime, *, tell: str | None = None
) -> bool:
    """Give the conversation back to the bot (``user`` None: whoever holds it — a supervisor or
    the idle job); closes the open handoff request. ``tell`` is sent to the resident."""
    async with db.transaction() as session:
        current = await session.get(ConversationClaim, resident_id, with_for_update=True)
        if current is None:
            return False
        if user is not None and current.user_name != user:
            raise TakeoverError("held", f"该会话由 {current.user_name} 接管，只有本人或主管可以结束。")
        await session.execute(delete(ConversationClaim).where(ConversationClaim.resident_id == resident_id))
        await session.execute(update(Resident).where(Resident.id == resident_id).values(takeover_by=None))
        await session.execute(
            update(HandoffRequest)
            .where(HandoffRequest.resident_id == resident_id, HandoffRequest.status.in_(OPEN))
            .values(status="closed", closed_at=now, updated_at=now)
        )
        if tell:
            openid = await session.scalar(select(Resident.openid).where(Resident.id == resident_id))
            if openid:
                await enqueue(session, openid, [Out.text(tell)], not_before=now)
    return True


async def reply(db: Database, resident_id: int, user: str, text: str, now: datetime) -> None:
    """Send ``text`` to the resident as a customer-service message; the holder only, inside the window."""
    text = (text or "").strip()
    if not text:
        raise TakeoverError("empty", "请输入回复内容。")
    if len(text) > MAX_REPLY:
        raise TakeoverError("too_long", f"回复最多{MAX_REPLY}字，请分成几条发送。")
    async with db.transaction() as session:
        current = await session.get(ConversationClaim, resident_id, with_for_update=True)
        if current is None or current.user_name != user:
            raise TakeoverError("not_held", "请先接管这个会话再回复。")
        resident = await session.get(Resident, resident_id)
        assert resident is not None
        win = window(resident, now)
        if not win.open:
            raise TakeoverError("window_closed", win.reason())
        current.last_activity_at = now
        session.add(TakeoverEvent(resident_id=resident_id, user_name=user, action="reply", at=now))
        await enqueue(session, resident.openid, [Out.text(text)], not_before=now)


async def release_idle(db: Database, now: datetime, idle: timedelta) -> int:
    """Release takeovers with no staff reply and no resident message for ``idle``; the resident is told."""
    cutoff = now - idle
    async with db.session() as session:
        rows = (await session.execute(
            select(ConversationClaim.resident_id, ConversationClaim.last_activity_at, Resident.last_inbound_at)
            .join(Resident, Resident.id == ConversationClaim.resident_id)
            .where(ConversationClaim.last_activity_at < cutoff)
        )).all()
    done = 0
    for resident_id, activity, inbound in rows:
        if inbound is not None and inbound >= cutoff:
            continue
        async with db.transaction() as session:
            # The conditional DELETE is the claim on the release: one process tells the resident.
            gone = await session.execute(
                delete(ConversationClaim).where(ConversationClaim.resident_id == resident_id,
                                                ConversationClaim.last_activity_at == activity)
            )
            if not gone.rowcount:  # type: ignore[attr-defined]
                continue
        await _finish_release(db, resident_id, now, TEXTS["idle"])
        done += 1
    return done


async def _finish_release(db: Database, resident_id: int, now: datetime, tell: str) -> None:
    async with db.transaction() as session:
        await session.execute(update(Resident).where(Resident.id == resident_id).values(takeover_by=None))
        await session.execute(
            update(HandoffRequest)
            .where(HandoffRequest.resident_id == resident_id, HandoffRequest.status.in_(OPEN))
            .values(status="closed", closed_at=now, updated_at=now)
        )
        openid = await session.scalar(select(Resident.openid).where(Resident.id == resident_id))
        if openid:
            await enqueue(session, openid, [Out.text(tell)], not_before=now)


async def release_idle_job(rt: Runtime, now: datetime) -> int:
    return await release_idle(rt.db, now, timedelta(minutes=rt.settings.takeover_idle))


# -- notes and canned replies -------------------------------------------------------------------


async def add_note(db: Database, resident_id: int, author: str, text: str, now: datetime) -> None:
    text = (text or "").strip()
    if not text:
        raise TakeoverError("empty", "备注不能为空。")
    if len(text) > MAX_NOTE:
        raise TakeoverError("too_long", f"备注最多{MAX_NOTE}字。")
    async with db.transaction() as session:
        if await session.get(Resident, resident_id) is None:
            raise TakeoverError("not_found", "没有这位居民。")
        session.add(ConversationNote(resident_id=resident_id, author=author, text=text, created_at=now))


async def notes(db: Database, resident_id: int) -> list[ConversationNote]:
    async with db.session() as session:
        return list((await session.scalars(
            select(ConversationNote).where(ConversationNote.resident_id == resident_id)
            .order_by(ConversationNote.id.desc()).limit(50)
        )).all())


DEFAULT_CANNED = (
    ("问候", "您好，我是社区工作人员，您的问题我来帮您处理。"),
    ("稍等", "收到，我马上帮您核实，请稍等几分钟。"),
    ("已登记", "您反映的情况已经登记，会有工作人员尽快上门处理，处理进展会通知您。"),
    ("结束", "还有其他需要帮忙的吗？没有的话我先结束人工服务，之后智能助手会继续为您服务。"),
)


async def canned(db: Database) -> list[CannedReply]:
    async with db.session() as session:
        rows = list((await session.scalars(select(CannedReply).order_by(CannedReply.id))).all())
    return rows


async def seed_canned(db: Database, now: datetime) -> None:
    """The default canned replies, once (when there are none)."""
    async with db.transaction() as session:
        if await session.scalar(select(CannedReply.id).limit(1)) is not None:
            return
        for title, text in DEFAULT_CANNED:
            session.add(CannedReply(title=title, text=text, updated_by="system", updated_at=now))


async def save_canned(
    db: Database, reply_id: int | None, title: str, text: str, user: str, now: datetime
) -> None:
    title, text = (title or "").strip(), (text or "").strip()
    if not title or len(title) > 64:
        raise TakeoverError("bad_title", "标题需要1到64个字。")
    if not text or len(text) > MAX_REPLY:
        raise TakeoverError("bad_text", f"内容需要1到{MAX_REPLY}个字。")
    async with db.transaction() as session:
        if reply_id is None:
            session.add(CannedReply(title=title, text=text, updated_by=user, updated_at=now))
            return
        row = await session.get(CannedReply, reply_id)
        if row is None:
            raise TakeoverError("not_found", "没有这条快捷回复。")
        row.title, row.text, row.updated_by, row.updated_at = title, text, user, now


async def delete_canned(db: Database, reply_id: int) -> None:
    async with db.transaction() as session:
        await session.execute(delete(CannedReply).where(CannedReply.id == reply_id))
