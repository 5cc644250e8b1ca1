"""Publishing reaches every worker of ``python -m bot serve --workers 2`` (one port, two processes):
both report serving the new version, and a resident's message is classified the new way by each."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import make_tokens
from tests.ops.helpers import Cluster, sqlite_cluster

NOT_UNDERSTOOD = "电视老是没信号"
_msg_ids = itertools.count(66_000_001)


@pytest.fixture
async def cluster(tmp_path: Path, fake_api: str) -> AsyncIterator[Cluster]:
    async with sqlite_cluster(tmp_path, fake_api) as c:
        yield c


@pytest.mark.timeout(300)
async def test_every_worker_serves_the_published_version(cluster: Cluster) -> None:
    server = await cluster.serve("--workers", "2", BOT_LOG_FORMAT="json")
    await cluster.worker_pids(server)
    token = (await make_tokens(cluster.database_url))["operator"]
    auth = {"Authorization": f"Bearer {token}", "Connection": "close"}  # a new connection each: any worker

    async def post(path: str, body: dict[str, object]) -> dict[str, object]:
        async with cluster.http.post(server.base + "/api/v1" + path, json=body, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())

    await post("/tuning/draft/changes", {"changes": [{"op": "label", "text": NOT_UNDERSTOOD, "intent": "complaint"}]})
    version = (await post("/tuning/publish", {"confirm": True}))["version"]
    serving: dict[int, object] = {}
    while len([pid for pid, v in serving.items() if v == version]) < 2:
        async with cluster.http.get(server.base + "/api/v1/tuning/draft", headers=auth) as resp:
            draft = await resp.json()
        serving[draft["pid"]] = draft["served"]
    # each worker classifies the message the new way: concurrent residents are spread over both
    before = len(server.lines())
    replies = await asyncio.gather(*(cluster.say(server, f"oTuningWorkers{n:012d}", NOT_UNDERSTOOD, msg_id=next(_msg_ids))
                                     for n in range(24)))
    assert all(status == 200 for status, _ in replies)
    handled = [json.loads(line) for line in server.lines()[before:] if line.startswith("{")]
    handled = [r for r in handled if r["logger"] == "bot.messages" and r["message"].startswith("in ")]
    assert len(handled) == 24
    assert len({r["pid"] for r in handled}) == 2, "both workers handled messages"
    assert all(" intent=complaint " in r["message"] for r in handled), [r["message"] for r in handled]
    assert set(serving) == {r["pid"] for r in handled}
