"""Tables of the dashboard's daily roll-ups and of staff takeovers (issue 16). Imported at the end of
:mod:`bot.storage.models`, so they belong to its metadata.

The roll-ups (kept by :mod:`bot.services.dashboard_rollup`) hold, per China day, what the
dashboard would otherwise aggregate from every message and ticket of a period; the dashboard reads
them for the days they cover and the raw rows for the rest, so its figures always equal the raw data.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, UTCDateTime, utcnow


class DashboardRollup(Base):
    """How far a roll-up goes. ``through``: the last China day it holds in full (None: none yet).
    ``watermark`` (tickets): rows changed at or after it may differ from the roll-up, so the days
    they were created on are computed from the raw rows. A reader that finds ``version`` changed
    after its reads reads again (the roll-up moved on in between)."""

    __tablename__ = "dashboard_rollups"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # "messages" | "tickets" | "points"
    through: Mapped[date | None] = mapped_column(Date)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=0)  # one more with every change of the roll-up
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DashboardMessageDay(Base):
    """Inbound messages per China day and intent ('' for none)."""

    __tablename__ = "dashboard_message_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    intent: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class DashboardResidentDay(Base):
    """A resident who wrote on a China day (a conversation): distinct residents over a period are
    counted over these rows, since a day's count of residents does not add up across days."""

    __tablename__ = "dashboard_resident_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class DashboardPointsDay(Base):
    """Points issued (positive entries) and spent (negative ones, as a positive sum) per China day and
    reason. Ledger entries never change the day, reason or amount they were written with."""

    __tablename__ = "dashboard_points_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    issued: Mapped[int] = mapped_column(BigInteger)
    spent: Mapped[int] = mapped_column(BigInteger)


class DashboardTicketDay(Base):
    """Tickets created on a China day per category, department and grid ('' for none), with the
    counts the dashboard's ticket figures add up. Nothing here depends on the time it is read."""

    __tablename__ = "dashboard_ticket_days"
    __table_args__ = (Index("ix_dashboard_ticket_days_day", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(64))
    grid: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)  # answered or closed
    rejected: Mapped[int] = mapped_column(Integer)
    reopened: Mapped[int] = mapped_column(Integer)  # reopen_count > 0
    rated: Mapped[int] = mapped_column(Integer)
    approved: Mapped[int] = mapped_column(Integer)  # rated satisfied or basic
    satisfied: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)  # answered_at set
    in_time: Mapped[int] = mapped_column(Integer)  # answered by the deadline (or without one)


class DashboardTicketDuration(Base):
    """A ticket's response and resolution times (seconds; None until there is one) by its creation
    day: medians and 90th percentiles do not add up across days, so they are taken over these narrow
    rows rather than over the tickets themselves."""

    __tablename__ = "dashboard_ticket_durations"
    __table_args__ = (Index("ix_dashboard_ticket_durations_day", "day"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    response: Mapped[float | None] = mapped_column(Float)
    resolution: Mapped[float | None] = mapped_column(Float)


class TakeoverEvent(Base):
    """A staff member took over (``claim``) or wrote to (``reply``) a resident's conversation. Kept
    after the claim is released: the bot's resolution rate counts such a conversation as needing a
    person even when the resident never asked for one."""

    __tablename__ = "takeover_events"
    __table_args__ = (Index("ix_takeover_events_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
