"""bot/services/points.py: the rules that guard points, at their boundaries.

Through the JSON API and the ``points check`` CLI where those reach the rule; the rest (the rules
file, daily caps and the local day, the entry checks that the API's schema already stops) at the
service, since no public route can send what they refuse. Written against the mutants that survived
the earlier tests (docs/testing.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.appkeys import RUNTIME
from bot.clock import ManualClock
from bot.services import points
from bot.storage.db import Database
from bot.storage.models import PointsBalance, PointsEntry, Resident
from tests.api.conftest import Api, make_tokens
from tests.points.helpers import NOW, make_residents, migrated

REPO = Path(__file__).resolve().parents[2]
MAX = points.MAX_AMOUNT


# -- the rules file --------------------------------------------------------------------------------


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "points.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_defaults_when_sections_are_left_out(tmp_path: Path):
    rules = points.load_rules(write_rules(tmp_path, "earn:\n  activity: 10\n"))
    assert rules.earn == {"activity": 10} and rules.daily_caps == {}
    assert rules.cancel_refund_cutoff == timedelta(hours=24)
    assert rules.remind_before == timedelta(hours=24)
    assert rules.refund_expired_coupons is False
    assert str(rules.tz) == "Asia/Shanghai"


def test_rules_sections_are_read(tmp_path: Path):
    rules = points.load_rules(
        write_rules(
            tmp_path,
            "earn: {activity: 7}\ndaily_caps: {activity: 21}\n"
            "courses: {cancel_refund_cutoff_hours: 3, remind_hours_before: 5}\n"
            "coupons: {refund_expired: true}\ntimezone: Asia/Urumqi\n",
        )
    )
    assert rules.earn == {"activity": 7} and rules.daily_caps == {"activity": 21}
    assert rules.cancel_refund_cutoff == timedelta(hours=3)
    assert rules.remind_before == timedelta(hours=5)
    assert rules.refund_expired_coupons is True
    assert str(rules.tz) == "Asia/Urumqi"


@pytest.mark.parametrize(
    ("setting", "lo", "hi"),
    [
        ("earn:\n  activity: {}", 0, MAX),
        ("daily_caps:\n  activity: {}", 0, MAX),
        ("courses:\n  cancel_refund_cutoff_hours: {}", 0, 24 * 60),
        ("courses:\n  remind_hours_before: {}", 1, 24 * 14),
    ],
)
def test_whole_number_settings_take_both_ends_of_their_range(tmp_path: Path, setting: str, lo: int, hi: int):
    for ok in (lo, hi):
        points.load_rules(write_rules(tmp_path, setting.format(ok) + "\n"))
    name = setting.replace(":\n  ", ".").split(":")[0]
    for bad in (lo - 1, hi + 1, "true", '"5"', "2.5"):
        with pytest.raises(points.RulesError) as exc:
            points.load_rules(write_rules(tmp_path, setting.format(bad) + "\n"))
        shown = {"true": "True", '"5"': "'5'"}.get(str(bad), str(bad))
        assert str(exc.value) == (
            f"{tmp_path / 'points.yml'}: {name} must be a whole number from {lo} to {hi}, got {shown}"
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 1\n- 2\n", "expected a mapping of settings at the top level"),
        ("earn: [1, 2]\n", "'earn' must be a mapping"),
        ("daily_caps: 5\n", "'daily_caps' must be a mapping"),
        ("courses: yes\n", "'courses' must be a mapping"),
        ("coupons: [x]\n", "'coupons' must be a mapping"),
        ("coupons:\n  refund_expired: 1\n", "coupons.refund_expired must be true or false, got 1"),
        ("timezone: Mars/Olympus\n", "unknown timezone 'Mars/Olympus'"),
    ],
)
def test_rules_file_errors_say_exactly_what_is_wrong(tmp_path: Path, text: str, message: str):
    path = write_rules(tmp_path, text)
    with pytest.raises(points.RulesError) as exc:
        points.load_rules(path)
    assert str(exc.value) == f"{path}: {message}"


def test_unreadable_and_broken_rules_files(tmp_path: Path):
    missing = tmp_path / "none.yml"
    with pytest.raises(points.RulesError) as exc:
        points.load_rules(missing)
    assert str(exc.value) == f"{missing}: cannot read: No such file or directory"
    broken = tmp_path / "bad.yml"
    broken.write_bytes(b"earn: \xff\xfe\n")
    with pytest.raises(points.RulesError) as exc:
        points.load_rules(broken)
    assert str(exc.value).startswith(f"{broken}: not valid YAML: ")


def test_local_day_and_its_bounds_are_beijing_days():
    rules = points.rules()
    # NOW is Monday 10:00 in Beijing (02:00 UTC); 16:00 UTC is already Tuesday 00:00 there.
    assert rules.local_day(NOW) == "2026-11-23"
    assert rules.local_day(NOW.replace(hour=16)) == "2026-11-24"
    assert rules.local_day(NOW.replace(hour=15, minute=59, second=59)) == "2026-11-23"
    start, end = rules.day_bounds(NOW + timedelta(hours=1, minutes=23, seconds=45, microseconds=678))
    assert start == NOW.replace(hour=0) - timedelta(hours=8)
    assert start.isoformat() == "2026-11-23T00:00:00+08:00"
    assert end - start == timedelta(days=1)


# -- entries ---------------------------------------------------------------------------------------


ENTRY = {"reason": "adjust", "ref_type": "test", "ref_id": "1"}


async def _credit(db: Database, rid: int, key: str, amount: Any = 5, **fields: Any) -> bool:
    async with db.transaction() as s:
        return await points.credit(
            s, resident_id=rid, amount=amount, idempotency_key=key, now=NOW, **{**ENTRY, **fields}
        )


async def _debit(db: Database, rid: int, key: str, amount: Any = 5, **fields: Any) -> int:
    async with db.transaction() as s:
        return await points.debit(
            s, resident_id=rid, amount=amount, idempotency_key=key, now=NOW, **{**ENTRY, **fields}
        )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": 0}, f"amount must be a whole number from 1 to {MAX}, got 0"),
        ({"amount": -3}, f"amount must be a whole number from 1 to {MAX}, got -3"),
        ({"amount": MAX + 1}, f"amount must be a whole number from 1 to {MAX}, got {MAX + 1}"),
        ({"amount": True}, f"amount must be a whole number from 1 to {MAX}, got True"),
        ({"amount": 5.0}, f"amount must be a whole number from 1 to {MAX}, got 5.0"),
        ({"reason": ""}, "reason must be 1 to 32 characters"),
        ({"reason": "r" * 33}, "reason must be 1 to 32 characters"),
        ({"ref_type": ""}, "ref_type must be 1 to 32 characters"),
        ({"ref_type": "t" * 33}, "ref_type must be 1 to 32 characters"),
        ({"ref_id": ""}, "ref_id must be 1 to 64 characters"),
        ({"ref_id": "i" * 65}, "ref_id must be 1 to 64 characters"),
        ({"key": ""}, "idempotency_key must be 1 to 160 characters"),
        ({"key": "k" * 161}, "idempotency_key must be 1 to 160 characters"),
    ],
)
async def test_entries_out_of_range_are_refused_and_write_nothing(
    sqlite_url: str, fields: dict, message: str
):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=10)
        fields = dict(fields)  # the parameter is shared by every run of this case
        key = fields.pop("key", "refused")
        for write in (_credit, _debit):
            with pytest.raises(ValueError) as exc:
                await write(db, rid, key, **fields)
            assert str(exc.value) == message
        async with db.session() as s:
            assert await points.balance_of(s, rid) == 10
            assert len(await points.history(s, rid)) == 1
    finally:
        await db.dispose()


async def test_entries_at_the_limits_are_written(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        long = {"reason": "r" * 32, "ref_type": "t" * 32, "ref_id": "i" * 64}
        assert await _credit(db, rid, "k" * 160, amount=MAX, **long) is True
        assert await _debit(db, rid, "all", amount=MAX, **long) == 0  # the whole balance may go
        assert await _credit(db, rid, "one", amount=1) is True
        assert await _debit(db, rid, "one-", amount=1) == 0
        async with db.session() as s:
            entries = await points.history(s, rid)
            assert [(e.amount, e.balance_after) for e in entries] == [(-1, 0), (1, 1), (-MAX, 0), (MAX, MAX)]
            assert entries[2].reason == "r" * 32
            assert await points.ledger_mismatches(s) == []
    finally:
        await db.dispose()


async def test_credit_once_per_key_and_its_entry(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        async with db.transaction() as s:
            assert await points.credit(
                s, resident_id=rid, amount=7, idempotency_key="c1", now=NOW, actor="张", note="补录", **ENTRY
            )
            assert not await points.credit(
                s, resident_id=rid, amount=7, idempotency_key="c1", now=NOW, actor="张", note="补录", **ENTRY
            )
        async with db.session() as s:
            (entry,) = await points.history(s, rid)
            assert (entry.amount, entry.balance_after, entry.actor, entry.note) == (7, 7, "张", "补录")
            assert (entry.reason, entry.ref_type, entry.ref_id, entry.idempotency_key) == (
                "adjust",
                "test",
                "1",
                "c1",
            )
            assert entry.created_at == NOW
            assert await points.balance_of(s, rid) == 7
    finally:
        await db.dispose()


async def test_debit_beyond_the_balance_says_how_much_there_is(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=9)
        with pytest.raises(points.InsufficientPoints) as exc:
            await _debit(db, rid, "d1", amount=10)
        err = exc.value
        assert (err.code, err.balance, err.needed, str(err)) == ("points", 9, 10, "balance 9 is less than 10")
        assert err.info == {"balance": 9, "needed": 10}
        async with db.transaction() as s:
            assert await points.debit(
                s, resident_id=rid, amount=4, idempotency_key="d2", now=NOW + timedelta(hours=1),
                actor="李", note="扣回", **ENTRY,
            ) == 5  # fmt: skip
            row = await s.get(PointsBalance, rid)
            assert row is not None and row.updated_at == NOW + timedelta(hours=1)
        async with db.session() as s:
            newest = (await points.history(s, rid))[0]
            assert (newest.amount, newest.balance_after, newest.actor, newest.note) == (-4, 5, "李", "扣回")
            assert (newest.idempotency_key, newest.created_at) == ("d2", NOW + timedelta(hours=1))
    finally:
        await db.dispose()


# -- earning within the daily cap ------------------------------------------------------------------


async def _earn(db: Database, rid: int, key: str, rule: str = "activity", when=NOW, **kw: Any) -> int:
    async with db.transaction() as s:
        return await points.earn(
            s, resident_id=rid, rule=rule, ref_type="x", ref_id=key, idempotency_key=key, now=when, **kw
        )


async def test_daily_cap_counts_only_this_residents_earnings_for_this_rule_today(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        me, other = await make_residents(db, 2)
        cap = points.rules().daily_caps["activity"]
        start, end = points.rules().day_bounds(NOW)
        assert await _earn(db, other, "o1", amount=cap) == cap  # another resident's earnings
        assert await _earn(db, me, "v1", rule="valid_report") == 5  # another rule
        assert (
            await _earn(db, me, "y1", when=start - timedelta(microseconds=1), amount=cap) == cap
        )  # yesterday
        assert await _earn(db, me, "t0", when=start, amount=1) == 1  # the first moment of today counts
        assert await _earn(db, me, "t1", amount=cap) == cap - 1
        assert await _earn(db, me, "t2") == 0
        assert await _earn(db, me, "n1", when=end, amount=cap) == cap  # tomorrow starts at end
        async with db.session() as s:  # and what was earned at that moment is not today's
            assert await points.earned_today(s, me, "activity", NOW) == cap
    finally:
        await db.dispose()


async def test_daily_cap_with_nothing_earned_yet_gives_all_of_it(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        cap = points.rules().daily_caps["activity"]
        assert await _earn(db, rid, "big", amount=cap + 5) == cap
        _, end = points.rules().day_bounds(NOW)
        # an entry at the very end of the day belongs to the next day: today's total stays the cap
        async with db.transaction() as s:
            assert await points.earned_today(s, rid, "activity", NOW) == cap
            assert await points.earned_today(s, rid, "activity", end) == 0
    finally:
        await db.dispose()


async def test_the_last_point_under_the_cap_is_credited(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        cap = points.rules().daily_caps["activity"]
        assert await _earn(db, rid, "most", amount=cap - 1) == cap - 1
        assert await _earn(db, rid, "last") == 1
        assert await _earn(db, rid, "over") == 0
    finally:
        await db.dispose()


async def test_spending_does_not_free_up_the_daily_cap(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        cap = points.rules().daily_caps["activity"]
        assert await _earn(db, rid, "e1", amount=cap) == cap
        await _debit(db, rid, "spend", amount=cap, reason="activity")
        assert await _earn(db, rid, "e2") == 0
    finally:
        await db.dispose()


async def test_earning_nothing_or_an_unknown_rule_writes_nothing(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        assert await _earn(db, rid, "u1", rule="no_such_rule") == 0
        assert await _earn(db, rid, "z1", amount=0) == 0
        assert await _earn(db, rid, "m1", amount=-4) == 0
        assert await _earn(db, rid, "r1", rule="registration", amount=1) == 1  # no cap for registration
        assert await _earn(db, rid, "r1", rule="registration", amount=1) == 0  # once per key
        async with db.session() as s:
            assert [e.idempotency_key for e in await points.history(s, rid)] == ["r1"]
    finally:
        await db.dispose()


async def test_registration_reward_once_with_its_reference(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        async with db.transaction() as s:
            assert await points.award_registration(s, rid, NOW) == points.rules().earn["registration"]
            assert await points.award_registration(s, rid, NOW) == 0
        async with db.session() as s:
            (entry,) = await points.history(s, rid)
            assert (entry.reason, entry.ref_type, entry.ref_id, entry.idempotency_key) == (
                "registration",
                "resident",
                str(rid),
                f"registration:{rid}",
            )
    finally:
        await db.dispose()


# -- adjustments -----------------------------------------------------------------------------------


async def test_adjustment_needs_a_name_a_note_and_an_amount(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1, points_each=10)
        cases = [
            (
                {"actor": " ", "note": "ok", "amount": 5},
                "an adjustment needs the staff member's name and a note",
            ),
            (
                {"actor": "王", "note": "  ", "amount": 5},
                "an adjustment needs the staff member's name and a note",
            ),
            ({"actor": "王", "note": "ok", "amount": 0}, "an adjustment must not be zero"),
        ]
        for args, message in cases:
            async with db.transaction() as s:
                with pytest.raises(ValueError) as exc:
                    await points.adjust(s, resident_id=rid, request_key="a1", now=NOW, **args)
            assert str(exc.value) == message
        async with db.session() as s:
            assert await points.balance_of(s, rid) == 10
            assert len(await points.history(s, rid)) == 1
    finally:
        await db.dispose()


async def test_adjustment_entries_say_who_why_and_which_request(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        (rid,) = await make_residents(db, 1)
        long_key = "q" * 70
        async with db.transaction() as s:
            plus = await points.adjust(
                s, resident_id=rid, amount=12, actor="王", note="补录", request_key=long_key, now=NOW
            )
            minus = await points.adjust(
                s, resident_id=rid, amount=-5, actor="李", note="扣回", request_key="m1", now=NOW
            )
            again = await points.adjust(
                s, resident_id=rid, amount=-5, actor="李", note="扣回", request_key="m1", now=NOW
            )
        assert (plus.amount, plus.balance_after, plus.reason, plus.ref_type) == (12, 12, "adjust", "manual")
        assert (plus.ref_id, plus.idempotency_key) == ("q" * 64, f"adjust:{long_key}")
        assert (plus.actor, plus.note) == ("王", "补录")
        assert (minus.amount, minus.balance_after, minus.actor, minus.note) == (-5, 7, "李", "扣回")
        assert again.id == minus.id
        async with db.transaction() as s:
            one = await points.adjust(
                s, resident_id=rid, amount=1, actor="王", note="一分", request_key="o1", now=NOW
            )
            less = await points.adjust(
                s, resident_id=rid, amount=-1, actor="王", note="一分", request_key="o2", now=NOW
            )
        assert (one.amount, one.balance_after, less.amount, less.balance_after) == (1, 8, -1, 7)
        async with db.session() as s:
            assert await points.balance_of(s, rid) == 7
    finally:
        await db.dispose()


# -- reading: the account through the API, the ledger check through the CLI ---------------------


async def test_account_of_a_resident_without_points_and_newest_entries_first(
    service_factory, sqlite_url, fake_api
):
    svc = await service_factory(sqlite_url, fake_api, app_kwargs={"clock": ManualClock(NOW)})
    api = Api(svc, await make_tokens(sqlite_url))
    db = svc.runner.app[RUNTIME].db
    async with db.transaction() as s:
        fresh = Resident(openid="oFresh00000000000000000001", created_at=NOW)
        s.add(fresh)
        await s.flush()
        fresh_id = fresh.id
    account = await api.ok(f"/points/residents/{fresh_id}", "operator")
    assert account == {"resident_id": fresh_id, "balance": 0, "entries": []}
    (rid,) = await make_residents(db, 1, points_each=3)
    for i in range(3):
        await _credit(db, rid, f"h{i}", amount=i + 1)
    account = await api.ok(f"/points/residents/{rid}", "operator", limit=2)
    assert account["balance"] == 9
    assert [e["amount"] for e in account["entries"]] == [3, 2]
    for i in range(3, 12):
        await _credit(db, rid, f"h{i}", amount=1)
    async with db.session() as s:  # ten entries unless asked for more
        assert len(await points.history(s, rid)) == 10
        assert len(await points.history(s, rid, limit=20)) == 13


def run_cli(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


async def test_points_check_names_each_resident_whose_balance_disagrees(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        a, _b, c = await make_residents(db, 3, points_each=10)
        async with db.transaction() as s:
            await s.execute(update(PointsBalance).where(PointsBalance.resident_id == a).values(balance=4))
            await s.execute(update(PointsBalance).where(PointsBalance.resident_id == c).values(balance=11))
    finally:
        await db.dispose()
    done = run_cli(["points", "check"], sqlite_url)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"resident {a}: ledger sums to 10, balance is 4",
        f"resident {c}: ledger sums to 10, balance is 11",
        "2 residents disagree",
    ]


async def test_points_check_counts_a_balance_without_entries_and_entries_without_a_balance(sqlite_url: str):
    db = await migrated(sqlite_url)
    try:
        a, b = await make_residents(db, 2, points_each=6)
        async with db.transaction() as s:
            await s.execute(PointsBalance.__table__.delete().where(PointsBalance.resident_id == a))
            await s.execute(PointsEntry.__table__.delete().where(PointsEntry.resident_id == b))
        async with db.session() as s:
            assert await points.ledger_mismatches(s) == [(a, 6, 0), (b, 0, 6)]
    finally:
        await db.dispose()
    done = run_cli(["points", "check"], sqlite_url)
    assert done.returncode == 1 and done.stdout.splitlines()[-1] == "2 residents disagree"
