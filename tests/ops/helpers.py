"""Real server processes for the operations tests: ``python -m bot serve`` (with or without
``--workers``) in a subprocess on loopback, WeChat's side of the wire, the fake WeChat API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.wechat.simulate import WeChatSender
from tests.conftest import (
    AES_KEY,
    APPID,
    REDIS_URL,
    REPO,
    SECRET,
    TOKEN,
    create_pg_database,
    drop_pg_database,
    free_port,
    need_service,
)  # fmt: skip


@dataclass
class Server:
    proc: asyncio.subprocess.Process
    base: str
    log: Path

    async def stop(self) -> int:
        """SIGTERM, as systemd stops the service; the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 60)

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()


@dataclass
class Cluster:
    """Server processes sharing one database (and Redis, when given)."""

    tmp: Path
    database_url: str
    fake_api: str
    http: aiohttp.ClientSession
    redis_url: str = ""
    servers: list[Server] = field(default_factory=list)

    async def serve(self, *args: str, port: int | None = None, ready: bool = True, **env: Any) -> Server:
        port = port or free_port()
        values = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "PROMETHEUS_"))},
            "BOT_DATABASE_URL": self.database_url,
            "BOT_WECHAT_TOKEN": TOKEN,
            "BOT_WECHAT_APPID": APPID,
            "BOT_WECHAT_SECRET": SECRET,
            "BOT_WECHAT_AES_KEY": AES_KEY,
            "BOT_WECHAT_API_BASE": self.fake_api,
            "BOT_DATA_DIR": str(self.tmp / "data"),
            "BOT_OUTBOX_INTERVAL": "0.1",
            "BOT_LOG_LEVEL": "INFO",
        }
        if self.redis_url:
            values["BOT_REDIS_URL"] = self.redis_url
        values.update({k: str(v) for k, v in env.items()})
        log = self.tmp / f"server-{len(self.servers)}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port), *args,
                cwd=REPO, env=values, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        server = Server(proc, f"http://127.0.0.1:{port}", log)
        self.servers.append(server)
        if ready:
            await self.wait_ready(server)
        return server

    async def wait_ready(self, server: Server) -> None:
        for _ in range(1200):
            if server.proc.returncode is not None:
                raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.log.read_text()[-3000:]}")
            try:
                async with self.http.get(f"{server.base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"server did not start:\n{server.log.read_text()[-3000:]}")

    def sender(self, server: Server) -> WeChatSender:
        return WeChatSender(f"{server.base}/wechat", TOKEN, APPID, AES_KEY, mode="safe")

    async def say(self, server: Server, openid: str, text: str, msg_id: int | None = None) -> tuple[int, str]:
        s = self.sender(server)
        reply = await s.send(self.http, s.text(openid, text, msg_id=msg_id))
        return reply.status, str(reply.content or "")

    async def sent_texts(self, openid: str) -> list[str]:
        async with self.http.get(f"{self.fake_api}/fake/sent", params={"openid": openid}) as resp:
            data = await resp.json()
        return [m["payload"]["text"]["content"] for m in data["messages"] if "text" in m["payload"]]

    async def metrics(self, server: Server) -> str:
        async with self.http.get(f"{server.base}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()

    async def worker_pids(self, server: Server, count: int = 2) -> list[int]:
        """The pids of ``serve --workers`` processes, once ``count`` of them listen (each prints one
        line when ready; a worker still loading its models takes no connections)."""
        pids: list[int] = []
        for _ in range(1200):
            pids = [int(m) for m in re.findall(r"worker (\d+) listening", server.log.read_text())]
            if len(pids) >= count:
                return pids
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(pids)} of {count} workers listening:\n{server.log.read_text()[-2000:]}")

    async def close(self) -> None:
        for server in self.servers:
            if server.proc.returncode is None:
                server.proc.kill()
                await server.proc.wait()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample = head.split("{", 1)
        if sample[0] != name:
            continue
        have = sample[1] if len(sample) > 1 else ""
        if all(f'{k}="{v}"' in have for k, v in labels.items()):
            total += float(value)
    return total


@contextlib.asynccontextmanager
async def sqlite_cluster(tmp: Path, fake_api: str) -> AsyncIterator[Cluster]:
    """Server processes on one SQLite file."""
    async with aiohttp.ClientSession() as http:
        c = Cluster(tmp, f"sqlite+aiosqlite:///{tmp / 'bot.sqlite3'}", fake_api, http)
        try:
            yield c
        finally:
            await c.close()


@contextlib.asynccontextmanager
async def pg_cluster(tmp: Path, fake_api: str, *, redis: bool = True) -> AsyncIterator[Cluster]:
    """Server processes on one fresh PostgreSQL database, and the test Redis database (emptied)."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    redis_url = ""
    if redis:
        need_service("Redis", "127.0.0.1", 6379)
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
        redis_url = REDIS_URL
    name = await create_pg_database()
    try:
        async with aiohttp.ClientSession() as http:
            c = Cluster(tmp, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", fake_api, http, redis_url)
            try:
                yield c
            finally:
                await c.close()
    finally:
        await drop_pg_database(name)
