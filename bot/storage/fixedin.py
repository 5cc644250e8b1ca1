"""``column IN (a, b, c)`` for a fixed list of values, rendered into the statement once.

``column.in_(values)`` with plain values is an *expanding* parameter: SQLAlchemy keeps a
placeholder in the compiled statement and renders the list into the SQL on every execution
(``_process_parameters_for_postcompile``), about 20 µs per execution of a small read on SQLite,
a third of it. A list written in the code (the open statuses of a ticket, of a booking) never
changes, so :func:`fixed_in` gives each value as a bound parameter of its own (``literal`` typed
like the column): the compiled statement is reused as it is. The same rows match; SQLite and
PostgreSQL see ``IN (?, ?, …)`` either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, literal


def fixed_in(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` with the values bound once, in the compiled statement."""
    listed = list(values)
    if not listed:
        raise ValueError("fixed_in: no values")
    return column.in_([literal(value, column.type) for value in listed])
