"""The intents' registry (intents/data/intents.yml) is the only list of intents: an intent added in a
copy of the training data appears in the menu keys, the clarifying question, the help and the
fallback texts, with no code change. Through the WeChat endpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

from intents.engine import IntentEngine
from tests.conftest import REPO

PARKING = """\
  parking:
    kind: service
    label: 停车月卡或车位租赁
    summary: 办理停车月卡
    help: 停车服务：停车月卡办理、车位租赁
    menu_keys: [PARKING]
    intro: 想办停车月卡还是租车位？把车牌号和楼栋告诉我就行。
"""

EXAMPLES = [
    "我想办个停车月卡", "停车月卡多少钱一个月", "地下车位怎么租", "想租个车位", "月卡到期了怎么续",
    "停车卡怎么办理", "车位租金怎么交", "我要办停车证", "新买的车想办月卡", "能不能租个固定车位",
    "月租车位还有吗", "停车包月怎么收费", "车位一年多少钱", "办月卡要带什么", "我家第二辆车能办月卡吗",
    "访客车位怎么预约", "临时车位可以包月吗", "停车卡丢了怎么补", "车牌换了月卡怎么改", "月卡能退吗",
    "我想问问租车位的事", "小区车位出租吗", "帮我办一张停车月卡", "地面车位能包年吗", "车位续租",
]
# Messages that may fall between parking and another intent; at least one must make the engine ask.
AMBIGUOUS = [
    "停车卡刷不了", "停车月卡被多收钱了", "车位划线不清楚", "月卡到期了还被收费", "我的停车卡坏了",
    "停车位太少了能不能多租几个", "车位被占了想租一个", "停车场的月卡问题", "月卡刷不开道闸",
]


def _data_with_parking(tmp_path: Path) -> Path:
    data = tmp_path / "intents"
    shutil.copytree(REPO / "intents" / "data", data, ignore=shutil.ignore_patterns("test", "eval"))
    registry = data / "intents.yml"
    text = registry.read_text(encoding="utf-8")
    marker = "  fallback:\n"
    registry.write_text(text.replace(marker, PARKING + marker), encoding="utf-8")
    (data / "parking.yml").write_text(
        "intent: parking\nexamples:\n" + "".join(f"- {t}\n" for t in EXAMPLES), encoding="utf-8"
    )
    return data


async def _say(svc, openid: str, text: str) -> str:
    s = svc.sender()
    reply = await s.send(svc.http, s.text(openid, text))
    assert reply.status == 200, reply.body
    return reply.content or ""


async def test_a_new_intent_appears_in_menu_clarify_help_and_fallback(service_factory, sqlite_url, fake_api, tmp_path):
    data = _data_with_parking(tmp_path)
    engine = IntentEngine.load(data)
    assert "parking" in engine.intents and engine.registry.is_core("parking")
    unsure = [t for t in AMBIGUOUS if engine.classify(t).decision == "clarify"
              and "parking" in [label for label, _ in engine.classify(t).candidates]]
    assert unsure, [engine.classify(t).to_dict() for t in AMBIGUOUS]

    svc = await service_factory(sqlite_url, fake_api, BOT_INTENTS_DIR=data)
    # Help: the greeting lists what the assistant can do, the new intent's line included.
    assert "停车服务：停车月卡办理、车位租赁" in await _say(svc, "o_reg1", "你好")
    # Fallback: "我能帮您：…" names it too.
    assert "办理停车月卡" in await _say(svc, "o_reg2", "帮我订一张明天去北京的机票")
    # Menu: its click key means the intent; no flow of its own, so its intro answers.
    s = svc.sender()
    click = await s.send(svc.http, s.event("o_reg3", "CLICK", "PARKING"))
    assert "想办停车月卡还是租车位" in (click.content or "")
    # A message the engine is unsure about offers it as a choice; choosing it answers with its intro.
    asked = await _say(svc, "o_reg4", unsure[0])
    assert "您是想" in asked and "停车月卡或车位租赁" in asked
    number = next(line.split(".")[0] for line in asked.splitlines() if "停车月卡或车位租赁" in line)
    assert "想办停车月卡还是租车位" in await _say(svc, "o_reg4", number)
    # And a clear message goes straight to it.
    assert "想办停车月卡还是租车位" in await _say(svc, "o_reg5", "我想办个停车月卡，怎么弄")


async def test_packaged_help_lists_every_registered_help_line(service):
    from intents.registry import packaged_registry

    reply = await _say(service, "o_reg6", "你好")
    for line in packaged_registry().help_lines():
        assert line in reply


async def test_the_help_follows_the_registry_each_server_serves(service_factory, sqlite_url, fake_api, tmp_path):
    """The help menu is built once per registry, not once per process: a server on the packaged
    data and one on data with a new intent, in one process, each list their own."""
    packaged = await service_factory(sqlite_url, fake_api)
    assert "停车服务" not in await _say(packaged, "o_reg7", "你好")
    parking = await service_factory(sqlite_url, fake_api, BOT_INTENTS_DIR=_data_with_parking(tmp_path))
    assert "停车服务：停车月卡办理、车位租赁" in await _say(parking, "o_reg8", "你好")
    assert "停车服务" not in await _say(packaged, "o_reg9", "你好")
