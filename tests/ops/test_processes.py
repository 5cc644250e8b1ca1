"""Operations through real processes: ``serve --workers`` (one port, several processes, graceful
stop), ``/healthz``, ``/readyz``, ``/metrics``, JSON logs, the per-resident limit, and two separate
server processes on one PostgreSQL and Redis (WeChat's retries spread over both, a published
knowledge base reaching both)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.storage.db import Database
from bot.storage.models import InboundKey, Message, Ticket
from bot.wechat.fairness import TOO_FAST
from bot.wechat.simulate import next_msg_id
from tests.conftest import REPO
from tests.ops.helpers import Cluster, metric, sqlite_cluster
from tests.ops.helpers import pg_cluster as open_pg_cluster

pytestmark = pytest.mark.slow

NUMBER = re.compile(r"GD\d{8}-\d{4}")


@pytest.fixture
async def cluster(tmp_path: Path, fake_api: str) -> AsyncIterator[Cluster]:
    async with sqlite_cluster(tmp_path, fake_api) as c:
        yield c


@pytest.fixture
async def pg_cluster(tmp_path: Path, fake_api: str) -> AsyncIterator[Cluster]:
    """Processes on one fresh PostgreSQL database and the test Redis database (emptied)."""
    async with open_pg_cluster(tmp_path, fake_api) as c:
        yield c


async def test_workers_share_one_port_log_json_and_stop_gracefully(cluster: Cluster) -> None:
    # Every message's handler takes a second: the stop below comes while they are in flight.
    server = await cluster.serve(
        "--workers", "2", BOT_LOG_FORMAT="json", BOT_FAULT="delivery.before_finish:sleep=1.0"
    )
    async with cluster.http.get(f"{server.base}/healthz") as resp:
        assert resp.status == 200
    async with cluster.http.get(f"{server.base}/readyz") as resp:
        assert resp.status == 200 and (await resp.json())["database"] == "ok"
        assert re.fullmatch(r"[0-9a-f]{16}", resp.headers["X-Request-Id"])
    async with cluster.http.get(f"{server.base}/healthz", headers={"X-Request-Id": "nginx-req-42"}) as resp:
        assert resp.headers["X-Request-Id"] == "nginx-req-42"

    await cluster.worker_pids(server)  # both listening: one still loading would leave every connection to the other
    # New connections from many residents are spread over both workers by the kernel.
    first = await asyncio.gather(
        *(cluster.say(server, f"oWorker{i:024d}", "你好") for i in range(24))
    )
    assert all(status == 200 and "小助手" in text for status, text in first)
    text = await cluster.metrics(server)
    assert metric(text, "bot_intents_total", intent="smalltalk") == 24  # summed over the workers
    assert metric(text, "bot_http_requests_total", route="/wechat", status="200") == 24
    # What makes requests wait, for operators: their batched commits, and the event loop's lag.
    assert metric(text, "bot_group_commit_items_sum", batch="Journal.apply") >= 48  # a claim and a reply each
    assert metric(text, "bot_event_loop_lag_seconds_count") >= 1

    # A report with a phone number, and the stop while messages are being handled.
    flight = [
        asyncio.create_task(cluster.say(server, f"oFlight{i:025d}", f"{i + 1}号楼电梯坏了 电话1391234{i:04d}"))
        for i in range(6)
    ]
    await asyncio.sleep(0.5)
    code = await server.stop()
    assert code == 0, server.log.read_text()[-3000:]
    for i, task in enumerate(flight):
        status, reply = await task
        assert status == 200 and NUMBER.search(reply), (i, reply)  # finished, not cut off

    lines = [line for line in server.lines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    handled = [r for r in records if r["logger"] == "bot.messages"]
    assert len(handled) == 30
    assert len({r["pid"] for r in handled}) == 2, "both workers handled messages"
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["request_id"]) for r in handled)
    assert len({r["request_id"] for r in handled}) == 30
    log_text = server.log.read_text()
    assert "1391234" not in log_text.replace("139****", "")  # phone numbers masked
    assert "oFlight" + "0" * 10 not in log_text  # openids masked


async def test_readyz_names_what_is_unreachable(cluster: Cluster, tmp_path: Path) -> None:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server not installed")
    from tests.conftest import free_port

    port = free_port()
    start = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path), "--daemonize", "no"]  # fmt: skip
    redis_proc = await asyncio.create_subprocess_exec(*start, stdout=asyncio.subprocess.DEVNULL)
    try:
        cluster.redis_url = f"redis://127.0.0.1:{port}/0"
        server = await cluster.serve()
        status, reply = await cluster.say(server, "oReady" + "0" * 22, "楼道灯坏了")
        assert "具体位置" in reply
        redis_proc.terminate()
        await redis_proc.wait()
        async with cluster.http.get(f"{server.base}/readyz") as resp:
            assert resp.status == 503
            body = await resp.json()
            assert body["unavailable"].keys() == {"redis"} and "redis" in body["message"]
        async with cluster.http.get(f"{server.base}/healthz") as resp:
            assert resp.status == 200
        # Redis away: residents are still answered (a conversation in progress starts again).
        for text in ("3号楼", "你好"):
            status, reply = await cluster.say(server, "oReady" + "0" * 22, text)
            assert status == 200 and reply, reply
        redis_proc = await asyncio.create_subprocess_exec(*start, stdout=asyncio.subprocess.DEVNULL)
        for _ in range(100):
            async with cluster.http.get(f"{server.base}/readyz") as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("not ready again after Redis came back")
        # Back: a conversation keeps its state across messages again.
        assert "具体位置" in (await cluster.say(server, "oReady" + "0" * 22, "路灯不亮了"))[1]
        assert NUMBER.search((await cluster.say(server, "oReady" + "0" * 22, "5号楼"))[1])
    finally:
        if redis_proc.returncode is None:
            redis_proc.terminate()
            await redis_proc.wait()


async def test_one_flooding_resident_is_limited_across_processes(pg_cluster: Cluster) -> None:
    a = await pg_cluster.serve(BOT_RESIDENT_RATE="4")
    b = await pg_cluster.serve(BOT_RESIDENT_RATE="4")
    flooder = "oFlood" + "0" * 22
    replies = []
    for i in range(10):  # alternating between the two processes
        replies.append(await pg_cluster.say(a if i % 2 else b, flooder, "你好"))  # new MsgIds
    assert all(status == 200 for status, _ in replies)
    texts = [text for _, text in replies]
    assert all("小助手" in t for t in texts[:4]), texts
    assert texts[4] == TOO_FAST  # told once
    assert texts[5:] == [""] * 5  # then answered with nothing ("success")
    # Others are not held back by the flood.
    for i in range(3):
        status, text = await pg_cluster.say(a if i % 2 else b, f"oCalm{i:023d}", "你好")
        assert status == 200 and "小助手" in text
    assert metric(await pg_cluster.metrics(a), "bot_rate_limited_total", limit="resident") >= 1


async def test_retries_spread_over_two_processes_make_one_record_and_one_reply(pg_cluster: Cluster) -> None:
    a = await pg_cluster.serve()
    b = await pg_cluster.serve()
    openid = "oRetry" + "0" * 22
    msg_id = next_msg_id()
    sender = pg_cluster.sender(a)
    fields = sender.text(openid, "7号楼门口路灯不亮了", msg_id=msg_id)
    query, body = sender.build(fields)

    async def post(base: str) -> str:
        async with pg_cluster.http.post(f"{base}/wechat", params=query, data=body.encode()) as resp:
            assert resp.status == 200
            return str(sender.read_reply(resp.status, await resp.text()).content or "")

    # WeChat's first request and its retries, at once and then again, on both processes.
    replies = await asyncio.gather(*(post(s.base) for s in (a, b, a, b)))
    replies += [await post(b.base), await post(a.base)]
    numbers = {m.group(0) for r in replies if (m := NUMBER.search(r))}
    assert len(numbers) == 1, replies
    assert len(set(replies)) == 1, "every retry replays the one stored reply"
    db = Database(pg_cluster.database_url)
    try:
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Ticket)) == 1
            assert await session.scalar(select(func.count()).select_from(InboundKey)) == 1
            inbound = select(func.count()).select_from(Message).where(Message.direction == "in")
            assert await session.scalar(inbound) == 1
    finally:
        await db.dispose()
    assert await pg_cluster.sent_texts(openid) == []  # answered passively, nothing pushed twice


async def test_a_published_knowledge_base_reaches_both_processes(pg_cluster: Cluster, tmp_path: Path) -> None:
    entries = tmp_path / "entries"
    shutil.copytree(REPO / "knowledge" / "entries", entries)
    a = await pg_cluster.serve(BOT_KNOWLEDGE_DIR=str(entries))
    b = await pg_cluster.serve(BOT_KNOWLEDGE_DIR=str(entries))
    question = "社区的游泳馆几点开门"
    for i, s in enumerate((a, b)):
        assert "周二到周日" not in (await pg_cluster.say(s, f"oPool{i:023d}", question))[1]
    (entries / "pool.yml").write_text(
        "theme: 游泳馆\ndefaults:\n  department: 社区服务中心\n  reviewed: 2026-12-01\nentries:\n"
        "  - id: pool-hours\n    question: 社区游泳馆几点开门？\n"
        "    alternatives: [游泳馆开放时间, 游泳馆什么时候开, 去游泳馆几点能进]\n"
        "    answer: 社区游泳馆周二到周日 9:00–21:00 开放，周一闭馆清洁。\n"
        "    tags: [游泳馆, 开放时间]\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATABASE_URL=pg_cluster.database_url, BOT_KNOWLEDGE_DIR=str(entries))
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "kb", "reload"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for i, s in enumerate((a, b)):
        for attempt in range(300):
            _, reply = await pg_cluster.say(s, f"oPoolAfter{i}{attempt:017d}", question)
            if "周二到周日" in reply:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"process {i} still answers the old knowledge base: {reply}")


@pytest.mark.parametrize("outage", [{"status": 503, "seconds": 4}, {"hang": 11, "seconds": 12}], ids=["failing", "timing-out"])
async def test_wechat_api_outage_loses_no_answer(cluster: Cluster, outage: dict[str, float]) -> None:
    # Every answer goes out as a customer-service message (the reply budget runs out first), while
    # WeChat's API fails (or hangs past the client's 10-second timeout) for a while.
    server = await cluster.serve(BOT_REPLY_BUDGET="0.1", BOT_FAULT="delivery.before_finish:sleep=0.3")
    async with cluster.http.post(
        f"{cluster.fake_api}/fake/errors", json={"endpoint": "message/custom/send", **outage}
    ) as resp:
        assert resp.status == 200
    residents = [f"oOutage{i:021d}" for i in range(3)]
    for i, openid in enumerate(residents):
        status, reply = await cluster.say(server, openid, f"{i + 2}号楼门口路灯不亮了")
        assert status == 200 and reply == ""  # "success": the answer follows through the outbox
    # Meanwhile the service keeps answering what it can (a question answered from the database).
    status, _ = await cluster.say(server, "oMeanwhile" + "0" * 18, "你好")
    assert status == 200
    for _ in range(600):
        sent = {openid: await cluster.sent_texts(openid) for openid in residents}
        if all(sent.values()):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # nothing more arrives: each answer once
    for openid in residents:
        texts = await cluster.sent_texts(openid)
        assert len(texts) == 1 and NUMBER.search(texts[0]), (openid, texts)
    assert metric(await cluster.metrics(server), "bot_wechat_api_errors_total", kind="unavailable") >= 1


async def test_postgres_connections_dropped_mid_conversation(pg_cluster: Cluster) -> None:
    import asyncpg

    server = await pg_cluster.serve()
    name = pg_cluster.database_url.rsplit("/", 1)[1]

    async def drop_all() -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", name
            )
        finally:
            await conn.close()
        assert killed >= 1

    openid = "oDropped" + "0" * 20
    assert "具体位置" in (await pg_cluster.say(server, openid, "楼道灯坏了好几天了"))[1]
    await drop_all()
    status, reply = await pg_cluster.say(server, openid, "6号楼")
    assert status == 200 and "联系电话" in reply, reply  # the conversation went on (物业服务 visits: a phone)
    await drop_all()
    status, reply = await pg_cluster.say(server, openid, "不留")
    assert status == 200 and NUMBER.search(reply), reply  # to its ticket
    # The message right after the drop may find its pooled connection dead before the server has
    # read the goodbye (asyncpg refuses the statement unsent): it is answered all the same.
    for i in range(6):
        await drop_all()
        status, reply = await pg_cluster.say(server, f"oAfterDrop{i:018d}", "你好")
        assert status == 200 and "小助手" in reply, (i, status, reply)


async def test_workers_stop_when_their_supervisor_is_killed(cluster: Cluster) -> None:
    # SIGKILL leaves the supervisor no chance to stop its workers: they notice and stop on their
    # own instead of serving on as orphans.
    server = await cluster.serve("--workers", "2")
    pids = await cluster.worker_pids(server)
    server.proc.kill()
    await server.proc.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    for _ in range(600):
        if not any(alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.1)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:  # don't leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, "workers kept serving after their supervisor was killed"
