"""The dashboard's API on a year of a large community, in PostgreSQL.

Seeds (server-side ``generate_series``, not timed): 20,000 residents, 1,000,000 messages (100,000
conversations of 5 messages in and 5 replies out by one resident, intents of the registry, evenly
over the last 365 days in the order they arrived),
100,000 tickets over the same year (8 categories, 6 departments, 12 grids; most answered and closed, some open and overdue, some
rated, some reopened) with 5 timeline events each, 10,000 handoff requests, 200,000 points-ledger
entries, 20 merchants with 40 coupons and 30,000 redeemed (half verified), 20 activities with 600
sessions and 15,000 bookings, 30,000 check-ins (a third by 在职党员 of 30 work units, 双报到).
Then ``VACUUM ANALYZE``, the schema's indexes as the migrations make them, the daily roll-ups' first
run (``python -m bot db rollup``: every finished day; today is read from the raw rows), and ``python -m bot serve``
(pinned to core 0 when there are two) with an operator's API token.

Timed over HTTP (aiohttp on the other core, one request at a time): every dashboard route for
the last 7, 30 and 90 days and the longest period allowed (366 days), each ``--repeat`` times after
one warm-up call; the median and the slowest are printed. The target is each call under 300 ms.

    .venv/bin/python benchmarks/dashboard.py [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_dashboard]
        [--repeat 10] [--keep]   # --keep: reuse a database seeded by an earlier run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from wechat_endpoint import free_port, run_server  # noqa: E402

SECTIONS = ("tickets", "residents", "services")
PERIODS = (7, 30, 90, 366)
TARGET_MS = 300.0

# One statement per table; :now is the seeding time. random() is seeded first (setseed).
SEED = [
    """INSERT INTO residents (id, openid, subscribed, subscribed_at, community, building, created_at, updated_at)
       SELECT i, 'o_bench_dash_' || i, true, :now - interval '400 days', '幸福小区', (1 + i % 40)::text,
              :now - interval '400 days' + (i % 365) * interval '1 day', :now
       FROM generate_series(1, 20000) AS i""",
    """INSERT INTO messages (resident_id, direction, msg_type, content, payload, intent, confidence, via, created_at)
       SELECT 1 + ((i / 10)::bigint * 7919 % 20000)::int,
              CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END, 'text', '你好', '{}'::json,
              CASE WHEN i % 2 = 0 THEN (ARRAY['complaint','coupon','course_booking','query','query','query',
                   'smalltalk','smalltalk','handoff','fallback', NULL])[1 + (i / 2) % 11] END,
              CASE WHEN i % 2 = 0 THEN 0.9 END,
              CASE WHEN i % 2 = 1 THEN 'passive' END,
              :now - interval '365 days' + (i + random()) * interval '31.536 seconds'
       FROM generate_series(1, 1000000) AS i""",
    """INSERT INTO tickets (id, number, resident_id, channel, text, attachments, community, building, grid, category,
                           category_confidence, department, urgency, status, deadline, resolution,
                           resolution_photos, rating, reopen_count, responded_at, answered_at, closed_at,
                           created_at, updated_at)
       SELECT i, 'GD' || i, 1 + (i * 31) % 20000, 'wechat', '楼道灯不亮', '[]'::json, '幸福小区',
              (1 + i % 40)::text, '网格' || (1 + i % 12),
              (ARRAY['物业服务','环境卫生','市政设施','治安','噪音','邻里纠纷','停车','其他'])[1 + i % 8], 0.9,
              (ARRAY['物业服务中心','城管市政科','综治办','环卫所','社区居委会','派出所'])[1 + i % 6],
              CASE WHEN i % 50 = 0 THEN 'urgent' ELSE 'normal' END,
              t.status, t.created + interval '72 hours', CASE WHEN t.answered THEN '已处理' END, '[]'::json,
              CASE WHEN t.status = 'closed' THEN (ARRAY['satisfied','satisfied','satisfied','basic',NULL])[1 + i % 5]
                   WHEN t.status = 'reopened' THEN 'unsatisfied' END,
              CASE WHEN t.status = 'reopened' THEN 1 ELSE 0 END,
              CASE WHEN t.status <> 'dispatched' THEN t.created + t.took * random() END,
              CASE WHEN t.answered THEN t.created + t.took END,
              CASE WHEN t.status = 'closed' THEN t.created + t.took + interval '1 day' END,
              t.created, t.created
       FROM generate_series(1, 100000) AS i
       CROSS JOIN LATERAL (
           SELECT s.created, s.status, s.status IN ('answered', 'closed') AS answered,
                  (random() * 120 + 1) * interval '1 hour' AS took
           FROM (SELECT :now - interval '365 days' + (i + random()) * interval '315.36 seconds' AS created,
                        CASE WHEN i % 40 = 0 THEN 'in_progress' WHEN i % 41 = 0 THEN 'reopened'
                             WHEN i % 43 = 0 THEN 'dispatched' WHEN i % 47 = 0 THEN 'rejected'
                             WHEN i % 7 = 0 THEN 'answered' ELSE 'closed' END AS status) AS s
       ) AS t""",
    """INSERT INTO ticket_events (ticket_id, at, actor, action, from_status, to_status, public, data)
       SELECT t.id, t.created_at + e.off * interval '1 minute' * (1 + t.id % 300), e.actor, e.action, NULL, NULL,
              true, '{}'::json
       FROM tickets t
       CROSS JOIN (VALUES (0, 'resident', 'submitted'), (0, 'system', 'dispatch'), (1, 'token:staff', 'accept'),
                          (2, 'token:staff', 'start'), (3, 'token:staff', 'comment')) AS e(off, actor, action)""",
    """INSERT INTO handoff_requests (resident_id, reason, text, status, claimed_by, claimed_at, asks,
                                    created_at, updated_at, closed_at)
       SELECT 1 + (i * 13) % 20000, (ARRAY['asked','asked','asked','urgent'])[1 + i % 4], '转人工', 'closed',
              CASE WHEN i % 10 <> 0 THEN 'zhang' END,
              CASE WHEN i % 10 <> 0 THEN h.created + random() * interval '30 minutes' END, 1,
              h.created, h.created, h.created + interval '1 hour'
       FROM generate_series(1, 10000) AS i
       CROSS JOIN LATERAL (SELECT :now - random() * interval '365 days' + i * interval '0 s' AS created) AS h""",
    """INSERT INTO points_ledger (resident_id, amount, balance_after, reason, ref_type, ref_id, idempotency_key, created_at)
       SELECT 1 + (i * 17) % 20000,
              CASE WHEN i % 3 = 0 THEN -(10 + i % 50) ELSE 5 + i % 20 END, 100,
              CASE WHEN i % 3 = 0 THEN (ARRAY['coupon','course'])[1 + i % 2]
                   ELSE (ARRAY['registration','activity','report','checkin'])[1 + i % 4] END,
              'bench', i::text, 'bench:' || i, :now - random() * interval '365 days'
       FROM generate_series(1, 200000) AS i""",
    """INSERT INTO merchants (id, name, category, active, created_at)
       SELECT i, '商户' || i, (ARRAY['餐饮','理发','超市','交通'])[1 + i % 4], true, :now - interval '400 days'
       FROM generate_series(1, 20) AS i""",
    """INSERT INTO coupons (id, merchant_id, title, category, price, stock, per_resident_limit, valid_from,
                           valid_until, active, created_at)
       SELECT i, 1 + i % 20, '优惠券' || i, '餐饮', 50, 1000000, 1000000, :now - interval '400 days',
              :now + interval '400 days', true, :now - interval '400 days'
       FROM generate_series(1, 40) AS i""",
    """INSERT INTO issued_coupons (coupon_id, resident_id, seq, code, request_key, status, points, issued_at,
                                  expires_at, used_at, used_by, merchant_id)
       SELECT 1 + i % 40, 1 + (i * 29) % 20000, i, 'C' || i, 'bench:' || i,
              CASE WHEN i % 2 = 0 THEN 'used' ELSE 'issued' END, 50, c.issued, c.issued + interval '30 days',
              CASE WHEN i % 2 = 0 THEN c.issued + interval '2 days' END,
              CASE WHEN i % 2 = 0 THEN 'shop' END, CASE WHEN i % 2 = 0 THEN 1 + (1 + i % 40) % 20 END
       FROM generate_series(1, 30000) AS i
       CROSS JOIN LATERAL (SELECT :now - random() * interval '365 days' + i * interval '0 s' AS issued) AS c""",
    """INSERT INTO activities (id, title, kind, category, points_cost, volunteer_hours, active, created_at)
       SELECT i, '活动' || i, (ARRAY['course','activity','volunteer'])[1 + i % 3], '花艺', 10, 2.0, true,
              :now - interval '400 days'
       FROM generate_series(1, 20) AS i""",
    """INSERT INTO activity_sessions (id, activity_id, starts_at, ends_at, capacity, booked, created_at)
       SELECT i, 1 + i % 20, s.starts, s.starts + interval '2 hours', 30, (i * 7) % 31, :now - interval '400 days'
       FROM generate_series(1, 600) AS i
       CROSS JOIN LATERAL (SELECT :now - interval '365 days' + i * interval '14 hours' AS starts) AS s""",
    """INSERT INTO bookings (session_id, resident_id, status, points_paid, attempt, queued_at, booked_at, updated_at)
       SELECT 1 + i % 600, 1 + (i * 37) % 20000, (ARRAY['booked','attended','attended','cancelled'])[1 + i % 4],
              10, 1, :now - interval '400 days', :now - interval '400 days', :now - interval '400 days'
       FROM generate_series(1, 15000) AS i""",
    """INSERT INTO party_members (resident_id, work_unit, name, registered_at)
       SELECT i, '单位' || (1 + i % 30), NULL, :now - interval '400 days'
       FROM generate_series(1, 20000, 40) AS i""",
    """INSERT INTO check_ins (activity_id, resident_id, session_id, day, points, volunteer_hours, work_unit, checked_in_at)
       SELECT 1 + i % 20, 1 + (i * 41) % 20000, NULL, 'd' || i, 5, 2.0,
              CASE WHEN i % 3 = 0 THEN '单位' || (1 + i % 30) END, :now - random() * interval '365 days'
       FROM generate_series(1, 30000) AS i""",
]


def bot(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=REPO, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"python -m bot {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def admin_url(url: str) -> tuple[str, str]:
    name = url.rsplit("/", 1)[1].split("?")[0]
    if not name.startswith("bench"):
        raise SystemExit("--database-url: the database's name must start with 'bench' (it is dropped)")
    return url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0], name


async def fresh_database(url: str) -> None:
    import asyncpg

    base, name = admin_url(url)
    conn = await asyncpg.connect(base + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def seed(url: str, now: datetime) -> None:
    import asyncpg

    base, name = admin_url(url)
    conn = await asyncpg.connect(f"{base}/{name}")
    try:
        await conn.execute("SELECT setseed(0.16)")
        for statement in SEED:
            table = statement.split("INTO", 1)[1].split()[0]
            started = time.perf_counter()
            if ":now" in statement:
                await conn.execute(statement.replace(":now", "$1::timestamptz"), now)
            else:
                await conn.execute(statement)
            print(f"  seeded {table:<18} {time.perf_counter() - started:6.1f} s", flush=True)
        for table, column in (("tickets", "id"), ("residents", "id"), ("merchants", "id"), ("coupons", "id"),
                              ("activities", "id"), ("activity_sessions", "id")):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                               f"(SELECT max({column}) FROM {table}))")
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does to a table that stopped changing
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                  for t in ("messages", "tickets", "ticket_events", "residents")}
        print("  rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)
    finally:
        await conn.close()


async def analyze(url: str) -> None:
    import asyncpg

    base, name = admin_url(url)
    conn = await asyncpg.connect(f"{base}/{name}")
    try:
        await conn.execute("VACUUM ANALYZE dashboard_message_days, dashboard_resident_days, dashboard_ticket_days, "
                           "dashboard_ticket_durations")
    finally:
        await conn.close()


async def measure(base: str, token: str, repeat: int, today: datetime) -> list[tuple[str, int, list[float]]]:
    headers = {"Authorization": f"Bearer {token}"}
    end = (today + timedelta(days=1)).date()
    results = []
    async with aiohttp.ClientSession(headers=headers) as http:
        for section in SECTIONS:
            for days in PERIODS:
                params = {"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat()}
                url = f"{base}/api/v1/dashboard/{section}"
                timings = []
                for i in range(repeat + 1):
                    started = time.perf_counter()
                    async with http.get(url, params=params) as r:
                        body = await r.read()
                        if r.status != 200:
                            raise SystemExit(f"{url} {params}: {r.status} {body[:300]!r}")
                    if i:  # the first call warms the connection pool and the caches
                        timings.append((time.perf_counter() - started) * 1000)
                results.append((section, days, timings))
                print(f"  {section:<10} {days:>3} days  median {statistics.median(timings):6.1f} ms  "
                      f"max {max(timings):6.1f} ms", flush=True)
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench_dashboard")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="reuse the database an earlier run seeded")
    args = parser.parse_args()
    now = datetime.now(UTC)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "BOT_PORT": str(port),
            "BOT_DATA_DIR": f"{tmp}/data",
            "BOT_DATABASE_URL": args.database_url,
            "BOT_WECHAT_TOKEN": "benchmark",
            "BOT_WECHAT_APPID": "wx0000000000000000",
            "BOT_WECHAT_API_BASE": "http://127.0.0.1:9",
            "BOT_LOG_LEVEL": "WARNING",
        }
        os.makedirs(env["BOT_DATA_DIR"])
        if not args.keep:
            print("seeding (not timed)", flush=True)
            started = time.perf_counter()
            await fresh_database(args.database_url)
            bot(env, "db", "upgrade")
            await seed(args.database_url, now)
            print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
            started = time.perf_counter()
            print("  " + bot(env, "db", "rollup").strip() + f" in {time.perf_counter() - started:.1f} s "
                  "(the daily roll-ups' first run, as the scheduler's job does it)", flush=True)
            await analyze(args.database_url)
        else:
            bot(env, "db", "upgrade")
            print("  " + bot(env, "db", "rollup").strip(), flush=True)
        token = bot(env, "token", "create", "--role", "operator", "--name", f"bench-{port}").strip().splitlines()[-1]
        if (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})  # the client keeps off the server's core 0
        server = await run_server([sys.executable, "-m", "bot", "serve"], env, port)
        try:
            print(f"timing every dashboard route ({args.repeat} calls each after a warm-up; target < {TARGET_MS:.0f} ms); "
                  f"load average before: {os.getloadavg()[0]:.1f}")
            results = await measure(f"http://127.0.0.1:{port}", token, args.repeat, now)
        finally:
            server.terminate()
            await server.wait()
    slowest = max(max(t) for _, _, t in results)
    over = [(s, d) for s, d, t in results if statistics.median(t) >= TARGET_MS]
    print(f"slowest single call {slowest:.1f} ms; medians over target: {over or 'none'}; "
          f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
