"""fixed_in: a fixed list of values bound once in the compiled statement (no list rendered per
execution), matching the same rows as ``in_``."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, create_engine, insert, select
from sqlalchemy.dialects import postgresql

from bot.storage.fixedin import fixed_in

META = MetaData()
T = Table("t", META, Column("id", Integer, primary_key=True), Column("status", String(16)))
OPEN = ("new", "assigned")


def test_the_same_rows_as_in_without_a_list_rendered_per_execution() -> None:
    engine = create_engine("sqlite://")
    META.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(T), [{"id": i, "status": s} for i, s in enumerate(["new", "done", "assigned", "x"])])
        fixed = select(T.c.id).where(fixed_in(T.c.status, OPEN), T.c.id >= bindparam("low")).order_by(T.c.id)
        expanding = select(T.c.id).where(T.c.status.in_(OPEN), T.c.id >= bindparam("low")).order_by(T.c.id)
        for low in (0, 1, 3):
            assert connection.execute(fixed, {"low": low}).scalars().all() == (
                connection.execute(expanding, {"low": low}).scalars().all()
            )
    compiled = fixed.compile(dialect=engine.dialect)
    assert "POSTCOMPILE" not in compiled.string and "IN (?, ?)" in compiled.string
    assert not any(b.expanding for b in compiled.binds.values())
    assert "POSTCOMPILE" in expanding.compile(dialect=engine.dialect).string  # what it avoids
    typed = fixed.compile(dialect=postgresql.dialect()).string
    assert "::VARCHAR" in typed  # bound with the column's type


def test_no_values_is_refused() -> None:
    with pytest.raises(ValueError):
        fixed_in(T.c.status, [])
