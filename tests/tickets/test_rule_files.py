"""The operator's rule files for emergencies and office hours: the packaged ones, an operator's
override taking effect while the service runs, and unusable files named (never an error reply)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services import hazards, office
from bot.services.rulefiles import RuleFileError
from tests.tickets.conftest import Desk

PACKAGED = Path(__file__).resolve().parents[2] / "bot" / "rules"


@pytest.mark.parametrize(
    ("text", "hazard"),
    [
        ("电梯里有人被困了", "trapped_elevator"),
        ("电梯卡住了我在里面出不来", "trapped_elevator"),
        ("我家煤气泄漏了", "gas"),
        ("楼道里一股天然气的味道", "gas"),
        ("邻居家老人晕倒了", "fainting"),
        ("楼道里着火了", "fire"),
        ("楼下冒黑烟", "fire"),
        ("有人触电了", "shock"),
        ("楼上往下掉东西差点砸到人", "falling"),
        ("家里漏水淹了", "flooding"),
        ("楼下有人拿刀砍人", "violence"),
        ("孩子不见了", "missing"),
        ("小孩掉河里了", "drowning"),
        ("电梯卡在半空 里面有小孩", "trapped_elevator"),
        ("家里有股烧焦的味道", "fire"),
        ("有人在楼顶要跳楼", "suicide"),
        ("暖气管爆了 水哗哗的", "flooding"),
        ("地下室进水了 好深", "flooding"),
        ("电梯门夹人了", "trapped_elevator"),
        ("电梯坏了", None),
        ("电梯里面有广告", None),
        ("手机进水了", None),
        ("楼下饭店油烟很大", None),
        ("楼道里有人抽烟", None),
        ("燃气费怎么交", None),
        ("如果燃气泄漏了怎么办", None),
        ("去年我们楼着过火", None),
        ("路面坑坑洼洼容易摔倒", None),
        ("轮胎漏气了", None),
        ("楼上漏水", None),
    ],
)
def test_packaged_hazards(text: str, hazard: str | None) -> None:
    found = hazards.load().recognise(text)
    assert (found.id if found else None) == hazard


def test_packaged_lines_and_advice_per_hazard() -> None:
    rules = hazards.load()
    gas = rules.recognise("煤气泄漏了")
    lift = rules.recognise("电梯困人")
    flood = rules.recognise("水管爆了")
    assert gas is not None and lift is not None and flood is not None
    assert "96777" in gas.first and "96333" not in gas.first + gas.advice
    assert "96333" in lift.first and "燃气" not in lift.first + lift.advice
    assert "物业值班人员" in flood.first  # no duty number configured: named without one, never made up


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("first: 请立即拨打{fire}。", "first: 请立即拨打{firemen}。"), "unknown line {firemen}"),
        (("[爆炸|爆燃|炸了]", "[爆炸|(爆燃|炸了]"), "not a valid regular expression"),
        (('number: "119"', 'number: "一一九"'), "must be digits"),
        (("  - id: explosion", "  - id: fire"), "used twice"),
        (("hazards:\n", "hazard:\n"), "'hazards' must be a list"),
    ],
)
def test_unusable_hazards_file_is_named(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = (PACKAGED / "hazards.yml").read_text(encoding="utf-8")
    assert change[0] in text
    path = tmp_path / "hazards.yml"
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        hazards.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_office_hours() -> None:
    hours = office.load()
    monday_10 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    friday_20 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert hours.is_open(monday_10) and not hours.is_open(friday_20)
    assert hours.describe() == "周一至周五 8:30–17:30"
    assert hours.when_next(friday_20) == "周一8:30"
    assert hours.when_next(datetime(2026, 11, 23, 12, 0, tzinfo=UTC)) == "明天（周二）8:30"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("days: [1, 8]\nopen: '08:30'\nclose: '17:30'", "weekdays 1"),
        ("days: [1]\nopen: '8.30'\nclose: '17:30'", "open must be a time"),
        ("days: [1]\nopen: '18:00'\nclose: '17:30'", "close must be after open"),
        ("days: [1]\nopen: '08:00'\nclose: '17:30'\nphone: call us", "phone must be digits"),
        ("days: [1\n", "invalid YAML"),
    ],
)
def test_unusable_office_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "office.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        office.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


async def test_operator_lines_take_effect_while_running_and_a_broken_edit_keeps_them(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = desk.svc.settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    packaged = (PACKAGED / "hazards.yml").read_text(encoding="utf-8")
    empty_duty = 'duty: {name: 物业值班电话, number: ""'
    mine = data_dir / "hazards.yml"
    mine.write_text(packaged.replace(empty_duty, 'duty: {name: 物业值班电话, number: "010-11112222"'), encoding="utf-8")
    first = await desk.say("o_rules1", "8号楼家里水管爆了 淹了")
    assert first.splitlines()[0].find("010-11112222") >= 0, first

    mine.write_text(packaged.replace(empty_duty, 'duty: {name: 物业值班电话, number: "010-33334444"'), encoding="utf-8")
    reply = ""
    for _ in range(40):  # re-read within a second of the change
        reply = await desk.say("o_rules2", "9号楼家里水管爆了 淹了")
        if "010-33334444" in reply:
            break
        await asyncio.sleep(0.1)
    assert "010-33334444" in reply.splitlines()[0], reply

    caplog.set_level(logging.ERROR, logger="bot.services.rulefiles")
    mine.write_text("hazards: [", encoding="utf-8")  # an edit in progress
    await asyncio.sleep(1.2)
    reply = await desk.say("o_rules3", "10号楼家里水管爆了 淹了")
    assert "010-33334444" in reply.splitlines()[0] and "开了个小差" not in reply, reply
    assert any(str(mine) in r.getMessage() for r in caplog.records)
