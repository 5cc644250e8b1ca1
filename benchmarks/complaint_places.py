"""How often a report is asked for its place: real citizen messages through ``/wechat``.

Each message is sent by a new resident (no building bound, nothing going on) to the service
started in this process (SQLite in a temporary folder, safe mode, the fake WeChat API), and the
first reply is sorted: asked for the place (具体位置 / 几号楼), filed (a ticket number), asked
something else (the phone, what the problem is), or not taken for a report at all.

Sets (the real ones are read from ``../shared/data`` and never copied here):

* ``messages``: ``--count`` full messages (text field) of teddy2020c ``messages_train.csv``, a
  seeded sample;
* ``titles``: ``--count`` titles of ``titles_train.csv``, a seeded sample;
* ``noplace``: short reports written here that name no place: they must still be asked;
* ``estate``: short reports written here naming an estate for something inside a building: the
  building must still be asked.

    .venv/bin/python benchmarks/complaint_places.py [--set messages] [--count 120] [--seed 120]
        [--port 8160] [--show asked|filed|all]

Run it from another checkout (``PYTHONPATH=<tree>``) for a paired before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp

# This folder holds a module named intents (the benchmark): the package of that name must win.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "teddy2020c"
TOKEN, AES_KEY, APPID, SECRET = "benchtoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2", "s"

# Short reports with no place in them, written for this benchmark.
NO_PLACE = [
    "楼道灯坏了", "路灯不亮了", "垃圾好几天没人清了", "下水道堵了", "电梯又停了", "暖气不热",
    "楼上装修太吵了", "有人乱停车", "家里停水了", "井盖丢了很危险", "有人在楼道里堆东西",
    "晚上广场舞太吵", "门禁坏了进不去", "墙皮掉下来了", "水管漏水了", "树枝断了挂在电线上",
    "有野狗咬人", "楼顶漏雨", "油烟太大熏得受不了", "天天半夜有人喝酒吵闹", "化粪池满了往外冒",
    "路上有个大坑", "充电桩坏了", "单元门关不上", "老鼠太多了", "消防通道被堵了",
    "我要反映楼下的垃圾桶满了", "投诉一下 晚上工地施工噪音", "路面积水走不了", "自来水发黄",
]


# Estates named for something inside a building, written for this benchmark: the building is
# still asked (with the estate).
ESTATE_INDOORS = [
    "幸福小区楼道灯坏了", "金桂花园电梯又停了", "和平家园楼上漏水漏到我家了", "阳光苑单元门关不上",
    "锦绣家园暖气一点都不热", "东方明珠公寓楼道里堆满了杂物", "康乐新村我家水管爆了", "翠湖花园邻居天天半夜剁东西",
]


def sample(name: str, count: int, seed: int) -> list[str]:
    if name == "noplace":
        return list(NO_PLACE)
    if name == "estate":
        return list(ESTATE_INDOORS)
    path = DATA / ("messages_train.csv" if name == "messages" else "titles_train.csv")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [(r.get("text") if name == "messages" else r.get("title")) or "" for r in rows]
    texts = [re.sub(r"\s+", " ", t).strip() for t in texts if t.strip()]
    return random.Random(seed).sample(texts, min(count, len(texts)))


def sort_reply(reply: str) -> str:
    if "紧急" in reply:
        return "urgent"
    if "具体位置" in reply or "几号楼" in reply or "具体在哪里" in reply:
        return "asked"
    if re.search(r"GD\d{8}", reply):
        return "filed"
    if "联系电话" in reply:
        return "phone"
    if "什么问题" in reply:
        return "what"
    return "other"


async def run(texts: list[str], port: int, show: str) -> Counter[str]:
    from bot.app import create_app
    from bot.config import Settings
    from bot.wechat.fake_api import run_fake_api
    from bot.wechat.simulate import WeChatSender

    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="h6-places-") as tmp:
        async with run_fake_api(credentials={APPID: SECRET}) as fake:
            settings = Settings.from_mapping({
                "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bot.db", "BOT_WECHAT_TOKEN": TOKEN,
                "BOT_WECHAT_APPID": APPID, "BOT_WECHAT_SECRET": SECRET, "BOT_WECHAT_AES_KEY": AES_KEY,
                "BOT_DATA_DIR": f"{tmp}/data", "BOT_WECHAT_API_BASE": fake, "BOT_PORT": str(port),
                "BOT_LOG_LEVEL": "WARNING",
            })
            runner = aiohttp.web.AppRunner(create_app(settings), access_log=None)
            await runner.setup()
            await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
            sender = WeChatSender(f"http://127.0.0.1:{port}/wechat", TOKEN, APPID, AES_KEY, mode="safe")
            try:
                async with aiohttp.ClientSession() as http:
                    for i, text in enumerate(texts):
                        sent = await sender.send(http, sender.text(f"o-places-{i:04d}", text))
                        reply = sent.content or ""
                        kind = sort_reply(reply)
                        counts[kind] += 1
                        if show in ("all", kind):
                            print(f"[{kind}] {i:3d} {text[:90]}\n      -> {reply[:80]}")
            finally:
                await runner.cleanup()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="messages", choices=("messages", "titles", "noplace", "estate"))
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--seed", type=int, default=120)
    parser.add_argument("--port", type=int, default=8160)
    parser.add_argument("--show", default="", help="print the messages sorted so: asked, filed, phone, what, other, all")
    args = parser.parse_args()
    texts = sample(args.set, args.count, args.seed)
    counts = asyncio.run(run(texts, args.port, args.show))
    print(f"{args.set} ({len(texts)}): " + ", ".join(f"{k} {counts[k]}" for k in ("asked", "filed", "phone", "what", "urgent", "other")))


if __name__ == "__main__":
    main()
