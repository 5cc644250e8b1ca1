"""Statements prepared once and run straight on the driver's cursor, for the hot path's SQL.

SQLAlchemy's per-execution work (parameter construction, rendering of expanding ``IN`` lists,
result set-up, events) costs tens of microseconds per statement, more than SQLite itself spends
on a small one. :class:`Prepared` compiles a Core statement once per dialect and shape (the
lengths of its ``IN`` lists; the number of rows of an ``INSERT … RETURNING``), keeps SQLAlchemy's own bind and result processors for its column
types, and then only converts the values and calls the DBAPI cursor: what is stored and read back
is exactly what SQLAlchemy would store and read.

On SQLite (the embedded default, where this matters most) the statement runs on the connection's
cursor. On other backends it goes through ``connection.execute`` as usual: the same results; the
work there is the server's anyway. There ``IN`` lists are padded to a power of two (the last value
repeated), so a statement comes in a few SQL texts instead of one per list length: asyncpg
prepares each text on the server once per connection and keeps a limited number.

A driver's error is raised as ``Connection.execute`` raises it (SQLAlchemy's ``IntegrityError``
and so on, parameters hidden); SQLAlchemy's handling of a lost connection is not applied.

Checked when a statement is first prepared: every bound parameter is given by the caller or
written into the statement; column defaults and ``onupdate`` values are not applied, so a
statement that would need them is refused (give the column a value).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Insert, bindparam, exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

M = TypeVar("M")
Params = Mapping[str, Any]
MULTIROW_CHUNK = 200  # rows per multi-row INSERT … RETURNING (SQLite allows 32766 parameters)
Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    compiled: SQLCompiler
    expanding: tuple[str, ...]  # parameters that are IN lists
    results: tuple[Processor, ...]  # one per returned column; () if the statement returns nothing
    converting: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, processor) of those that have one


@dataclass(frozen=True)
class _Shape:
    sql: str
    # Per position: (caller's parameter or None, index in its IN list or None, constant, processor).
    order: tuple[tuple[str | None, int | None, Any, Processor], ...]
    # When every position is a caller's parameter as it is (no IN list, nothing written in): the
    # values in order in one call, and the (position, processor) of those to convert.
    plain: Callable[[Params], tuple[Any, ...]] | None = None
    converting: tuple[tuple[int, Callable[[Any], Any]], ...] = ()


class Prepared:
    """One Core statement; :meth:`rows` runs it once, :meth:`many` once per parameter set."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        self._shapes: dict[tuple[str, tuple[str, ...], tuple[int, ...]], _Shape] = {}
        self._multirows: dict[tuple[int, tuple[str, ...]], Prepared] = {}

    def rows(self, connection: Connection, params: Params | None = None) -> list[tuple[Any, ...]]:
        """The rows the statement returns, as tuples of values converted as SQLAlchemy would."""
        params = params or {}
        dialect = connection.dialect
        prepared = self._compile(dialect, params)  # checked on every backend alike
        if dialect.name != "sqlite":
            given = _padded(params, prepared.expanding) if prepared.expanding else dict(params)
            result = connection.execute(self.statement, given)
            return [tuple(row) for row in result] if result.returns_rows else []
        shape = self._shape(prepared, dialect, params)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(shape.sql, _arguments(shape, params))
            fetched: list[Any] = list(cursor.fetchall()) if prepared.results else []
        except dialect.loaded_dbapi.Error as error:
            raise _wrapped(error, shape.sql, dialect) from error
        finally:
            cursor.close()
        return _converted(prepared.converting, fetched)

    def scalars(self, connection: Connection, params: Params | None = None) -> list[Any]:
        return [row[0] for row in self.rows(connection, params)]

    def many(self, connection: Connection, rows: Sequence[Params]) -> list[tuple[Any, ...]]:
        """Execute once per parameter set (all with the same keys and list lengths); the rows a
        ``RETURNING`` clause gives (an INSERT's in no particular order)."""
        if not rows:
            return []
        dialect = connection.dialect
        prepared = self._compile(dialect, rows[0])
        if dialect.name != "sqlite":
            result = connection.execute(self.statement, [dict(r) for r in rows])
            return [tuple(row) for row in result] if result.returns_rows else []
        if prepared.results and isinstance(self.statement, Insert):
            # The driver's executemany drops what RETURNING gives: one INSERT of many rows.
            fetched: list[tuple[Any, ...]] = []
            for start in range(0, len(rows), MULTIROW_CHUNK):
                chunk = rows[start : start + MULTIROW_CHUNK]
                fetched.extend(self._multirow(len(chunk), tuple(chunk[0])).rows(connection, _numbered(chunk)))
            return fetched
        shape = self._shape(prepared, dialect, rows[0])
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if not prepared.results:
                cursor.executemany(shape.sql, [_arguments(shape, r) for r in rows])
                return []
            raw: list[Any] = []
            for r in rows:  # UPDATE … RETURNING: one execute per set
                cursor.execute(shape.sql, _arguments(shape, r))
                raw.extend(cursor.fetchall())
        except dialect.loaded_dbapi.Error as error:
            raise _wrapped(error, shape.sql, dialect) from error
        finally:
            cursor.close()
        return _converted(prepared.converting, raw)

    def _multirow(self, n: int, keys: tuple[str, ...]) -> Prepared:
        """This INSERT with ``n`` rows of VALUES, parameters ``{key}__{i}`` (see :func:`_numbered`)."""
        prepared = self._multirows.get((n, keys))
        if prepared is None:
            assert isinstance(self.statement, Insert)
            columns = self.statement.table.c
            # Typed like the columns, so the values go through the columns' bind processors.
            values: list[dict[str, Any]] = [
                {k: bindparam(f"{k}__{i}", type_=columns[k].type) for k in keys} for i in range(n)
            ]
            prepared = self._multirows[(n, keys)] = Prepared(self.statement.values(values))
        return prepared

    def _compile(self, dialect: Dialect, params: Params) -> _Compiled:
        key = (dialect.name, tuple(params))
        prepared = self._compiled.get(key)
        if prepared is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(params))  # type: ignore[attr-defined]
            assert isinstance(compiled, SQLCompiler)
            defaults = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            if defaults:
                raise ValueError(f"prepared statement: give a value for {defaults} (defaults are not applied)")
            missing = [b.key for b in compiled.bind_names if b.required and b.key not in params]
            if missing:
                raise ValueError(f"prepared statement: parameters {missing} not given")
            columns: Any = getattr(self.statement, "selected_columns", None)
            if columns is None:
                columns = getattr(self.statement, "exported_columns", None) or ()
            if dialect.name == "sqlite":
                results = tuple(col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns)
            else:  # read through SQLAlchemy's result there, which knows the driver's column types
                results = (None,) * len(columns)
            prepared = self._compiled[key] = _Compiled(
                compiled,
                tuple(b.key for b in compiled.bind_names if b.expanding),
                results,
                tuple((i, p) for i, p in enumerate(results) if p is not None),
            )
        return prepared

    def _shape(self, prepared: _Compiled, dialect: Dialect, params: Params) -> _Shape:
        lengths = tuple([len(params[name]) for name in prepared.expanding]) if prepared.expanding else ()
        key = (dialect.name, tuple(params), lengths)
        shape = self._shapes.get(key)
        if shape is not None:
            return shape
        compiled = prepared.compiled
        # Each rendered parameter comes from the caller's parameter of that key (or an element of
        # it, for an IN list) or, for a value written into the statement, from the statement.
        given: dict[str, Any] = {}
        sources: dict[str, tuple[str | None, Any, Processor]] = {}
        for bind, name in compiled.bind_names.items():
            processor: Processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.key in params:
                given[name] = params[bind.key]
                sources[name] = (bind.key, None, processor)
            else:  # a value written into the statement: converted once, here
                constant = bind.effective_value
                sources[name] = (None, processor(constant) if processor is not None else constant, None)
        expanded = compiled.construct_expanded_state(given)
        where: dict[str, tuple[str | None, int | None, Any, Processor]] = {}
        for name, (source, constant, processor) in sources.items():
            parts = expanded.parameter_expansion.get(name)
            if parts is None:
                where[name] = (source, None, constant, processor)
            else:
                for i, part in enumerate(parts):
                    where[part] = (source, i, None, processor)
        order = tuple(where[p] for p in expanded.positiontup or ())
        plain: Callable[[Params], tuple[Any, ...]] | None = None
        if all(name is not None and index is None for name, index, _, _ in order):
            names = [name for name, _, _, _ in order]
            if len(names) > 1:
                plain = operator.itemgetter(*names)
            else:  # itemgetter of one key gives the value, not a tuple
                plain = _getter(names[0] if names else None)
        converting = tuple((i, p) for i, (_, _, _, p) in enumerate(order) if p is not None)
        shape = self._shapes[key] = _Shape(expanded.statement, order, plain, converting)
        return shape


def _wrapped(error: Exception, sql: str, dialect: Dialect) -> BaseException:
    """The driver's error as SQLAlchemy raises it from ``Connection.execute`` (``IntegrityError``
    for a broken constraint, which callers catch), its parameters left out of the message."""
    return exc.DBAPIError.instance(sql, None, error, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect)


def _padded(params: Params, expanding: tuple[str, ...]) -> dict[str, Any]:
    """``params`` with each ``IN`` list lengthened to the next power of two by repeating its last
    value (the same rows match). Every length of a list is another SQL text, which asyncpg prepares
    on the server (a round trip, and parsing and planning there) and keeps per connection among a
    limited number: a batch's lists of 1 to 64 values came in 64 texts per statement, now 7."""
    given = dict(params)
    for name in expanding:
        values = given[name]
        n = len(values)
        if n > 2 and n & (n - 1):
            values = list(values)
            given[name] = values + [values[-1]] * ((1 << (n - 1).bit_length()) - n)
    return given


def _numbered(rows: Sequence[Params]) -> dict[str, Any]:
    return {f"{k}__{i}": v for i, r in enumerate(rows) for k, v in r.items()}


def _getter(name: str | None) -> Callable[[Params], tuple[Any, ...]]:
    if name is None:
        return lambda params: ()
    return lambda params: (params[name],)


def _arguments(shape: _Shape, params: Params) -> tuple[Any, ...]:
    if shape.plain is not None:
        values = shape.plain(params)
        if not shape.converting:
            return values
        converted = list(values)
        for i, p in shape.converting:
            converted[i] = p(converted[i])
        return tuple(converted)
    out = []
    for name, index, constant, processor in shape.order:
        if name is None:
            value = constant
        else:
            value = params[name] if index is None else params[name][index]
        out.append(processor(value) if processor is not None else value)
    return tuple(out)


def _converted(converting: tuple[tuple[int, Callable[[Any], Any]], ...], fetched: list[Any]) -> list[tuple[Any, ...]]:
    if not converting:
        return [tuple(row) for row in fetched]
    out = []
    for row in fetched:
        values = list(row)
        for i, p in converting:
            values[i] = p(values[i])
        out.append(tuple(values))
    return out


def detached(cls: type[M], keys: Sequence[str], row: Sequence[Any]) -> M:
    """An ORM object of ``cls`` from a row of its column attributes ``keys`` (every one of them),
    detached, as if a session had loaded it and closed: attributes read without SQL, nothing
    pending, and ``session.merge`` takes it like any detached object. About a sixth of the cost of
    ``cls(**values)`` plus :func:`make_transient_to_detached`, which the hot path felt."""
    plan = _PLANS.get((cls, tuple(keys)))
    if plan is None:
        plan = _PLANS[(cls, tuple(keys))] = _plan(cls, keys)
    new_instance, identity, positions = plan
    obj: M = new_instance()
    obj.__dict__.update(zip(keys, row, strict=True))  # loaded values, as the ORM's loader sets them: no history
    instance_state(obj).key = identity(tuple([row[i] for i in positions]))
    return obj


# Per class and attributes: the instance factory, the identity key of a primary key, and where the
# primary key's values are in a row (looked up once: ``identity_key(cls, …)`` inspects every time).
_PLANS: dict[tuple[type, tuple[str, ...]], tuple[Callable[[], Any], Callable[[tuple[Any, ...]], Any], tuple[int, ...]]] = {}


def _plan(
    cls: type, keys: Sequence[str]
) -> tuple[Callable[[], Any], Callable[[tuple[Any, ...]], Any], tuple[int, ...]]:
    mapper: Any = sa_inspect(cls)
    primary = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    return manager_of_class(cls).new_instance, mapper.identity_key_from_primary_key, tuple(
        list(keys).index(k) for k in primary
    )
