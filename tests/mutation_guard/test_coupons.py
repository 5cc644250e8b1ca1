"""bot/services/coupons.py: redemption windows, limits and codes, verification and expiry at their
boundaries. At the service: the chat and the merchant API reach these rules only through texts that
would hide which rule answered (the API answers another merchant's code as an unknown one, on
purpose). Written against the mutants that survived the earlier tests (docs/testing.md)."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.services import coupons, points
from bot.storage.db import Database
from bot.storage.models import Coupon, IssuedCoupon, Merchant
from tests.points.helpers import NOW, make_coupon, make_residents, migrated

CODE = re.compile(r"[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{10}")


async def set_coupon(db: Database, coupon_id: int, **values) -> None:
    async with db.transaction() as s:
        await s.execute(update(Coupon).where(Coupon.id == coupon_id).values(**values))


async def merchant_of(db: Database, coupon_id: int) -> int:
    async with db.session() as s:
        coupon = await s.get(Coupon, coupon_id)
        assert coupon is not None
        return coupon.merchant_id


@pytest.fixture
async def db(sqlite_url: str):
    database = await migrated(sqlite_url)
    yield database
    await database.dispose()


def test_codes_and_their_normal_form():
    codes = {coupons.new_code() for _ in range(50)}
    assert len(codes) == 50 and all(CODE.fullmatch(c) for c in codes)
    assert coupons.normalise_code(" ab-cd_ef\tgh ") == "ABCDEFGH"
    assert coupons.normalise_code("x" * 40) == "X" * 32


async def test_catalogue_shows_what_can_be_redeemed_now(db: Database):
    first = await make_coupon(db, stock=1, price=5, title="理发立减10元")
    starts_now = await make_coupon(db, stock=1, price=5, title="洗车券")
    await set_coupon(db, starts_now, valid_from=NOW, category="生活")
    ends_now = await make_coupon(db, stock=1, price=5, title="早餐券")
    await set_coupon(db, ends_now, valid_until=NOW)
    sold_out = await make_coupon(db, stock=0, price=5, title="水果券")
    inactive = await make_coupon(db, stock=1, price=5, title="超市券")
    await set_coupon(db, inactive, active=False)
    closed_shop = await make_coupon(db, stock=1, price=5, title="修鞋券")
    async with db.transaction() as s:
        merchant = await s.get(Merchant, await merchant_of(db, closed_shop))
        assert merchant is not None
        merchant.active = False
    async with db.session() as s:
        shown = [c.id for c, _ in await coupons.catalogue(s, NOW)]
        assert shown == [first, starts_now]
        assert [c.id for c, _ in await coupons.catalogue(s, NOW, "生活")] == [starts_now]
    assert sold_out and ends_now


async def test_matching_a_request_to_coupons():
    def item(cid: int, title: str, category: str, merchant: str):
        return Coupon(id=cid, title=title, category=category), Merchant(name=merchant)

    items = [
        item(1, "立减10元", "理发", "阿芳美发"),
        item(2, "早餐八折", "餐饮", "老王包子铺"),
        item(3, "洗剪吹立减", "理发", "小李理发店"),
    ]
    assert [c.id for c, _ in coupons.match_coupons("我要换理发券", items)] == [1, 3]
    assert [c.id for c, _ in coupons.match_coupons("包子", items)] == [2]
    assert [c.id for c, _ in coupons.match_coupons("老王包子店", items)] == [
        2
    ]  # close to the merchant's name
    assert [c.id for c, _ in coupons.match_coupons("兑换优惠券", items)] == []  # nothing but filler
    # one character matches too much: "理" is two thirds of the category 理发, but counts 60 at most
    lone = [item(4, "立减10元", "理发", "阿芳美店")]
    assert coupons.match_coupons("理", lone, threshold=60) == lone
    assert coupons.match_coupons("理", lone, threshold=61) == []
    close = [item(1, "洗剪吹立折", "理发", "阿芳美店"), item(3, "洗剪吹立减", "理发", "小李店")]
    assert [c.id for c, _ in coupons.match_coupons("洗剪吹立减券", close)] == [3, 1]  # best first (100, 88.9)
    assert [c.id for c, _ in coupons.match_coupons("洗剪吹立减", close, threshold=88)] == [3, 1]
    assert [c.id for c, _ in coupons.match_coupons("洗剪吹立减", close, threshold=89)] == [3]
    assert coupons.match_coupons("老王包子", items, threshold=101) == []


async def test_redemption_window_edges(db: Database):
    (rid,) = await make_residents(db, 1, points_each=100)
    cid = await make_coupon(db, stock=5, price=10, limit=5)
    await set_coupon(db, cid, valid_from=NOW, valid_until=NOW + timedelta(hours=1))
    with pytest.raises(coupons.CouponError) as early:
        await coupons.redeem(
            db, resident_id=rid, coupon_id=cid, request_key="e", now=NOW - timedelta(seconds=1)
        )
    assert early.value.code == "not_started" and early.value.info == {"valid_from": NOW}
    done = await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key="a", now=NOW)
    assert done.created and done.balance == 90 and CODE.fullmatch(done.issued.code)
    issued = done.issued
    assert (issued.seq, issued.status, issued.points, issued.issued_at) == (1, "issued", 10, NOW)
    assert issued.expires_at == NOW + timedelta(hours=1)
    assert done.coupon.stock == 4
    with pytest.raises(coupons.CouponError) as late:
        await coupons.redeem(
            db, resident_id=rid, coupon_id=cid, request_key="z", now=NOW + timedelta(hours=1)
        )
    assert late.value.code == "ended"
    second = await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key="b", now=NOW)
    assert second.issued.seq == 2


async def test_limit_points_and_unknown_coupons(db: Database):
    rich, poor = await make_residents(db, 2, points_each=0)
    async with db.transaction() as s:
        await points.credit(
            s,
            resident_id=rich,
            amount=30,
            reason="adjust",
            ref_type="t",
            ref_id="t",
            idempotency_key="r",
            now=NOW,
        )
    cid = await make_coupon(db, stock=5, price=10, limit=2)
    for key in ("l1", "l2"):
        await coupons.redeem(db, resident_id=rich, coupon_id=cid, request_key=key, now=NOW)
    with pytest.raises(coupons.CouponError) as limit:
        await coupons.redeem(db, resident_id=rich, coupon_id=cid, request_key="l3", now=NOW)
    assert limit.value.code == "limit" and limit.value.info == {"limit": 2} and str(limit.value) == "limit"
    with pytest.raises(coupons.CouponError) as short:
        await coupons.redeem(db, resident_id=poor, coupon_id=cid, request_key="p1", now=NOW)
    assert short.value.code == "points" and short.value.info == {"balance": 0, "price": 10}
    with pytest.raises(coupons.CouponError) as missing:
        await coupons.redeem(db, resident_id=rich, coupon_id=999, request_key="m1", now=NOW)
    assert missing.value.code == "not_found"
    await set_coupon(db, cid, active=False)
    with pytest.raises(coupons.CouponError) as off:
        await coupons.redeem(db, resident_id=rich, coupon_id=cid, request_key="m2", now=NOW)
    assert off.value.code == "not_found"


async def test_free_coupon_and_a_double_tap(db: Database):
    (rid,) = await make_residents(db, 1, points_each=7)
    cid = await make_coupon(db, stock=3, price=0)
    first = await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key="tap", now=NOW)
    again = await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key="tap", now=NOW)
    assert (first.created, first.balance, first.issued.points) == (True, 7, 0)
    assert (again.created, again.balance, again.issued.id) == (False, 7, first.issued.id)
    assert again.coupon.id == cid and again.merchant.id == await merchant_of(db, cid)


async def test_my_coupons_newest_first_and_only_mine(db: Database):
    me, other = await make_residents(db, 2, points_each=100)
    cid = await make_coupon(db, stock=10, price=1, limit=5)
    mine = [
        (await coupons.redeem(db, resident_id=me, coupon_id=cid, request_key=f"m{i}", now=NOW)).issued.id
        for i in range(3)
    ]
    await coupons.redeem(db, resident_id=other, coupon_id=cid, request_key="o", now=NOW)
    async with db.session() as s:
        assert [i.id for i, _, _ in await coupons.my_coupons(s, me)] == mine[::-1]
        assert [i.id for i, _, _ in await coupons.my_coupons(s, me, limit=2)] == mine[:0:-1]


async def test_verification_outcomes(db: Database):
    (rid,) = await make_residents(db, 1, points_each=100)
    cid = await make_coupon(db, stock=5, price=10, limit=5)
    other_shop = await merchant_of(db, await make_coupon(db, stock=1, price=1, title="别家券"))
    shop = await merchant_of(db, cid)
    code = (await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key="v1", now=NOW)).issued.code
    assert (
        await coupons.verify(db, code="NOSUCHCODE", merchant_id=shop, actor="店员", now=NOW)
    ).status == "not_found"
    assert (await coupons.verify(db, code=code, merchant_id=other_shop, actor="别人", now=NOW)).status == (
        "other_merchant"
    )
    written = f"{code[:5].lower()}-{code[5:]}"
    used = await coupons.verify(db, code=written, merchant_id=shop, actor="店" * 120, now=NOW)
    assert used.status == "used" and used.coupon is not None and used.coupon.id == cid
    assert used.issued is not None
    assert (used.issued.status, used.issued.used_at, used.issued.merchant_id) == ("used", NOW, shop)
    assert used.issued.used_by == "店" * 100
    again = await coupons.verify(db, code=code, merchant_id=shop, actor="店员", now=NOW)
    assert again.status == "already_used" and again.issued is not None and again.issued.used_by == "店" * 100
    assert again.coupon is not None and again.coupon.id == cid


async def test_a_coupon_is_void_from_its_expiry_on(db: Database):
    (rid,) = await make_residents(db, 1, points_each=100)
    cid = await make_coupon(db, stock=5, price=10, limit=5)
    shop = await merchant_of(db, cid)
    redeemed = await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key="x1", now=NOW)
    ends = redeemed.issued.expires_at
    before = await coupons.verify(
        db, code=redeemed.issued.code, merchant_id=shop, actor="a", now=ends - timedelta(seconds=1)
    )
    assert before.status == "used"
    other = await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key="x2", now=NOW)
    at_end = await coupons.verify(db, code=other.issued.code, merchant_id=shop, actor="a", now=ends)
    assert at_end.status == "expired" and at_end.issued is not None and at_end.issued.id == other.issued.id
    assert at_end.coupon is not None and at_end.coupon.id == cid
    assert await coupons.expire(db, ends - timedelta(seconds=1)) == []
    assert await coupons.expire(db, ends) == [(rid, "理发立减10元", 0)]
    async with db.session() as s:
        issued = await s.get(IssuedCoupon, other.issued.id)
        assert issued is not None and issued.status == "expired"
        assert await points.balance_of(s, rid) == 80


async def test_expired_coupons_are_refunded_when_the_rules_say_so(db: Database, monkeypatch):
    refunding = dataclasses.replace(points.rules(), refund_expired_coupons=True)
    monkeypatch.setattr(points, "rules", lambda: refunding)
    rich, free = await make_residents(db, 2, points_each=50)
    paid = await make_coupon(db, stock=5, price=20)
    gratis = await make_coupon(db, stock=5, price=0, title="免费体验券")
    a = await coupons.redeem(db, resident_id=rich, coupon_id=paid, request_key="r1", now=NOW)
    await coupons.redeem(db, resident_id=free, coupon_id=gratis, request_key="r2", now=NOW)
    later = a.issued.expires_at
    assert sorted(await coupons.expire(db, later)) == sorted(
        [(rich, "理发立减10元", 20), (free, "免费体验券", 0)]
    )
    async with db.session() as s:
        assert await points.balance_of(s, rich) == 50
        (refund, *_) = await points.history(s, rich)
        assert (refund.amount, refund.reason, refund.ref_type, refund.ref_id) == (
            20,
            "refund",
            "issued_coupon",
            str(a.issued.id),
        )
        assert refund.idempotency_key == f"coupon:{a.issued.id}:expired-refund"
    assert await coupons.expire(db, later) == []


async def test_the_limit_counts_this_coupon_only_and_a_one_point_coupon_is_paid(db: Database):
    (rid,) = await make_residents(db, 1, points_each=10)
    first = await make_coupon(db, stock=5, price=1, limit=1)
    second = await make_coupon(db, stock=5, price=1, limit=1, title="洗车立减5元")
    a = await coupons.redeem(db, resident_id=rid, coupon_id=first, request_key="c1", now=NOW)
    b = await coupons.redeem(db, resident_id=rid, coupon_id=second, request_key="c2", now=NOW)
    assert (a.balance, b.balance, b.issued.seq) == (9, 8, 1)
    async with db.session() as s:
        paid = (await points.history(s, rid))[0]
        assert (paid.amount, paid.reason, paid.ref_type, paid.ref_id) == (
            -1,
            "coupon",
            "issued_coupon",
            str(b.issued.id),
        )
        assert paid.idempotency_key == f"coupon:{b.issued.id}"


async def test_my_coupons_shows_twenty_unless_asked(db: Database):
    (rid,) = await make_residents(db, 1)
    cid = await make_coupon(db, stock=30, price=0, limit=30)
    for i in range(21):
        await coupons.redeem(db, resident_id=rid, coupon_id=cid, request_key=f"f{i}", now=NOW)
    async with db.session() as s:
        assert len(await coupons.my_coupons(s, rid)) == 20
        assert len(await coupons.my_coupons(s, rid, limit=25)) == 21
