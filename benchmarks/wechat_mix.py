"""The realistic mix: residents' conversations through ``/wechat`` in safe mode, against the echo server.

Every resident holds one conversation, its messages sent one after another (each waits for the
previous reply), while ``--concurrency`` connections serve many residents at once. The
conversations cover every intent and carry multi-turn flows to their end:

* points and the mall: balance, the mall, a redemption confirmed, "my coupons" (points seeded
  through the JSON API before the measured phase: ``POST /api/v1/points/adjustments`` with
  ``notify: false``, so no resident is sent a message about it);
* courses: a question about a course, a search, details, a booking, "my bookings";
* complaints: a report asked for its place and phone until it is a ticket, a report with the place
  in it, progress (查进度);
* knowledge questions (and their "was this useful" answer), thanks, 转人工, out of scope. Each resident
  asks knowledge questions of its own (``mix_questions.py``): a question asked before is cached.

Before the measured phase (not timed): the schema and the demo data (``python -m bot demo load``),
a supervisor token (``python -m bot token create``), the demo coupon's stock and course sessions'
capacity raised through the API (so 2,000 residents are not all told "sold out"), every resident
following the account (a ``subscribe`` event, which creates the resident), and 100 points for the
residents who will redeem. After it, every reply is decrypted and checked against what the step
expects (a ticket number, 兑换成功, 预约成功 …): a benchmark whose flows stopped half-way would
measure something else.

The echo server (``echo_server.py``: aiohttp + wechatpy, no storage) answers the same messages in
the same run. ``--by-step`` then has as many other residents hold the same conversations in
lockstep (step k of every conversation, all replies in, then step k + 1), reading the server's CPU
between steps: a table of server CPU per message for each (conversation, step) and its share of the
total, to see where the mix's CPU goes. ``--secondary`` adds the old rows: a greeting only and a menu click only
(``wechat_endpoint.load``). Server CPU per message counts every process of the server (with
``--workers``, the supervisor and its workers); beside it, the time the server's threads spent
runnable but waiting for a core (``/proc/<pid>/task/*/schedstat``): on a loaded machine, what
looks like waiting on the database is often this. Each measured phase starts with a line
``<label>: measuring …``, to attach a profiler (``py-spy record -p <server's pid>``) at that
moment. ``--by-step --count-statements`` adds each step's SQL statements and transactions per
message (a transaction's BEGIN counts as a statement).

On PostgreSQL + Redis it also prints what the database and Redis did per message
(:class:`Backstage`): the backends' own CPU, commits and rollbacks (``pg_stat_database``), table
scans and rows written (``pg_stat_user_tables``), backends waiting on a lock or idle inside a
transaction, and Redis's commands with their cost inside Redis (``INFO commandstats``) and Redis's
CPU. Redis's figures count the whole server: run it without other users of that Redis.

    .venv/bin/python benchmarks/wechat_mix.py [--residents 2000] [--concurrency 32] [--rounds 1]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1/bench_mix --redis-url redis://127.0.0.1:6379/7]
        [--workers 2] [--secondary] [--by-step] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from mix_questions import question as pooled_question  # noqa: E402
from wechat_endpoint import (  # noqa: E402
    AES_KEY,
    APPID,
    TOKEN,
    cpu_seconds,
    free_port,
    load,
    run_server,
    wait_ready,
)

from bot.wechat.simulate import WeChatSender  # noqa: E402

ACCOUNT = "gh_community0001"


@dataclass(frozen=True)
class Step:
    """One message of a conversation and what its reply must show (a regular expression)."""

    say: str
    expect: str = ""
    kind: str = "text"  # text, or "subscribe" (the event)
    # A knowledge question drawn from this pool of ``mix_questions`` (``say`` and ``expect`` unused):
    # each resident asks its own, as residents do, so the mix pays for searches not asked before.
    pool: str = ""


@dataclass(frozen=True)
class Conversation:
    name: str
    weight: int  # how many of every 20 residents hold it
    steps: tuple[Step, ...]
    seed_points: int = 0  # points added through the API before the measured phase


def _conversations() -> list[Conversation]:
    """Residents' conversations; ``{b}`` is a building number, ``{phone}`` a phone number."""
    thanks = Step("谢谢", "不客气")
    return [
        Conversation(
            "points and a redemption",
            4,
            (
                Step("你好", "小助手"),
                Step("我还有多少积分", "积分"),
                Step("积分商城", "积分商城"),
                Step("兑换理发立减10元", "确认"),
                Step("确认", "兑换成功"),
                Step("我的券", "理发立减10元"),
                thanks,
            ),
            seed_points=100,
        ),
        Conversation(
            "a course booking",
            3,
            (
                Step("书法课什么时候上课", "书法班"),
                Step("我想报名花艺课", "花艺入门"),
                Step("1", "预约"),
                Step("预约", "预约成功"),
                Step("我的预约", "已预约"),
                thanks,
            ),
        ),
        Conversation(
            "a complaint asked for its place and phone",
            3,
            (
                Step("楼道灯坏了好几天了一直没人修", "具体位置"),
                Step("{b}号楼", "联系电话"),
                Step("{phone}", r"GD\d{8}"),
                Step("查进度", r"GD\d{8}"),
                thanks,
            ),
        ),
        Conversation(
            "a complaint with its place",
            2,
            (
                Step("{b}号楼电梯又停了", "联系电话"),  # 物业服务's staff visit: a phone is asked for
                Step("不留", r"GD\d{8}"),
                Step("谢谢你啊", "不客气"),
            ),
        ),
        Conversation(
            "knowledge questions",
            5,
            (
                Step("", pool="first"),
                Step("1", ""),
                Step("", pool="second"),
                Step("", pool="third"),
                Step("谢谢", "不客气|反馈"),  # thanks after an answer is also its feedback
            ),
        ),
        Conversation(
            "out of scope, 转人工, a question on coupons",
            3,
            (
                Step("今天天气怎么样", "查不到"),
                Step("转人工", "工作人员"),
                Step("理发券还有吗", "理发"),
            ),
        ),
    ]


CONVERSATIONS = _conversations()
PLAN = [c for c in CONVERSATIONS for _ in range(c.weight)]


@dataclass
class Resident:
    openid: str
    conversation: Conversation
    number: int
    requests: list[tuple[dict[str, str], str]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)


def residents(n: int, tag: str) -> list[Resident]:
    out = []
    for i in range(n):
        conv = PLAN[i % len(PLAN)]
        out.append(Resident(f"o_mix_{tag}_{i:05d}", conv, i))
    return out


def build_requests(sender: WeChatSender, people: list[Resident]) -> int:
    """Every resident's messages, signed and encrypted now (outside the measured time)."""
    total = 0
    for r in people:
        sign(sender, r)
        total += len(r.requests)
    return total


def sign(sender: WeChatSender, r: Resident) -> None:
    """The resident's messages signed and encrypted with the current time, as WeChat does when it
    sends: a run longer than the server's timestamp window (``BOT_TIMESTAMP_WINDOW``, 5 minutes)
    would otherwise send its last residents' messages stale (refused with 403)."""
    r.requests = [request(sender, r, k) for k in range(len(r.conversation.steps))]
    r.replies = []


def request(sender: WeChatSender, r: Resident, k: int) -> tuple[dict[str, str], str]:
    """Step ``k`` of the resident's conversation, signed and encrypted now."""
    return sender.build(sender.text(r.openid, said(r, k)[0]))


def said(r: Resident, k: int) -> tuple[str, str]:
    """What the resident says at step ``k`` and what its reply must show."""
    step = r.conversation.steps[k]
    if step.pool:  # the resident's place among those holding this conversation picks its question
        slot = PLAN.index(r.conversation)
        nth = r.number // len(PLAN) * r.conversation.weight + r.number % len(PLAN) - slot
        text, _entry, word = pooled_question(step.pool, nth)
        return text, re.escape(word)
    return step.say.format(b=r.number % 30 + 1, phone=f"138{r.number:08d}"), step.expect


async def post_timed(
    http: aiohttp.ClientSession, url: str, q: dict[str, str], body: str, latencies: list[float]
) -> tuple[int, str]:
    """POST one signed message; its latency goes into ``latencies``; (status, reply body)."""
    t0 = time.perf_counter()
    async with http.post(url, params=q, data=body.encode()) as resp:
        text = await resp.text()
    latencies.append(time.perf_counter() - t0)
    return resp.status, text


async def converse(
    url: str, people: list[Resident], concurrency: int, pid: int, label: str, keep: bool,
    backstage: Backstage | None = None, sender: WeChatSender | None = None,
) -> dict[str, float]:
    """Each worker takes the next resident and holds its whole conversation, message by message
    (signed when the conversation starts when ``sender`` is given)."""
    latencies: list[float] = []
    errors = 0
    failures: Counter[str] = Counter()  # what came back instead of an encrypted reply
    queue = list(reversed(people))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal errors
            while queue:
                r = queue.pop()
                if sender is not None:
                    sign(sender, r)
                for q, body in r.requests:
                    status, text = await post_timed(http, url, q, body, latencies)
                    if status != 200 or "<Encrypt>" not in text:
                        errors += 1
                        failures[f"HTTP {status}" if status != 200 else f"200 {text[:20]!r}"] += 1
                    if keep:
                        r.replies.append(text)

        if backstage is not None:
            await backstage.start()
        print(f"{label}: measuring {len(people)} residents' conversations", flush=True)
        cpu_before = tree_cpu(pid)
        queued_before = run_queue_seconds(tree_pids(pid))
        start, started_at = time.perf_counter(), time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, ended_at = time.perf_counter() - start, time.time()
        cpu = tree_cpu(pid) - cpu_before
        queued = run_queue_seconds(tree_pids(pid)) - queued_before
        if backstage is not None:
            await backstage.stop()
    n = len(latencies)
    latencies.sort()
    pct = lambda p: latencies[min(n - 1, int(p / 100 * n))] * 1000  # noqa: E731
    result = {
        "rps": n / elapsed,
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "errors": errors,
        "cpu_ms": cpu / n * 1000,
        "queued_ms": queued / n * 1000,
        "messages": n,
        "load": os.getloadavg()[0],
        "started_at": started_at,  # wall time of the measured phase (--cpu-clock keeps what fell in it)
        "ended_at": ended_at,
    }
    print(
        f"{label:<22} {result['rps']:7.0f} msg/s  p50 {result['p50']:6.1f} ms  p90 {result['p90']:6.1f} ms  "
        f"p99 {result['p99']:6.1f} ms  server CPU {result['cpu_ms']:.2f} ms/msg  ({n} messages, errors {errors})",
        flush=True,
    )
    print(
        f"    server waited {result['queued_ms']:.2f} ms/msg for a core (run queue, all threads); "
        f"CPU {cpu / elapsed:.2f} cores; load average {result['load']:.1f}",
        flush=True,
    )
    if backstage is not None:
        result.update(backstage.report(n, elapsed))
    if failures:
        print("    not an encrypted reply: " + ", ".join(f"{k} × {v}" for k, v in failures.most_common()), flush=True)
    return result


@dataclass
class StepCost:
    conversation: Conversation
    step: int  # 0-based
    messages: int
    cpu: float  # server CPU seconds between the step's first request and its last reply
    seconds: float
    p99: float  # ms
    # --count-statements: statements, transactions begun, and the round trips on PostgreSQL + Redis
    # (statements prepared, exchanges with PostgreSQL, with Redis), as in benchmarks/counting
    sql: tuple[int, ...] | None = None


async def converse_by_step(
    url: str, people: list[Resident], concurrency: int, pid: int, sender: WeChatSender, counts: Path | None = None
) -> list[StepCost]:
    """``--by-step``: the same conversations in lockstep, for attribution. For each step k, and
    within it each conversation in turn, every resident holding that conversation sends its step k
    (signed now) over ``concurrency`` connections; when all replies are in, the server's CPU time is
    read. It is counted in clock ticks (10 ms; per-thread ``schedstat`` would be finer but loses the
    threads that end, such as an overflow connection's aiosqlite thread), so a step's figure is
    good to about 10 ms over its messages: 2,000 residents give each step 200 messages or more. So each (conversation, step) gets the server CPU it cost, all else being equal
    (the same residents, the same concurrency). Idle work in between (pollers, the outbox sending a
    deferred answer or a QR image) lands in the step that is running when it happens. With
    ``counts`` (``--count-statements``), also the SQL statements and transactions each step sent
    (read 0.3 s after its last reply, when the server's counts file has been written again)."""
    groups = {c.name: [r for r in people if r.conversation is c] for c in CONVERSATIONS}
    costs: list[StepCost] = []
    errors = 0

    async def phase(http: aiohttp.ClientSession, conv: Conversation, k: int) -> None:
        nonlocal errors
        group = groups[conv.name]
        queue = [(r, request(sender, r, k)) for r in reversed(group)]
        replies: dict[str, str] = {}
        latencies: list[float] = []

        async def worker() -> None:
            nonlocal errors
            while queue:
                r, (q, body) = queue.pop()
                status, text = await post_timed(http, url, q, body, latencies)
                if status != 200 or "<Encrypt>" not in text:
                    errors += 1
                replies[r.openid] = text

        n = len(queue)
        sql_before = _sql_counts(counts)
        cpu_before, start = tree_cpu(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - start, tree_cpu(pid) - cpu_before
        sql = None
        if counts is not None:
            await asyncio.sleep(0.3)
            after = _sql_counts(counts)
            sql = tuple(a - b for a, b in zip(after, sql_before, strict=True))
        for r in group:
            r.replies.append(replies.get(r.openid, ""))
        latencies.sort()
        costs.append(StepCost(conv, k, n, cpu, seconds, latencies[min(n - 1, int(0.99 * n))] * 1000, sql))

    for r in people:
        r.replies = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        for k in range(max(len(c.steps) for c in CONVERSATIONS)):
            for conv in CONVERSATIONS:
                if k < len(conv.steps) and groups[conv.name]:
                    await phase(http, conv, k)
    print_by_step(costs, errors)
    return costs


def print_by_step(costs: list[StepCost], errors: int) -> None:
    total_cpu = sum(c.cpu for c in costs)
    total_n = sum(c.messages for c in costs)
    print(
        f"\nby step (lockstep, {total_n} messages, errors {errors}): server CPU "
        f"{total_cpu / max(1, total_n) * 1000:.2f} ms/msg over all; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    sql = any(c.sql is not None for c in costs)
    pg = any(c.sql is not None and any(c.sql[4:]) for c in costs)  # PostgreSQL + Redis: round trips too
    print(
        f"  {'conversation':<44} {'step':<22} {'msgs':>5} {'CPU ms/msg':>10} {'share':>6} {'p99 ms':>7}"
        + ("  SQL/msg  tx/msg" if sql else "")
        + ("  prep/msg  PG trips  Redis trips" if pg else "")
    )
    for c in sorted(costs, key=lambda c: (CONVERSATIONS.index(c.conversation), c.step)):
        print(
            f"  {_column(c.conversation.name, 44)} {c.step + 1:>2} {_column(c.conversation.steps[c.step].say, 19)} "
            f"{c.messages:>5} {c.cpu / c.messages * 1000:10.2f} {c.cpu / max(total_cpu, 1e-9) * 100:5.1f}% "
            f"{c.p99:7.1f}"
            + (f"  {c.sql[0] / c.messages:7.2f} {c.sql[1] / c.messages:7.2f}" if c.sql is not None else "")
            + (
                f"  {c.sql[4] / c.messages:8.2f} {c.sql[5] / c.messages:9.2f} {c.sql[6] / c.messages:12.2f}"
                if pg and c.sql is not None
                else ""
            ),
            flush=True,
        )


COUNTED = 7  # numbers per process in a counts file (benchmarks/counting/sitecustomize.py: FIELDS)


def _sql_counts(counts: Path | None) -> tuple[int, ...]:
    """What the server's processes counted so far (``--count-statements``): statements, transactions
    begun, committed, rolled back, statements prepared on PostgreSQL, round trips to PostgreSQL and
    to Redis (see benchmarks/counting)."""
    total = [0] * COUNTED
    if counts is not None:
        for f in counts.iterdir():
            if f.name.isdigit():
                for i, v in enumerate(f.read_text().split()[:COUNTED]):
                    total[i] += int(v)
    return tuple(total)


def _column(text: str, width: int) -> str:
    """``text`` cut and padded to ``width`` terminal columns (CJK characters take two)."""
    out, used = "", 0
    for ch in text:
        w = 2 if ord(ch) > 0x2E80 else 1
        if used + w > width:
            break
        out, used = out + ch, used + w
    return out + " " * (width - used)


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and every process below it (a supervisor and its workers)."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            continue
    return total


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def run_queue_seconds(pids: list[int]) -> float:
    """Seconds the threads of ``pids`` spent runnable but waiting for a core (``schedstat``)."""
    total = 0
    for p in pids:
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for t in tasks:
            try:
                total += int((t / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


class Backstage:
    """What the database and Redis did during the measured phase (PostgreSQL + Redis runs).

    * PostgreSQL: ``pg_stat_database`` deltas of the benchmark's database (commits, rollbacks,
      sessions opened, time its backends were active and idle in a transaction), the CPU of its
      backend processes (``/proc``, sampled every 0.2 s by their command line, so a backend that
      lives less than that is counted from its first sample), and how many backends were waiting
      on a lock or idle inside a transaction at each sample; ``pg_stat_user_tables`` deltas
      (rows written, index and sequential scans).
    * Redis: ``INFO commandstats`` deltas (calls and Redis's own microseconds per command) and the
      server's CPU (``INFO cpu``). Redis is shared by the machine's other users: its figures count
      every database, so run it alone.
    """

    def __init__(self, database_url: str, redis_url: str, counts: Path | None = None) -> None:
        self.pg = (
            database_url.replace("postgresql+asyncpg://", "postgresql://")
            if database_url.startswith("postgresql")
            else ""
        )
        self.dbname = self.pg.rsplit("/", 1)[1].split("?")[0] if self.pg else ""
        self.redis_url = redis_url
        self.counts = counts  # the server's statement counts (--count-statements), one file per process
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}
        self.backend_cpu: dict[int, tuple[float, float]] = {}  # pid -> (first seen, last seen)
        self.samples = 0
        self.lock_waits = 0
        self.idle_in_tx = 0
        self.active = 0
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None  # to the benchmark's database: its tables' statistics
        self._watch: Any = None  # to "postgres": the sampling, so it adds no commits to the benchmark's database

    async def _snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.counts is not None:
            out["sql"] = _sql_counts(self.counts)
        if self._conn is not None:
            row = await self._watch.fetchrow(
                "select xact_commit, xact_rollback, sessions, active_time, idle_in_transaction_time,"
                " tup_inserted, tup_updated, tup_deleted, tup_fetched from pg_stat_database where datname = $1",
                self.dbname,
            )
            out["pg"] = dict(row)
            tables = await self._conn.fetch(
                "select relname, coalesce(seq_scan,0) seq, coalesce(idx_scan,0) idx,"
                " n_tup_ins + n_tup_upd + n_tup_del + n_tup_hot_upd * 0 written from pg_stat_user_tables"
            )
            out["tables"] = {t["relname"]: (t["seq"], t["idx"], t["written"]) for t in tables}
        if self.redis_url:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(self.redis_url)
            try:
                out["commands"] = {
                    k: (v["calls"], v["usec"]) for k, v in (await client.info("commandstats")).items()
                }
                cpu = await client.info("cpu")
                out["redis_cpu"] = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
            finally:
                await client.aclose()
        return out

    def _backends(self) -> dict[int, float]:
        found: dict[int, float] = {}
        marker = f" {self.dbname} ".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (
                    marker in (entry / "cmdline").read_bytes()
                    and b"postgres:" in (entry / "cmdline").read_bytes()
                ):
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
            except OSError:
                continue
        return found

    async def start(self) -> None:
        if self.pg:
            import asyncpg

            self._conn = await asyncpg.connect(self.pg)
            self._watch = await asyncpg.connect(self.pg.rsplit("/", 1)[0] + "/postgres")
        self.before = await self._snapshot()
        for pid, cpu in self._backends().items():
            self.backend_cpu[pid] = (cpu, cpu)
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            for pid, cpu in self._backends().items():
                first = self.backend_cpu.get(pid, (0.0, 0.0))[0]  # a new backend: counted from 0
                self.backend_cpu[pid] = (first, cpu)
            if self._watch is not None:
                rows = await self._watch.fetch(
                    "select state, wait_event_type from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
                    self.dbname,
                )
                self.samples += 1
                self.lock_waits += sum(1 for r in rows if r["wait_event_type"] == "Lock")
                self.idle_in_tx += sum(
                    1 for r in rows if (r["state"] or "").startswith("idle in transaction")
                )
                self.active += sum(
                    1 for r in rows if r["state"] == "active" and r["wait_event_type"] != "Lock"
                )

    async def stop(self) -> None:
        for pid, cpu in self._backends().items():
            self.backend_cpu[pid] = (self.backend_cpu.get(pid, (0.0, 0.0))[0], cpu)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._conn is not None:
            await asyncio.sleep(0.6)  # the statistics of backends that just went idle reach the collector
        self.after = await self._snapshot()
        if self._conn is not None:
            await self._conn.close()
            await self._watch.close()

    def report(self, messages: int, seconds: float) -> dict[str, float]:
        """Per-message figures, printed and returned."""
        out: dict[str, float] = {}
        lines = []
        if "pg" in self.after:
            d = {k: self.after["pg"][k] - self.before["pg"][k] for k in self.after["pg"]}
            cpu = sum(last - first for first, last in self.backend_cpu.values())
            out.update(
                pg_cpu_ms=cpu / messages * 1000,
                commits=d["xact_commit"] / messages,
                commits_per_s=d["xact_commit"] / seconds,
                rollbacks=d["xact_rollback"] / messages,
                sessions=d["sessions"],
                pg_active_ms=d["active_time"] / messages,
                pg_idle_in_tx_ms=d["idle_in_transaction_time"] / messages,
                lock_waiting=self.lock_waits / max(1, self.samples),
                idle_in_tx=self.idle_in_tx / max(1, self.samples),
                pg_busy=self.active / max(1, self.samples),
            )
            lines.append(
                f"    PostgreSQL: backend CPU {out['pg_cpu_ms']:.2f} ms/msg ({len(self.backend_cpu)} backends seen), "
                f"{out['commits']:.2f} commits/msg ({out['commits_per_s']:.0f}/s), {out['rollbacks']:.2f} rollbacks/msg, "
                f"{d['sessions']} sessions opened; per message {out['pg_active_ms']:.2f} ms active and "
                f"{out['pg_idle_in_tx_ms']:.2f} ms idle in a transaction; backends on average: "
                f"{out['pg_busy']:.1f} active, {out['lock_waiting']:.2f} waiting on a lock, {out['idle_in_tx']:.1f} idle in a transaction"
            )
            tb, ta = self.before.get("tables", {}), self.after.get("tables", {})
            rows = []
            for name, (seq, idx, written) in ta.items():
                s0, i0, w0 = tb.get(name, (0, 0, 0))
                if (seq - s0) + (idx - i0) + (written - w0):
                    rows.append(
                        (name, (seq - s0) / messages, (idx - i0) / messages, (written - w0) / messages)
                    )
            rows.sort(key=lambda r: -(r[1] + r[2] + r[3]))
            out["scans"] = sum(r[1] + r[2] for r in rows)
            out["rows_written"] = sum(r[3] for r in rows)
            lines.append(
                f"    per message: {out['scans']:.1f} table scans (index + sequential), {out['rows_written']:.1f} rows written; "
                + ", ".join(f"{n} {i + s:.2f}/{w:.2f}" for n, s, i, w in rows[:8])
            )
        if "commands" in self.after:
            cb, ca = self.before.get("commands", {}), self.after["commands"]
            diffs = []
            for name, (calls, usec) in ca.items():
                c0, u0 = cb.get(name, (0, 0))
                if calls - c0:
                    diffs.append((name.removeprefix("cmdstat_"), calls - c0, usec - u0))
            diffs.sort(key=lambda x: -x[1])
            calls = sum(c for _, c, _ in diffs)
            usec = sum(u for _, _, u in diffs)
            rcpu = self.after["redis_cpu"] - self.before["redis_cpu"]
            out.update(
                redis_ops=calls / messages,
                redis_usec=usec / messages,
                redis_cpu_ms=rcpu / messages * 1000,
                redis_ops_per_s=calls / seconds,
            )
            lines.append(
                f"    Redis: {out['redis_ops']:.2f} commands/msg ({out['redis_ops_per_s']:.0f}/s), {out['redis_usec']:.1f} µs/msg "
                f"inside Redis, server CPU {out['redis_cpu_ms']:.3f} ms/msg; "
                + ", ".join(f"{n} {c / messages:.2f} ({u / max(1, c):.1f} µs)" for n, c, u in diffs[:10])
            )
        if "sql" in self.after:
            statements, begins, commits, rollbacks, prepares, pg_trips, redis_trips = (
                (a - b) / messages for a, b in zip(self.after["sql"], self.before["sql"], strict=True)
            )
            out.update(statements=statements, begins=begins, pg_trips=pg_trips, redis_trips=redis_trips)
            lines.append(
                f"    SQLAlchemy in the server: {statements:.2f} statements/msg, {begins:.2f} transactions begun, "
                f"{commits:.2f} committed, {rollbacks:.2f} rolled back; round trips per message: "
                f"{pg_trips:.2f} to PostgreSQL ({prepares:.2f} preparing a statement), {redis_trips:.2f} to Redis"
            )
        for line in lines:
            print(line, flush=True)
        return out


def check_replies(sender: WeChatSender, people: list[Resident]) -> Counter[str]:
    """Decrypt every reply and compare with its step's expectation: misses per conversation step."""
    misses: Counter[str] = Counter()
    shown: set[str] = set()
    for r in people:
        for i, raw in enumerate(r.replies[: len(r.conversation.steps)]):
            reply = sender.read_reply(200, raw)
            content = reply.content or ""
            say, expect = said(r, i)
            if expect and not re.search(expect, content):
                step = r.conversation.steps[i]
                what = f"{r.conversation.name} / step {i + 1} " + (f"({step.pool} pool)" if step.pool else repr(say))
                misses[what] += 1
                if what not in shown:  # one example of each, to see what came instead
                    shown.add(what)
                    print(f"  {what}: {say!r} got {content[:120]!r}", flush=True)
    return misses


async def unit_costs(database_url: str, redis_url: str, n: int = 2000) -> None:
    """What one round trip costs the server's process (its CPU: ``time.process_time``) and the
    other side (the backend's or redis-server's CPU from ``/proc``), through the same clients as
    the server (SQLAlchemy + asyncpg, redis-py), one after another (``--unit-costs``)."""
    import redis.asyncio as aioredis
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    def proc_cpu(pid: int) -> float:
        return cpu_seconds(pid) if pid else 0.0

    async def measure(name: str, op: Any, other: int, what: str, count: int = n) -> None:
        await op()
        c0, o0, t0 = time.process_time(), proc_cpu(other), time.perf_counter()
        for _ in range(count):
            await op()
        c, o, t = time.process_time() - c0, proc_cpu(other) - o0, time.perf_counter() - t0
        print(
            f"    {name:<34} client CPU {c / count * 1000:.3f} ms, {what} CPU {o / count * 1000:.3f} ms, "
            f"wall {t / count * 1000:.3f} ms",
            flush=True,
        )

    print(f"unit costs ({n} each, load average {os.getloadavg()[0]:.1f}):", flush=True)
    if redis_url:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        rpid = _redis_server_pid()

        async def pipeline() -> None:
            async with r.pipeline(transaction=False) as pipe:
                pipe.incrby("bench:unit:n", 1)
                pipe.expire("bench:unit:n", 60)
                await pipe.execute()

        await r.set("bench:unit:x", "{}", ex=60)
        await measure("Redis GET", lambda: r.get("bench:unit:x"), rpid, "redis-server")
        await measure("Redis SET … EX", lambda: r.set("bench:unit:y", "{}", ex=60), rpid, "redis-server")
        await measure("Redis INCRBY + EXPIRE (a pipeline)", pipeline, rpid, "redis-server")
        await r.delete("bench:unit:x", "bench:unit:y", "bench:unit:n")
        await r.aclose()
    if database_url.startswith("postgresql"):
        engine = create_async_engine(database_url, pool_size=1)
        async with engine.connect() as conn:
            backend = (await conn.execute(text("select pg_backend_pid()"))).scalar_one()
            await conn.execute(text("create temporary table unit (id int primary key, n int)"))
            await conn.execute(text("insert into unit values (1, 0)"))
            await conn.commit()

            async def keyed() -> None:
                await conn.execute(text("select n from unit where id = :i"), {"i": 1})

            async def read_tx() -> None:
                await keyed()
                await conn.commit()

            async def write_tx() -> None:
                await conn.execute(text("update unit set n = n + 1 where id = :i"), {"i": 1})
                await conn.commit()

            await measure("PostgreSQL keyed SELECT", keyed, backend, "backend")
            await conn.commit()
            await measure("PostgreSQL BEGIN, SELECT, COMMIT", read_tx, backend, "backend")
            await measure("PostgreSQL BEGIN, UPDATE, COMMIT", write_tx, backend, "backend", n // 2)
        await engine.dispose()


def _redis_server_pid() -> int:
    pids = (int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit())
    return next((p for p in pids if _cmdline(p).startswith(b"redis-server")), 0)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# --- preparing a server (not measured) --------------------------------------------------------


def bot(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"python -m bot {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def prepare_database(env: dict[str, str]) -> str:
    """Schema, demo data and a supervisor token for the API; returns the token."""
    Path(env["BOT_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    bot(env, "db", "upgrade")
    bot(env, "demo", "load")
    out = bot(env, "token", "create", "--role", "supervisor", "--name", "benchmark")
    return out.strip().splitlines()[-1]


async def prepare_residents(base: str, token: str, sender: WeChatSender, people: list[Resident]) -> None:
    """Raise stock and capacity, let every resident follow, seed points for redemptions."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=base, headers=headers) as http:

        async def api(method: str, path: str, **kw: Any) -> Any:
            async with http.request(method, f"/api/v1{path}", **kw) as resp:
                if resp.status >= 300:
                    raise SystemExit(f"{method} {path}: {resp.status} {await resp.text()}")
                return await resp.json()

        for coupon in (await api("GET", "/coupons"))["items"]:
            await api("PATCH", f"/coupons/{coupon['id']}", json={"stock": 1_000_000})
        for activity in (await api("GET", "/activities"))["items"]:
            for s in (await api("GET", f"/activities/{activity['id']}/sessions"))["items"]:
                await api("PATCH", f"/sessions/{s['id']}", json={"capacity": 100_000})
        queue = list(people)

        async def follow() -> None:
            while queue:
                r = queue.pop()
                reply = await sender.send(http, sender.event(r.openid, "subscribe"))
                if reply.status != 200:
                    raise SystemExit(f"subscribe of {r.openid}: {reply.status}")

        await asyncio.gather(*(follow() for _ in range(16)))
        wanted = {r.openid: r.conversation.seed_points for r in people if r.conversation.seed_points}
        ids: dict[str, int] = {}
        cursor = None
        prefix = people[0].openid.rsplit("_", 1)[0]
        while True:
            params = {"q": prefix, "limit": "200", **({"cursor": cursor} if cursor else {})}
            page = await api("GET", "/residents", params=params)
            ids.update({item["openid"]: item["id"] for item in page["items"]})
            cursor = page["next_cursor"]
            if not cursor:
                break
        todo = list(wanted.items())

        async def seed() -> None:
            while todo:
                openid, amount = todo.pop()
                await api(
                    "POST",
                    "/points/adjustments",
                    # Seeding, not an adjustment a resident should hear of: no WeChat message
                    # (it would also put one outbox send per seeded resident into the measured phase).
                    json={"resident_id": ids[openid], "amount": amount, "note": "benchmark seed", "notify": False},
                )

        await asyncio.gather(*(seed() for _ in range(8)))


async def fresh_postgres(url: str) -> None:
    """Drop and create the benchmark's PostgreSQL database (its name must start with 'bench')."""
    import asyncpg

    name = url.rsplit("/", 1)[1].split("?")[0]
    if not name.startswith("bench"):
        raise SystemExit("--database-url: the database's name must start with 'bench' (it is dropped)")
    admin = url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# --- the run ------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="echo and the pipeline take turns this many times")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file per round")
    parser.add_argument("--redis-url", default="", help="e.g. redis://127.0.0.1:6379/7 (default: none)")
    parser.add_argument("--workers", type=int, default=1, help="python -m bot serve --workers N")
    parser.add_argument("--secondary", action="store_true", help="also greeting-only and click-only rows")
    parser.add_argument(
        "--by-step",
        action="store_true",
        help="after the mix, as many other residents hold the same conversations in lockstep: "
        "server CPU per message of each (conversation, step) and its share of the total",
    )
    parser.add_argument(
        "--unit-costs",
        action="store_true",
        help="afterwards, the cost of one PostgreSQL statement and transaction and of one Redis command",
    )
    parser.add_argument(
        "--count-statements",
        action="store_true",
        help="count the server's SQL statements and transactions (benchmarks/counting; costs some CPU)",
    )
    parser.add_argument(
        "--cpu-clock",
        action="store_true",
        help="also the mix's latencies on the server's own CPU clock, and its database thread's CPU per "
        "message (benchmarks/counting): figures that hold on a loaded machine",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to core 0")
    parser.add_argument("--write", action="store_true", help="put the table into docs/benchmarks.md")
    parser.add_argument("--profile", metavar="FILE", help="run the server under cProfile, written to FILE at its stop")
    args = parser.parse_args()
    if args.residents < 20:
        parser.error("--residents must be at least 20 (one of each conversation)")
    pin = not args.no_pin and args.workers == 1
    if pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the load generator keeps off the server's core 0
    results: dict[str, list[dict[str, float]]] = {"echo": [], "mix": []}
    if args.secondary:
        results.update({"text": [], "click": []})
    all_misses: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            all_misses += await one_round(args, r, tmp, results, pin)
    if not describe(args, results, all_misses):
        raise SystemExit(1)
    if args.unit_costs:
        await unit_costs(args.database_url, args.redis_url)


async def one_round(
    args: argparse.Namespace, r: int, tmp: str, results: dict[str, list[dict[str, float]]], pin: bool
) -> Counter[str]:
    import wechat_endpoint

    if not pin:
        wechat_endpoint.pinned = lambda cmd: cmd  # type: ignore[assignment]
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = free_port()
    tag = f"{int(time.time()) % 100000}{r}"
    people = residents(args.residents, tag)
    url = f"http://127.0.0.1:{port}/wechat"
    sender = WeChatSender(url, TOKEN, APPID, AES_KEY, mode="safe", account=ACCOUNT)

    # The echo server, the same messages.
    total = build_requests(sender, people)
    echo = await run_server(
        [py, "benchmarks/echo_server.py", "--port", str(port), "--token", TOKEN, "--aes-key", AES_KEY, "--appid", APPID],
        env,
        port,
    )
    try:
        print(f"round {r + 1}: {len(people)} residents, {total} messages", flush=True)
        results["echo"].append(await converse(url, people, args.concurrency, echo.pid, "echo", keep=False))
    finally:
        echo.terminate()
        await echo.wait()

    # WeChat's API as in production: reachable, so the outbox sends the deferred answers and the
    # QR images once (the fake API of the tests, in a process of its own, its CPU not counted).
    # Unreachable, the outbox's retries and access-token attempts would run beside the messages.
    api_port = free_port()
    fake_api = await asyncio.create_subprocess_exec(
        py, "-m", "bot.wechat.fake_api", "--port", str(api_port), "--appid", APPID, env=env, cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_ready(api_port)
        return await _mix_server(args, r, tmp, env, py, port, url, sender, people, results, api_port)
    finally:
        fake_api.terminate()
        await fake_api.wait()


async def _mix_server(
    args: argparse.Namespace, r: int, tmp: str, env: dict[str, str], py: str, port: int, url: str,
    sender: WeChatSender, people: list[Resident], results: dict[str, list[dict[str, float]]], api_port: int,
) -> Counter[str]:
    """The product's round: a fresh database, the server, the mix, then every reply checked."""
    database = args.database_url or f"sqlite+aiosqlite:///{tmp}/mix-{r}.sqlite3"
    if database.startswith("postgresql"):
        await fresh_postgres(database)
    server_env = {
        **env,
        "BOT_PORT": str(port),
        "BOT_DATA_DIR": f"{tmp}/data-{r}",
        "BOT_DATABASE_URL": database,
        "BOT_REDIS_URL": args.redis_url,
        "BOT_WECHAT_TOKEN": TOKEN,
        "BOT_WECHAT_APPID": APPID,
        "BOT_WECHAT_AES_KEY": AES_KEY,
        "BOT_WECHAT_API_BASE": f"http://127.0.0.1:{api_port}",
        "BOT_LOG_LEVEL": "WARNING",
    }
    if args.count_statements or args.cpu_clock:  # benchmarks/counting's sitecustomize does both
        server_env["PYTHONPATH"] = f"{REPO / 'benchmarks' / 'counting'}{os.pathsep}{REPO}"
    counts = None
    if args.count_statements:
        counts = Path(tmp) / f"counts-{r}"
        counts.mkdir()
        server_env["BENCH_COUNTS"] = str(counts)
    clock = None
    if args.cpu_clock:
        clock = Path(tmp) / f"clock-{r}"
        clock.mkdir()
        server_env["BENCH_CPU_CLOCK"] = str(clock)
    token = prepare_database(server_env)
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    cmd = [py, *profile, "-m", "bot", "serve"] + (["--workers", str(args.workers)] if args.workers > 1 else [])
    server = await run_server(cmd, server_env, port)
    try:
        await prepare_residents(f"http://127.0.0.1:{port}", token, sender, people)
        await asyncio.sleep(1)
        label = f"mix ({args.workers} worker{'s' if args.workers > 1 else ''})"
        backstage = Backstage(database, args.redis_url, counts) if database.startswith("postgresql") else None
        results["mix"].append(
            await converse(
                url, people, args.concurrency, server.pid, label, keep=True, backstage=backstage, sender=sender
            )
        )
        if clock is not None:
            await asyncio.sleep(0.5)  # the server's files are appended to every 0.2 s
            print_cpu_clock(clock, results["mix"][-1])
        if args.secondary:
            for kind in ("text", "click"):
                results[kind].append(
                    await load(url, args.residents * 3, args.concurrency, kind, server.pid, kind, first=r * 10**6)
                )
        lockstep: list[Resident] = []
        if args.by_step:
            lockstep = residents(args.residents, people[0].openid.split("_")[2] + "s")
            await prepare_residents(f"http://127.0.0.1:{port}", token, sender, lockstep)
            await asyncio.sleep(1)
            await converse_by_step(url, lockstep, args.concurrency, server.pid, sender, counts)
    finally:
        server.terminate()
        await server.wait()
    misses = check_replies(sender, people)
    misses.update({f"(by step) {k}": v for k, v in check_replies(sender, lockstep).items()})
    return misses


def print_cpu_clock(clock: Path, run: dict[str, float]) -> None:
    """``--cpu-clock``: the measured phase's latencies on the server's own CPU clock (each request's
    claim to its reply, in the CPU its process spent meanwhile: a server pinned to one core does
    not count the time other processes hold it), also as a multiple of the CPU per message, and on
    SQLite the CPU of the database thread's transactions (claims, replies and the flows' writes in
    them, commits) per message (``benchmarks/counting/sitecustomize.py``)."""
    latencies: list[float] = []
    transactions: list[float] = []
    for path in clock.glob("*.clock"):
        for line in path.read_text(encoding="ascii").splitlines():
            kind, at, seconds = line.split()
            if run["started_at"] <= float(at) <= run["ended_at"]:
                (latencies if kind == "r" else transactions).append(float(seconds) * 1000)
    if not latencies:
        print("    (--cpu-clock: no request was timed)")
        return
    latencies.sort()
    n = len(latencies)
    pct = {p: latencies[min(n - 1, int(p / 100 * n))] for p in (50, 90, 99)}
    per_message = run["cpu_ms"]
    print(
        f"    on the server's CPU clock: p50 {pct[50]:.1f} ms  p90 {pct[90]:.1f} ms  p99 {pct[99]:.1f} ms "
        f"({n} requests; p99 = {pct[99] / per_message:.0f} x the CPU per message)",
        flush=True,
    )
    if transactions:
        print(
            f"    database thread: {len(transactions)} transactions, {sum(transactions) / run['messages']:.3f} ms "
            f"of CPU per message ({sum(transactions) / len(transactions):.2f} ms per transaction)",
            flush=True,
        )


LABELS = {
    "echo": "echo (aiohttp + wechatpy)",
    "mix": "**the mix** (residents' conversations)",
    "text": "greeting only (`你好`)",
    "click": "menu click only (帮助)",
}
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- wechat_mix.py: begin -->", "<!-- wechat_mix.py: end -->"


def describe(args: argparse.Namespace, results: dict[str, list[dict[str, float]]], misses: Counter[str]) -> bool:
    """Print the table; False when a request failed or a reply was not what its conversation expects
    (then nothing is written: a figure of conversations that went wrong measures something else)."""
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    where = database + (" + Redis" if args.redis_url else "")
    head = (
        f"{args.rounds} round{'s' if args.rounds > 1 else ''}, {args.residents:,} residents, "
        f"{args.concurrency} connections, safe mode, {where}, {args.workers} worker process"
        f"{'es' if args.workers > 1 else ''}, {time.strftime('%Y-%m-%d')}, load average before: "
        f"{os.getloadavg()[0]:.1f}"
    )
    lines = [
        head,
        "",
        "| server | msg/s | p50 | p99 | server CPU per message | throughput / echo of its round "
        "| echo's CPU / this CPU per message |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, runs in results.items():
        if not runs:
            continue
        ratios = [run["rps"] / base["rps"] for run, base in zip(runs, results["echo"], strict=True)]
        ratio = "—" if label == "echo" else f"**{statistics.median(ratios):.2f}**"
        # What one core could do, whatever else the machine was doing: CPU per message compared.
        cpu_ratios = [base["cpu_ms"] / run["cpu_ms"] for run, base in zip(runs, results["echo"], strict=True)]
        cpu_ratio = "—" if label == "echo" else f"{statistics.median(cpu_ratios):.2f}"
        if label != "echo" and len(ratios) > 1:
            ratio += f" ({min(ratios):.2f}–{max(ratios):.2f})"
        lines.append(
            f"| {LABELS[label]} | {statistics.median(r['rps'] for r in runs):,.0f} "
            f"| {statistics.median(r['p50'] for r in runs):.1f} ms | {statistics.median(r['p99'] for r in runs):.1f} ms "
            f"| {statistics.median(r['cpu_ms'] for r in runs):.2f} ms | {ratio} | {cpu_ratio} |"
        )
    print("\n" + "\n".join(lines))
    errors = sum(int(run["errors"]) for runs in results.values() for run in runs)
    if misses or errors:
        print(f"\n{errors} HTTP errors; replies not as the conversation expects:")
        for what, count in misses.most_common():
            print(f"  {count:5d}  {what}")
        return False
    print("\nevery reply as the conversation expects (tickets, redemptions, bookings made)")
    if args.write:
        text = DOCS.read_text(encoding="utf-8")
        if BEGIN not in text or END not in text:
            raise SystemExit(f"{DOCS}: markers {BEGIN!r} … {END!r} not found")
        before, rest = text.split(BEGIN, 1)
        _, after = rest.split(END, 1)
        DOCS.write_text(before + BEGIN + "\n" + "\n".join(lines) + "\n" + END + after, encoding="utf-8")
        print(f"figures written to {DOCS.relative_to(REPO)}")
    return True


if __name__ == "__main__":
    asyncio.run(main())
