"""Tables of the console's tuning loop (issue 16): the draft, the published versions, the review
decisions. Imported at the end of :mod:`bot.storage.models`, so they belong to its metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, JSONType, UTCDateTime, utcnow


class TuningVersion(Base):
    """A published version of the language data: the packaged/configured files plus ``overlay``
    (the operators' changes, see :mod:`bot.services.tuning_data`). Never changed once written; a
    rollback publishes an older overlay again as a new version."""

    __tablename__ = "tuning_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the version number shown
    overlay: Mapped[dict[str, Any]] = mapped_column(JSONType)
    note: Mapped[str] = mapped_column(Text, default="")
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rollback_of: Mapped[int | None] = mapped_column(Integer)  # the version whose overlay this restores


class TuningState(Base):
    """One row (id 1): the version every server process serves, and the shared draft."""

    __tablename__ = "tuning_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    active_version: Mapped[int | None] = mapped_column(Integer)  # None: the files as they are
    draft: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    draft_base: Mapped[int | None] = mapped_column(Integer)  # the version the draft started from
    draft_updated_by: Mapped[str | None] = mapped_column(String(64))
    draft_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TuningReview(Base):
    """An operator's decision on a reviewed text (one decision covers every message of its group).

    ``kind`` intent: ``label`` is the intent, or ``noise``; kind knowledge: ``label`` is the entry id
    the question belongs to (a new entry or a new phrasing), or ``noise``. The reviewed texts are
    also an evaluation set ("everything reviewed so far")."""

    __tablename__ = "tuning_reviews"
    __table_args__ = (UniqueConstraint("kind", "text", name="uq_tuning_reviews_kind_text"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(String(500))
    label: Mapped[str] = mapped_column(String(100))
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
