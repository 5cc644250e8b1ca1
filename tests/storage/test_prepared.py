"""Prepared statements (the hot path's SQL) store and read exactly what SQLAlchemy would, on SQLite
(straight on the driver's cursor) and PostgreSQL (through SQLAlchemy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, event, insert, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database, dialect_insert
from bot.storage.migrate import upgrade
from bot.storage.models import InboundKey, Message, Resident
from bot.storage.prepared import Prepared, detached

T0 = datetime(2026, 12, 5, 8, 30, 15, 123456, tzinfo=UTC)


async def test_rows_written_and_read_as_sqlalchemy_would(db: Database) -> None:
    add = Prepared(dialect_insert(db.dialect, Resident.__table__))
    log = Prepared(insert(Message.__table__))
    by_openid = Prepared(
        select(Resident.openid, Resident.created_at, Resident.profile)
        .where(Resident.openid.in_(bindparam("openids", expanding=True)), Resident.subscribed.is_(True))
        .order_by(Resident.openid)
    )
    east = datetime(2026, 12, 5, 16, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))  # = T0, stored as UTC

    def write(conn: Connection) -> list[list[tuple[Any, ...]]]:
        add.many(
            conn,
            [
                {"openid": f"o_{i}", "subscribed": i != 2, "subscribed_at": T0, "created_at": T0 + timedelta(hours=i),
                 "updated_at": T0, "profile": {"楼栋": i, "tags": ["老人"]}}
                for i in range(4)
            ],
        )
        resident_id = conn.execute(select(Resident.id).where(Resident.openid == "o_0")).scalar_one()
        log.many(
            conn,
            [
                {"resident_id": resident_id, "direction": "in", "msg_type": "text", "event": None,
                 "content": "路灯坏了]]>", "payload": {"Content": "路灯坏了"}, "intent": "complaint",
                 "confidence": 0.91, "dedup_key": "msg:1", "via": None, "created_at": east},
            ],
        )
        # The same statement with IN lists of several lengths; o_2 is not subscribed (a constant).
        return [by_openid.rows(conn, {"openids": ids}) for ids in (["o_1"], ["o_0", "o_2", "o_3"], ["o_9", "o_3"])]

    one, three, two = await db.run_sync_transaction(write)
    assert one == [("o_1", T0 + timedelta(hours=1), {"楼栋": 1, "tags": ["老人"]})]
    assert [r[0] for r in three] == ["o_0", "o_3"] and [r[0] for r in two] == ["o_3"]
    assert three[1][1] == T0 + timedelta(hours=3) and three[1][1].tzinfo is not None

    async with db.session() as s:  # what the ORM reads back is what it would have written
        message = (await s.scalars(select(Message))).one()
        assert (message.content, message.payload, message.confidence) == ("路灯坏了]]>", {"Content": "路灯坏了"}, 0.91)
        assert message.created_at == east == T0
        resident = (await s.scalars(select(Resident).where(Resident.openid == "o_3"))).one()
        assert resident.created_at == T0 + timedelta(hours=3) and resident.profile == {"楼栋": 3, "tags": ["老人"]}


async def test_many_returns_what_returning_gives(db: Database) -> None:
    claim = Prepared(
        dialect_insert(db.dialect, InboundKey.__table__)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(InboundKey.key)
    )

    def rows(keys: list[str]) -> list[dict[str, Any]]:
        return [{"key": k, "openid": "o", "status": "processing", "created_at": T0, "updated_at": T0} for k in keys]

    assert sorted(await db.run_sync_transaction(lambda c: claim.many(c, rows(["a", "b"])))) == [("a",), ("b",)]
    assert await db.run_sync_transaction(lambda c: claim.many(c, rows(["b", "c", "a"]))) == [("c",)]
    assert await db.run_sync_transaction(lambda c: claim.many(c, [])) == []
    # More rows than one multi-row INSERT takes: every new one is returned once.
    many = [f"k{i:03d}" for i in range(450)]
    returned = await db.run_sync_transaction(lambda c: claim.many(c, rows(["a", *many, "c"])))
    assert sorted(k for (k,) in returned) == many


async def test_values_written_into_a_statement_are_stored_as_sqlalchemy_would(db: Database) -> None:
    """Constants in a statement (converted once, when it is first prepared) are stored exactly like
    the same statement run through SQLAlchemy, row after row."""
    table = InboundKey.__table__
    claim = Prepared(insert(table))
    finished = (
        update(table)
        .where(table.c.key == bindparam("k"))
        .values(status="replied", inbound=None, reply=[{"text": "好的"}], updated_at=T0 + timedelta(hours=1))
    )
    prepared = Prepared(finished)

    def write(conn: Connection) -> list[tuple[Any, ...]]:
        claim.many(
            conn,
            [
                {"key": k, "openid": "o", "status": "processing", "inbound": {"Content": "你好"}, "reply": None,
                 "attempts": 0, "created_at": T0, "updated_at": T0}
                for k in ("a", "b", "c")
            ],
        )
        prepared.many(conn, [{"k": "a"}, {"k": "b"}])
        conn.execute(finished, {"k": "c"})  # the same statement through SQLAlchemy
        raw = text("select key, status, inbound, reply, updated_at from inbound_keys order by key")
        return [tuple(r) for r in conn.execute(raw)]

    a, b, c = await db.run_sync_transaction(write)
    assert a[1:] == b[1:] == c[1:]
    async with db.session() as s:
        row = await s.get(InboundKey, "a")
        assert row is not None and row.reply == [{"text": "好的"}] and row.updated_at == T0 + timedelta(hours=1)


async def test_statements_needing_defaults_or_missing_parameters_are_refused(db: Database) -> None:
    add = Prepared(insert(Resident.__table__))
    with pytest.raises(ValueError, match="updated_at"):
        # created_at and updated_at have Python-side defaults, which a prepared statement does not apply.
        await db.run_sync_transaction(lambda c: add.many(c, [{"openid": "o", "subscribed": True}]))
    find = Prepared(select(Resident.id).where(Resident.openid == bindparam("openid")))
    with pytest.raises(ValueError, match="openid"):
        await db.run_sync_transaction(lambda c: find.rows(c, {}))
    async with db.session() as s:
        assert (await s.scalars(select(Resident))).all() == []


async def test_sqlite_stores_utc_text_in_sqlalchemy_format(sqlite_url: str) -> None:
    """Datetimes on SQLite are written and parsed by our own processors; the text is SQLAlchemy's
    format, and older or hand-written forms still read as UTC."""
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        ist = datetime(2026, 12, 5, 14, 0, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        async with db.transaction() as s:
            s.add(Resident(openid="o_t", subscribed=True, created_at=ist, updated_at=ist))
        forms = ["2026-12-05 08:30:15", "2026-12-05T08:30:15.5", "2026-12-05 16:30:15+08:00", "2026-12-05"]

        def raw(conn: Connection) -> list[Any]:
            stored = conn.exec_driver_sql("SELECT created_at FROM residents").scalar_one()
            for i, text in enumerate(forms):
                conn.exec_driver_sql(
                    "INSERT INTO residents (openid, subscribed, created_at, updated_at) VALUES (?, 1, ?, ?)",
                    (f"o_{i}", text, text),
                )
            return [stored]

        assert await db.run_sync_transaction(raw) == ["2026-12-05 08:30:15.123456"]
        async with db.session() as s:
            read = {r.openid: r.created_at for r in await s.scalars(select(Resident))}
        assert read == {
            "o_t": T0,
            "o_0": T0.replace(microsecond=0),
            "o_1": T0.replace(microsecond=500000),
            "o_2": T0.replace(microsecond=0),
            "o_3": datetime(2026, 12, 5, tzinfo=UTC),
        }
    finally:
        await db.dispose()


async def test_detached_objects_behave_like_loaded_ones(db: Database) -> None:
    keys = tuple(attr.key for attr in sa_inspect(Resident).column_attrs)
    query = Prepared(select(*(getattr(Resident, k) for k in keys)).where(Resident.openid == bindparam("openid")))
    async with db.transaction() as s:
        s.add(Resident(openid="o_d", subscribed=True, created_at=T0, updated_at=T0, profile={"楼栋": 3}))
    (row,) = await db.run_sync_transaction(lambda c: query.rows(c, {"openid": "o_d"}))
    resident = detached(Resident, keys, row)
    state = sa_inspect(resident)
    assert state.detached and not state.modified
    assert (resident.openid, resident.created_at, resident.profile) == ("o_d", T0, {"楼栋": 3})
    async with db.transaction() as s:  # merged like any detached object: an UPDATE, not an INSERT
        merged = await s.merge(resident)
        merged.building = "3号楼"
    async with db.session() as s:
        rows = (await s.scalars(select(Resident))).all()
    assert [(r.openid, r.building, r.created_at) for r in rows] == [("o_d", "3号楼", T0)]


async def test_many_rows_in_one_insert_are_stored_like_one(sqlite_url: str) -> None:
    """A multi-row INSERT … RETURNING converts its values exactly as a single-row one does."""
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        claim = Prepared(
            dialect_insert(db.dialect, InboundKey.__table__)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(InboundKey.key)
        )
        ist = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
        rows = [{"key": k, "openid": "o", "status": "processing", "created_at": ist, "updated_at": T0} for k in "abc"]
        await db.run_sync_transaction(lambda c: claim.many(c, rows[:1]))
        await db.run_sync_transaction(lambda c: claim.many(c, rows[1:]))

        def stored(conn: Connection) -> set[tuple[Any, ...]]:
            return set(conn.exec_driver_sql("SELECT created_at, updated_at FROM inbound_keys").all())

        assert await db.run_sync_transaction(stored) == {("2026-12-05 08:30:15.123456", "2026-12-05 08:30:15.123456")}
    finally:
        await db.dispose()


async def test_json_keeps_chinese_as_text_and_reads_escaped_rows_too(sqlite_url: str) -> None:
    """JSON columns are stored with Chinese as UTF-8, by the ORM and by the prepared statements
    alike; rows written escaped (``\\uXXXX``, as before) read back the same."""
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        log = Prepared(insert(Message))
        row = {
            "resident_id": 0, "direction": "out", "msg_type": "text", "event": None, "content": "您好",
            "payload": {"kind": "text", "content": "您好"}, "intent": None, "confidence": None,
            "dedup_key": None, "via": "passive", "created_at": T0,
        }
        async with db.transaction() as s:
            s.add(Resident(openid="o_j", subscribed=True, created_at=T0, updated_at=T0, profile={"楼栋": "3号楼"}))
            await s.flush()
            resident_id = (await s.scalars(select(Resident.id))).one()

        def write(conn: Connection) -> list[Any]:
            log.many(conn, [{**row, "resident_id": resident_id}])
            conn.exec_driver_sql(
                "INSERT INTO messages (resident_id, direction, msg_type, payload, created_at) "
                "VALUES (?, 'in', 'text', ?, '2026-12-05 08:30:15')",
                (resident_id, '{"Content": "\\u7535\\u68af"}'),
            )
            return [
                conn.exec_driver_sql("SELECT profile FROM residents").scalar_one(),
                conn.exec_driver_sql("SELECT payload FROM messages WHERE direction = 'out'").scalar_one(),
            ]

        assert await db.run_sync_transaction(write) == ['{"楼栋": "3号楼"}', '{"kind": "text", "content": "您好"}']
        async with db.session() as s:
            payloads = {m.direction: m.payload for m in await s.scalars(select(Message))}
        assert payloads == {"out": {"kind": "text", "content": "您好"}, "in": {"Content": "电梯"}}
    finally:
        await db.dispose()


async def test_sqlite_connections_share_the_settings(sqlite_url: str) -> None:
    """Both ways into the SQLite file (the async pool and the hot path's thread) run in WAL mode,
    with foreign keys on and the same checkpoint interval."""
    from sqlalchemy import text

    from bot.storage.db import WAL_CHECKPOINT_PAGES

    db = Database(sqlite_url)
    await upgrade(db)
    pragmas = ("journal_mode", "foreign_keys", "synchronous", "wal_autocheckpoint")
    try:
        async with db.session() as s:
            pooled = [(await s.execute(text(f"PRAGMA {p}"))).scalar_one() for p in pragmas]
        hot = await db.run_sync_transaction(lambda c: [c.exec_driver_sql(f"PRAGMA {p}").scalar_one() for p in pragmas])
        assert pooled == hot == ["wal", 1, 1, WAL_CHECKPOINT_PAGES]
    finally:
        await db.dispose()


async def test_in_lists_of_any_length_match_the_same_rows_in_a_few_texts(db: Database) -> None:
    """On PostgreSQL every SQL text is prepared on the server once per connection (and asyncpg keeps
    a limited number of them), so a batch's IN lists of 1 to 40 values come in a few texts, not one
    per length; the rows are those of the values given."""
    add = Prepared(dialect_insert(db.dialect, Resident.__table__))
    by_openid = Prepared(
        select(Resident.openid).where(Resident.openid.in_(bindparam("openids", expanding=True))).order_by(Resident.openid)
    )
    texts: set[str] = set()

    def sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM residents" in statement:
            texts.add(statement)

    def run(conn: Connection) -> list[list[str]]:
        add.many(
            conn,
            [{"openid": f"o_{i:02d}", "subscribed": True, "created_at": T0, "updated_at": T0} for i in range(40)],
        )
        event.listen(conn, "before_cursor_execute", sent)
        try:
            return [
                [r[0] for r in by_openid.rows(conn, {"openids": [f"o_{i:02d}" for i in range(n)] + ["nobody"]})]
                for n in range(40)
            ]
        finally:
            event.remove(conn, "before_cursor_execute", sent)

    found = await db.run_sync_transaction(run)
    assert found == [[f"o_{i:02d}" for i in range(n)] for n in range(40)]
    if db.dialect == "postgresql":
        assert len(texts) <= 7, len(texts)  # lists of 1 … 40 values: 1, 2, 4, 8, 16, 32, 64


async def test_reads_on_postgresql_hold_no_transaction_open(db: Database) -> None:
    """A read (``run_sync_read``) sends no BEGIN and ROLLBACK on PostgreSQL: each statement is its
    own transaction, so between statements the backend is not idle inside a transaction."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite reads: tests/storage/test_sqlite_reads.py")

    def read(conn: Connection) -> tuple[Any, Any]:
        first = conn.execute(text("select transaction_timestamp()")).scalar_one()
        conn.execute(text("select pg_sleep(0.02)"))
        return first, conn.execute(text("select transaction_timestamp()")).scalar_one()

    first, second = await db.run_sync_read(read)
    assert second > first  # in one transaction both would be its start


async def test_rows_of_a_statement_that_returns_nothing(db: Database) -> None:
    """``rows`` of an UPDATE without RETURNING: the rows it changed, and no rows back (through
    SQLAlchemy on PostgreSQL, whose result then has none to iterate)."""
    add = Prepared(dialect_insert(db.dialect, Resident.__table__))
    move = Prepared(
        update(Resident.__table__)
        .where(Resident.openid == bindparam("o"))
        .values(building=bindparam("b"), updated_at=bindparam("at"))
    )

    def write(conn: Connection) -> list[tuple[Any, ...]]:
        add.many(conn, [{"openid": "o_m", "subscribed": True, "created_at": T0, "updated_at": T0}])
        return move.rows(conn, {"o": "o_m", "b": "3号楼", "at": T0})

    assert await db.run_sync_transaction(write) == []
    async with db.session() as s:
        assert (await s.scalar(select(Resident.building).where(Resident.openid == "o_m"))) == "3号楼"


async def test_a_broken_constraint_is_sqlalchemys_integrity_error(db: Database) -> None:
    """A prepared statement's error is the one ``Connection.execute`` raises (callers catch
    SQLAlchemy's ``IntegrityError``, e.g. a repeated key), not the driver's own, and it leaves the
    parameters out of its message."""
    add = Prepared(dialect_insert(db.dialect, Resident.__table__))
    row = {"openid": "o_dup", "subscribed": True, "created_at": T0, "updated_at": T0}

    def twice(conn: Connection, again: Any) -> None:
        add.rows(conn, row)
        again(conn)

    for again in (lambda conn: add.rows(conn, row), lambda conn: add.many(conn, [row])):
        with pytest.raises(IntegrityError) as raised:
            await db.run_sync_transaction(lambda conn: twice(conn, again))  # noqa: B023
        assert "o_dup" not in str(raised.value)
    async with db.session() as s:  # rolled back with the transaction
        assert (await s.scalar(select(Resident.id).where(Resident.openid == "o_dup"))) is None
