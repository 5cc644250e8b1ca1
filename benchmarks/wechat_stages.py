"""CPU per message for each stage of the WeChat hot path, in-process, without HTTP.

Where ``benchmarks/wechat_endpoint.py`` gives the whole pipeline against an echo server, this
splits it: envelope parse + decrypt + message parse; the dispatcher alone (middlewares, intent
engine, router, handler) with what the claim preloads; the whole delivery (claim, dispatch, reply,
message log: two group-commit transactions) one message at a time and 16 at a time; render +
encrypt. Process CPU time (all threads), on a fresh SQLite file.

    .venv/bin/python benchmarks/wechat_stages.py [--message text|click] [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.appkeys import RUNTIME  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.handler.dispatcher import Preloaded  # noqa: E402
from bot.handler.state import StateRecord  # noqa: E402
from bot.messages import Inbound, Out  # noqa: E402
from bot.storage.models import Resident  # noqa: E402
from bot.wechat.endpoint import CODEC, DELIVERY  # noqa: E402
from bot.wechat.parsing import parse_xml, to_inbound  # noqa: E402
from bot.wechat.replies import render  # noqa: E402
from bot.wechat.simulate import WeChatSender  # noqa: E402

TOKEN, APPID, AES_KEY = "benchtoken", "wxbench000000001", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


async def cpu_per_item(label: str, items: list[Any], step: Callable[[list[Any]], Awaitable[None]], size: int) -> None:
    start = time.process_time()
    for i in range(0, len(items), size):
        await step(items[i : i + size])
    ms = (time.process_time() - start) / len(items) * 1000
    print(f"{label:<44} {ms:6.3f} ms CPU per message")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--message", choices=["text", "click"], default="text")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    n = max(args.messages, 800) // 4 * 4
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/stages.sqlite3",
            "BOT_DATA_DIR": f"{tmp}/data",
            "BOT_WECHAT_TOKEN": TOKEN,
            "BOT_WECHAT_APPID": APPID,
            "BOT_WECHAT_AES_KEY": AES_KEY,
            "BOT_WECHAT_API_BASE": "http://127.0.0.1:9",
            "BOT_LOG_LEVEL": "WARNING",
        }
        app = create_app(Settings.from_env(env), background=False)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            rt, delivery, codec = app[RUNTIME], app[DELIVERY], app[CODEC]
            sender = WeChatSender("http://127.0.0.1/wechat", TOKEN, APPID, AES_KEY, mode="safe")

            def fields(i: int) -> dict[str, Any]:
                openid = f"o_stage_{i % 200:03d}"
                if args.message == "click":
                    return {**sender.event(openid, "CLICK", "HELP"), "CreateTime": 1_700_000_000 + i // 200}
                return sender.text(openid, "你好")  # unique by MsgId

            requests = [sender.build(fields(i)) for i in range(n)]
            inbounds: list[Inbound] = []

            async def parse(batch: list[tuple[dict[str, str], str]]) -> None:
                for q, body in batch:
                    envelope = parse_xml(body.encode())
                    plain = codec.decrypt(envelope["Encrypt"], q["msg_signature"], q["timestamp"], q["nonce"])
                    inbounds.append(to_inbound(parse_xml(plain.xml)))

            await cpu_per_item("parse envelope + decrypt + parse message", requests, parse, 1)
            quarter = n // 4
            for inbound in inbounds[:200]:  # the residents exist, as in steady state
                await delivery.handle(inbound)
            async with rt.db.session() as session:
                residents = {r.openid: r for r in await session.scalars(select(Resident))}

            async def dispatch(batch: list[Inbound]) -> None:
                for inbound in batch:
                    preloaded = Preloaded(resident=residents[inbound.openid], state=StateRecord(), notices=[])
                    await delivery.dispatcher.process(inbound, rt, preloaded)

            await cpu_per_item("dispatcher (middlewares, intents, handler)", inbounds[200:quarter], dispatch, 1)

            async def deliver(batch: list[Inbound]) -> None:
                await asyncio.gather(*(delivery.handle(inbound) for inbound in batch))

            await cpu_per_item("delivery, one message at a time", inbounds[quarter : 2 * quarter], deliver, 1)
            await cpu_per_item("delivery, 16 messages at a time", inbounds[2 * quarter : 3 * quarter], deliver, 16)
            reply = Out.text("您好！我是社区服务助手，可以帮您反映问题、查积分、报名课程、问办事指南。")

            async def respond(batch: list[Inbound]) -> None:
                for inbound in batch:
                    codec.encrypt(render(reply, to_user=inbound.openid, from_user=inbound.account), nonce="1")

            await cpu_per_item("render + encrypt the reply", inbounds[3 * quarter :], respond, 1)
            print(f"group commit: {delivery.writes.items} claims and replies in {delivery.writes.batches} transactions")
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
