"""SQLAlchemy models. The schema changes only through Alembic migrations (bot/storage/migrations)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# UTCDateTime on SQLite: the text of recently stored time objects, by id (with the object itself,
# so an id is not taken for another's while its entry lives). Emptied when full.
_FORMATTED: dict[int, tuple[datetime, str]] = {}
_FORMATTED_MAX = 512


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the text is written and parsed here in one step, in SQLAlchemy's storage format
    # ("2026-12-05 08:30:15.123456"): every message stores and reads several of these.

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], str | None] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            # A batch stores one time object in several columns and rows (a key's created_at and
            # updated_at, a reply's time and its log row's): formatted once (isoformat is most of
            # this function's cost). By identity: the object, kept in the entry, is not reused.
            known = _FORMATTED.get(id(value))
            if known is not None and known[0] is value:
                return known[1]
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            text = utc.isoformat(" ", "microseconds")[:-6]  # without "+00:00"
            if len(_FORMATTED) >= _FORMATTED_MAX:
                _FORMATTED.clear()
            _FORMATTED[id(value)] = (value, text)
            return text

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            try:
                parsed = datetime.fromisoformat(value + "+00:00")  # stored naive, in UTC
                if parsed.tzinfo is not None:
                    return parsed
            except (TypeError, ValueError):  # a datetime already, or text with an offset
                pass
            parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process


JSONType = JSON


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Resident(Base):
    """A person who wrote to the 公众号, known by openid."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    community: Mapped[str | None] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(64))
    scene: Mapped[str | None] = mapped_column(String(128))
    takeover_by: Mapped[str | None] = mapped_column(String(100))  # staff member handling the chat
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the resident's first ticket was made; None: they have never reported anything, so the
    # chat need not read their open tickets (follow-ups, the own-repeat check). Set with the
    # ticket, in its transaction (``services/tickets.py``; tickets added through the ORM too).
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the resident told us about themselves, e.g. {"audiences": {"60岁以上": "<confirmed at, ISO>"}}
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Message(Base):
    """Every inbound and outbound message, with its type and, when known, intent and confidence."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_resident_created", "resident_id", "created_at"),
        # The dashboard's counts of inbound messages by day, intent and resident (index-only scans).
        Index(
            "ix_messages_inbound",
            "created_at",
            "intent",
            "resident_id",
            sqlite_where=sql_text("direction = 'in'"),
            postgresql_where=sql_text("direction = 'in'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # "in" | "out"
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Not indexed (migration 0018): a search by intent reads ix_messages_created_at newest first, the
    # dashboard's counts ix_messages_inbound.
    intent: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    dedup_key: Mapped[str | None] = mapped_column(String(160))  # the inbound key (not indexed: see migration 0008)
    via: Mapped[str | None] = mapped_column(String(16))  # outbound: "passive" | "custom"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class InboundKey(Base):
    """Exactly-once record of an inbound message or event and the reply it got.

    ``status``: ``processing`` → ``replied`` (passive reply stored) or ``deferred`` (the request got
    ``success``; the reply goes out through the outbox) → ``done``. A key whose handler stopped
    beating (its process died) becomes ``recovering`` while another process redoes the message
    from ``inbound``, then ``done``; ``abandoned`` when it cannot be redone (the resident is asked
    to send again). ``updated_at`` is the handler's heartbeat while the key is pending.
    """

    __tablename__ = "inbound_keys"
    __table_args__ = (
        # The maintenance loop's query: pending keys whose heartbeat stopped. Partial, so the
        # finished majority costs nothing here.
        Index(
            "ix_inbound_keys_pending",
            "status",
            "updated_at",
            sqlite_where=sql_text("status IN ('processing', 'deferred', 'recovering')"),
            postgresql_where=sql_text("status IN ('processing', 'deferred', 'recovering')"),
        ),
    )

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="processing")
    reply: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    # The message itself (``Inbound.to_dict``) while it is pending, so that it can be redone.
    inbound: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")  # recoveries
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)  # not indexed: see migration 0018
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ConversationState(Base):
    """Per-resident dialogue state (the FSM): a state name and a small JSON payload."""

    __tablename__ = "conversation_states"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OutboxMessage(Base):
    """A customer-service message waiting to go out through WeChat's API, retried until it does."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_openid_status", "openid", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # pending | sending | sent | failed | expired (outside the 48-hour window) | shown (an expired
    # message shown in front of the resident's next passive reply)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WeChatNonce(Base):
    """A (timestamp, nonce) pair a signed ``/wechat`` request used, kept while its timestamp is
    within the freshness window: the same pair with another body is a replay (``bot/wechat/replay.py``)."""

    __tablename__ = "wechat_nonces"

    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the body (hex)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # Unix seconds: pruned after


class AccessToken(Base):
    """WeChat's access token, shared by every process; ``refreshing_until`` is the refresh lock."""

    __tablename__ = "wechat_access_tokens"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refreshing_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    """An API token for the JSON API: stored as a SHA-256 hash, shown once, revocable. A staff
    token's scope is a department (``department``, or its console user's, ``user_id``): it sees
    that department's tickets and those assigned to it, as the console shows staff."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(64))
    # Issued for a console user (console_users.id): their role, department and name (as assignee)
    # at every use; the token is refused once the user is disabled or gone. No foreign key: SQLite
    # cannot add one to an existing table in place (a copied api_tokens would lose merchant_accounts).
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReloadSignal(Base):
    """Operators' requests to reload language data; every process reloads when ``generation`` moves."""

    __tablename__ = "reload_signals"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # "intents" | "knowledge"
    generation: Mapped[int] = mapped_column(Integer, default=0)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KnowledgeQuery(Base):
    """A resident's question to the knowledge base, what it decided, and the resident's feedback."""

    __tablename__ = "knowledge_queries"
    __table_args__ = (Index("ix_knowledge_queries_decision_created", "decision", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(16))  # answer | choices | unknown
    entry_id: Mapped[str | None] = mapped_column(String(100), index=True)  # the entry answered (or chosen)
    score: Mapped[float | None] = mapped_column(Float)
    candidates: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    helpful: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# -- points, the points mall and community courses (issue 6) --------------------------------------


class PointsBalance(Base):
    """A resident's points balance: derived from the ledger, kept in the same transaction as every
    ledger entry by a conditional UPDATE, and never negative (CHECK)."""

    __tablename__ = "points_balances"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PointsEntry(Base):
    """One append-only ledger entry: + earned, − spent; the idempotency key makes earning happen once."""

    __tablename__ = "points_ledger"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_points_ledger_resident_created", "resident_id", "created_at"),
        Index("ix_points_ledger_dashboard", "created_at", "reason", "amount"),  # the dashboard (index-only)
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(
        String(32)
    )  # registration, activity, report, coupon, course, refund, adjust …
    ref_type: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    actor: Mapped[str | None] = mapped_column(String(100))  # staff member of a manual adjustment
    note: Mapped[str | None] = mapped_column(Text)
    # A staff adjustment's reason as the resident was told it (their 积分明细 shows it; the note never).
    reason_for_resident: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Merchant(Base):
    """A points-mall merchant."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    category: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MerchantAccount(Base):
    """An API token (role ``merchant``) that verifies one merchant's coupons."""

    __tablename__ = "merchant_accounts"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Coupon(Base):
    """A coupon residents can buy with points; ``stock`` never goes below zero (CHECK)."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("per_resident_limit >= 1", name="limit_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(16), index=True)  # 餐饮, 理发, 超市, 交通 …
    price: Mapped[int] = mapped_column(Integer)  # points
    stock: Mapped[int] = mapped_column(Integer)
    per_resident_limit: Mapped[int] = mapped_column(Integer, default=1)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    terms: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IssuedCoupon(Base):
    """A coupon a resident redeemed: a unique code, ``issued`` → ``used`` (once) or ``expired``."""

    __tablename__ = "issued_coupons"
    __table_args__ = (
        UniqueConstraint("coupon_id", "resident_id", "seq", name="uq_issued_coupons_holding"),
        Index("ix_issued_coupons_resident_status", "resident_id", "status"),
        Index("ix_issued_coupons_status_expires", "status", "expires_at"),
        Index("ix_issued_coupons_issued_at", "issued_at"),  # the dashboard's periods
        Index("ix_issued_coupons_used_at", "used_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="RESTRICT"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # 1.. per resident and coupon, at most the limit
    code: Mapped[str] = mapped_column(String(16), unique=True)
    request_key: Mapped[str] = mapped_column(String(100), unique=True)  # one redemption per request
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued | used | expired
    points: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by: Mapped[str | None] = mapped_column(String(100))  # merchant account (token name)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id", ondelete="SET NULL"))


class Activity(Base):
    """A community course or activity (群众夜校, 义诊, volunteer service …)."""

    __tablename__ = "activities"
    __table_args__ = (CheckConstraint("points_cost >= 0", name="cost_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="course")  # course | activity | volunteer
    category: Mapped[str] = mapped_column(String(32), index=True)  # 花艺, 中医, 书法, 乐器, 义诊 …
    organiser: Mapped[str | None] = mapped_column(String(100))
    place: Mapped[str | None] = mapped_column(String(200))
    audience: Mapped[str | None] = mapped_column(String(64))  # e.g. 60岁以上
    points_cost: Mapped[int] = mapped_column(Integer, default=0)
    reward_points: Mapped[int | None] = mapped_column(Integer)  # check-in points; None = the rule's default
    volunteer_hours: Mapped[float] = mapped_column(Float, default=0.0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ActivitySession(Base):
    """One dated session of an activity; ``booked`` never exceeds ``capacity`` (CHECK)."""

    __tablename__ = "activity_sessions"
    __table_args__ = (
        CheckConstraint("booked >= 0 AND booked <= capacity", name="within_capacity"),
        Index("ix_activity_sessions_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    booking_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    booking_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Booking(Base):
    """A resident's place (or place in the queue) in a session: one row per resident and session."""

    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("session_id", "resident_id", name="uq_bookings_session_resident"),
        Index("ix_bookings_session_status", "session_id", "status", "queued_at"),
        Index("ix_bookings_resident_status", "resident_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("activity_sessions.id", ondelete="CASCADE"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # booked | waitlisted | cancelled | attended
    points_paid: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every re-booking (ledger keys)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())  # waitlist order
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The inbound message key (or API request key) that made the current attempt: the same key
    # booking again finds this booking instead of "already booked".
    request_key: Mapped[str | None] = mapped_column(String(200))


class CheckIn(Base):
    """A resident checked in at an activity (scanned its QR code), once per activity and day."""

    __tablename__ = "check_ins"
    __table_args__ = (
        UniqueConstraint("activity_id", "resident_id", "day", name="uq_check_ins_once_a_day"),
        Index("ix_check_ins_work_unit", "work_unit"),
        Index("ix_check_ins_checked_in_at", "checked_in_at"),  # the dashboard's periods
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("activity_sessions.id", ondelete="SET NULL"))
    day: Mapped[str] = mapped_column(String(10))  # local date YYYY-MM-DD
    points: Mapped[int] = mapped_column(Integer, default=0)
    volunteer_hours: Mapped[float] = mapped_column(Float, default=0.0)
    work_unit: Mapped[str | None] = mapped_column(String(100))  # 在职党员's work unit (双报到)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartyMember(Base):
    """An in-service party member (在职党员) and the work unit they report to (双报到)."""

    __tablename__ = "party_members"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True)
    work_unit: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str | None] = mapped_column(String(50))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())


# ------------------------------------------------------------------------------------------ tickets
class TicketCounter(Base):
    """Per-day ticket numbers (``GD20261122-0042``): one row per local day, bumped atomically."""

    __tablename__ = "ticket_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)  # YYYYMMDD, China time
    value: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """A resident's complaint or report, from submission to rating (see bot/services/tickets.py)."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_deadline", "status", "deadline"),
        Index("ix_tickets_resident_created", "resident_id", "created_at"),
        Index("ix_tickets_building_category", "building", "category"),
        # The dashboard's tickets not answered (yet) by creation time: overdue ones count in 响应率.
        Index(
            "ix_tickets_unanswered",
            "created_at",
            "deadline",
            sqlite_where=sql_text("answered_at IS NULL"),
            postgresql_where=sql_text("answered_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16), default="wechat")
    text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # label, latitude, longitude, text
    community: Mapped[str | None] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(16))
    room: Mapped[str | None] = mapped_column(String(16))
    grid: Mapped[str | None] = mapped_column(String(64), index=True)
    category: Mapped[str | None] = mapped_column(String(32), index=True)
    category_confidence: Mapped[float | None] = mapped_column(Float)
    department: Mapped[str | None] = mapped_column(String(64), index=True)
    assignee: Mapped[str | None] = mapped_column(String(100), index=True)
    urgency: Mapped[str] = mapped_column(String(16), default="normal")  # normal | urgent
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolution_photos: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[str | None] = mapped_column(String(16))  # satisfied | basic | unsatisfied
    rating_comment: Mapped[str | None] = mapped_column(Text)
    # The inbound message key that created the ticket: a message redone after a crash finds it.
    source_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    duplicate_score: Mapped[float | None] = mapped_column(Float)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Staff's first move (accept, start, answer or reject), kept across reopening: the response time.
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # Every change sets it: the dashboard's roll-up finds the tickets changed since it was made.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class TicketEvent(Base):
    """One entry of a ticket's timeline: who did what when; ``public`` entries are shown to the
    resident (and pushed), private ones are staff notes. ``push_key`` is the outbox row's key."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))  # resident | system | token:<name> | …
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    push_key: Mapped[str | None] = mapped_column(String(200), index=True)  # the outbox message that carried it


class SchedulerLease(Base):
    """One row per scheduled job: the next run time, taken with a conditional UPDATE by one process."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffNotification(Base):
    """A notice to staff about a ticket: a reminder before the deadline (to the assignee, or the
    staff role) or an escalation (to the supervisor role). Written by the scheduler job in the
    transaction that claims the event, so there is one per event; ``read_at`` is set when it is read."""

    __tablename__ = "staff_notifications"
    __table_args__ = (
        CheckConstraint("role IS NOT NULL OR assignee IS NOT NULL", name="addressed"),
        Index("ix_staff_notifications_role_created", "role", "created_at"),
        Index("ix_staff_notifications_assignee_created", "assignee", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    role: Mapped[str | None] = mapped_column(String(16))  # every caller with this role sees it
    assignee: Mapped[str | None] = mapped_column(String(100))  # the API token's name it is addressed to
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # reminder | escalation
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateLimit(Base):
    """Recent failures of one caller at one thing (e.g. a merchant account's unknown coupon codes),
    for a limit that holds in every process: the row is locked while a request takes a slot
    (``hits``: times and ids of the failures within the window, oldest first)."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    hits: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HandoffRequest(Base):
    """A resident waiting for a person: asked for one (转人工) or reported an emergency. One open
    request per resident (a partial unique index); a second ask adds to it. The staff console's
    handoff queue reads the open ones; claiming and closing them is the console's work."""

    __tablename__ = "handoff_requests"
    __table_args__ = (
        Index(
            "uq_handoff_requests_open_resident",
            "resident_id",
            unique=True,
            sqlite_where=sql_text("status != 'closed'"),
            postgresql_where=sql_text("status != 'closed'"),
        ),
        Index("ix_handoff_requests_status_created", "status", "created_at"),
        Index("ix_handoff_requests_created_at", "created_at"),  # the dashboard's periods
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(16))  # asked | urgent (later: not_understood, unhelpful)
    text: Mapped[str] = mapped_column(Text)  # the resident's words, newest last
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | claimed | closed
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the first claim: pick-up time
    asks: Mapped[int] = mapped_column(Integer, default=1)  # how many times the resident asked
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# ------------------------------------------------------------------------------ console (issue 15)
class ConsoleUser(Base):
    """A person who logs in to the console: argon2 password hash, role, and for staff their
    department, for a merchant account its merchant."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # staff | supervisor | operator | merchant | admin
    department: Mapped[str | None] = mapped_column(String(64))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id", ondelete="SET NULL"))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsoleSession(Base):
    """A login session: only the SHA-256 of the cookie's random id is stored; ``csrf`` is the
    token every state-changing request must carry."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsoleLoginFailure(Base):
    """Failed logins for a name (known or not): each one makes the next attempt wait longer."""

    __tablename__ = "console_login_failures"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConversationClaim(Base):
    """A staff member holds a resident's conversation (one at a time: the primary key)."""

    __tablename__ = "conversation_claims"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConversationNote(Base):
    """A private staff note on a resident's conversation (never sent)."""

    __tablename__ = "conversation_notes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CannedReply(Base):
    """A reply staff use often, editable in the console."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

@event.listens_for(Ticket, "after_insert")
def _first_report(_mapper: Any, connection: Any, ticket: Ticket) -> None:
    """A ticket added through the ORM (the services make theirs in Core and do the same there):
    its resident's row says they have reported (see ``Resident.reported_at``)."""
    if ticket.resident_id is not None:
        connection.execute(
            update(Resident)
            .where(Resident.id == ticket.resident_id, Resident.reported_at.is_(None))
            .values(reported_at=ticket.created_at or utcnow())
        )


from bot.storage import dashboard_models as dashboard_models  # noqa: E402  (the dashboard's roll-ups, same metadata)
from bot.storage import tuning_models as tuning_models  # noqa: E402  (the tuning loop tables, same metadata)
