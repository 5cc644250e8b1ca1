"""Several servers on one database: a claim made through one silences the bot in the other, and a
release through it gives the conversation back to the bot in both; a console's live stream served
by one says who took a conversation over or gave it back through the other. Once with two services
in this process (SQLite, and PostgreSQL with Redis), once with two real ``python -m bot serve``
processes on PostgreSQL and Redis: the console is used through process A, the resident writes to
process B."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.ops.helpers import Cluster
from tests.ops.helpers import pg_cluster as open_pg_cluster
from tests.web.console_util import Client, add_users, login, redis_with


async def open_stream(client: Client) -> aiohttp.ClientResponse:
    """The console's live stream as ``client`` reads it, its ``ready`` event read."""
    resp = await client.http.get(client.base + "/console/events", headers=client.cookie)
    assert resp.status == 200
    assert (await next_event(resp))[0] == "ready"
    return resp


async def next_event(resp: aiohttp.ClientResponse, name: str | None = None) -> tuple[str, Any]:
    """The stream's next event (named ``name``, others skipped): its name and data."""
    event = ""
    async with asyncio.timeout(20):
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event and name in (None, event):
                return event, json.loads(line.removeprefix("data: "))


async def handed(stream: aiohttp.ClientResponse, rid: str) -> None:
    """The stream says the resident's conversation changed hands."""
    while True:
        _, data = await next_event(stream, "takeover")
        if int(rid) in data["residents"]:
            return


async def test_claim_in_one_service_silences_the_bot_in_the_other(service_factory, database_url, fake_api):
    redis = await redis_with(database_url)
    extra = {"BOT_REDIS_URL": redis} if redis else {}
    a = await service_factory(database_url, fake_api, **extra)
    b = await service_factory(database_url, fake_api, **extra)
    await add_users(database_url, ("zhang", "supervisor", {}))
    s = b.sender()
    openid = "o_console_two_0001"
    reply = await s.send(b.http, s.text(openid, "转人工"))
    assert reply.content
    client = await login(a.http, a.base, "zhang")
    status, html, _ = await client.get("/console/handoffs")
    assert status == 200
    resident = re.search(r"/console/conversations/(\d+)", html)
    assert resident
    watcher = await open_stream(await login(b.http, b.base, "zhang"))  # a colleague's page, served by b
    try:
        status, _, _ = await client.post(f"/console/conversations/{resident.group(1)}/claim")
        assert status == 303
        await handed(watcher, resident.group(1))
        silent = await s.send(b.http, s.text(openid, "你好"))
        assert silent.status == 200 and silent.content is None  # b stays silent: a's claim
        status, _, _ = await client.post(f"/console/conversations/{resident.group(1)}/release")
        assert status == 303
        await handed(watcher, resident.group(1))
    finally:
        watcher.close()
    again = await s.send(b.http, s.text(openid, "你好"))
    assert again.content


@pytest.fixture
async def pg_cluster(tmp_path: Path, fake_api: str) -> AsyncIterator[Cluster]:
    """Server processes on one fresh PostgreSQL database and the test Redis database (emptied)."""
    async with open_pg_cluster(tmp_path, fake_api) as c:
        yield c


@pytest.mark.slow
async def test_claim_through_one_process_silences_the_bot_in_another(pg_cluster: Cluster) -> None:
    a = await pg_cluster.serve()
    b = await pg_cluster.serve()  # after a: the schema is upgraded once
    assert a.proc.pid != b.proc.pid
    await add_users(pg_cluster.database_url, ("zhang", "supervisor", {}))
    openid = "o_console_procs_0001"
    status, answer = await pg_cluster.say(b, openid, "转人工")
    assert status == 200 and "登记" in answer

    # The queue of process A shows the request made through process B; claim it there.
    zhang = await login(pg_cluster.http, a.base, "zhang")
    _, page, _ = await zhang.get("/console/handoffs")
    resident = re.search(r"/console/conversations/(\d+)", page)
    assert resident, page
    rid = resident.group(1)
    watcher = await open_stream(await login(pg_cluster.http, b.base, "zhang"))  # a page served by B
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/claim")
    assert status == 303
    await handed(watcher, rid)  # B's stream tells of the claim made through A

    # Process B stays silent; the message is still logged, and A's console shows it.
    status, answer = await pg_cluster.say(b, openid, "楼道的灯坏了三天了")
    assert status == 200 and answer == ""
    _, page, _ = await zhang.get(f"/console/conversations/{rid}/messages")
    assert "楼道的灯坏了三天了" in page
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/reply", {"text": "您好，我是社区的张主管。"})
    assert status == 303
    for _ in range(300):  # sent by whichever process's outbox claims it
        if any("张主管" in t for t in await pg_cluster.sent_texts(openid)):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the reply was not sent: {await pg_cluster.sent_texts(openid)}")

    # Released through A: B's stream tells of it, and B answers again.
    status, _, _ = await zhang.post(f"/console/conversations/{rid}/release")
    assert status == 303
    await handed(watcher, rid)
    watcher.close()
    status, answer = await pg_cluster.say(b, openid, "你好")
    assert status == 200 and answer
    for server in (a, b):
        assert await server.stop() == 0
