from __future__ import annotations

import datetime as dt

import pytest

from intents.dataset import load_dir
from intents.entities import EntityExtractor

NOW = dt.datetime(2026, 11, 22, 10, 0)  # a Sunday


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(load_dir().lookups)


@pytest.mark.parametrize(
    ("text", "building", "unit", "room"),
    [
        ("3号楼2单元501漏水", "3", "2", "501"),
        ("3栋2单元501室", "3", "2", "501"),
        ("三号楼的电梯坏了", "3", None, None),
        ("十二栋楼道灯不亮", "12", None, None),
        ("5#楼门口", "5", None, None),
        ("我住2-1-501", "2", "1", "501"),
        ("7幢3单元1102", "7", "3", "1102"),
    ],
)
def test_addresses(extractor, text, building, unit, room):
    found = extractor.extract(text, NOW).addresses
    assert found, text
    assert (found[0].building, found[0].unit, found[0].room) == (building, unit, room)


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        ("我的电话13812345678", ["13812345678"]),
        ("打138 1234 5678找我", ["13812345678"]),
        ("座机010-62345678", ["010-62345678"]),
        ("工单GD20261122-0042", []),
        ("3号楼2单元501", []),
    ],
)
def test_phones(extractor, text, phones):
    assert extractor.extract(text, NOW).phones == phones


@pytest.mark.parametrize(
    ("text", "date", "time", "part"),
    [
        ("明天下午", "2026-11-23", None, "下午"),
        ("周六", "2026-11-28", None, None),
        ("下周三上午9点", "2026-11-25", "09:00", "上午"),
        ("11月25日", "2026-11-25", None, None),
        ("后天", "2026-11-24", None, None),
        ("今天晚上7点半", "2026-11-22", "19:30", "晚上"),
        ("明天下午三点", "2026-11-23", "15:00", "下午"),
        ("1月5号", "2027-01-05", None, None),
    ],
)
def test_datetimes(extractor, text, date, time, part):
    found = extractor.extract(text, NOW).datetimes
    assert found, text
    d = found[0].to_dict()
    assert (d["date"], d["time"], d["part_of_day"]) == (date, time, part)


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("我想报花艺课", "courses", ["花艺"]),
        ("书发课还有名额吗", "courses", ["书法"]),  # typo
        ("太级拳几点", "courses", ["太极拳"]),  # typo
        ("下周的义诊还有号吗", "activities", ["义诊"]),
        ("社区超市能用积分吗", "merchants", ["社区超市"]),
        ("鲜风水果店的券", "merchants", ["鲜丰水果店"]),  # homophone typo
        ("理发卷怎么用", "coupons", ["理发券"]),
        ("楼道灯坏了", "courses", []),
    ],
)
def test_lookups(extractor, text, kind, expected):
    assert getattr(extractor.extract(text, NOW), kind) == expected


@pytest.mark.parametrize(
    ("text", "tickets"),
    [("工单GD20261122-0042进度", ["GD20261122-0042"]), ("gd20261103-0007催一下", ["GD20261103-0007"]),
     ("没有单号", [])],
)
def test_tickets(extractor, text, tickets):
    assert extractor.extract(text, NOW).tickets == tickets


def test_to_dict_only_found_kinds(extractor):
    d = extractor.extract("3号楼2单元501，电话13812345678，明天下午来修", NOW).to_dict()
    assert set(d) == {"addresses", "phones", "datetimes"}
