"""Messages per second and latency through HTTP in safe mode: the full pipeline against an echo server.

Each server runs in its own process pinned to one core (``taskset -c 0`` when available), one at
a time; this process, on the other core, replays pre-encrypted unique messages with a fixed number
of connections. The full pipeline decrypts, dedups, persists (SQLite, WAL), routes, replies and
encrypts; the echo server only decrypts, parses and encrypts the text back. Every run starts its
server afresh (the full pipeline on a new SQLite file), and the servers take turns over
``--rounds``: each full-pipeline run is compared with the echo run of its round.

``--baseline REV`` also runs the full pipeline of another revision (a temporary git worktree, the
same virtualenv) in every round, taking turns with this one: is a change faster, on a machine
whose speed drifts between minutes?

    .venv/bin/python benchmarks/wechat_endpoint.py [--messages 3000] [--concurrency 16] [--baseline main~3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.wechat.simulate import WeChatSender  # noqa: E402

TOKEN, APPID, AES_KEY = "benchtoken", "wxbench000000001", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str]) -> list[str]:
    return (["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []) + cmd


async def wait_ready(port: int) -> None:
    for _ in range(1800):  # up to 3 minutes: loading the language models on a loaded machine
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of a process and all its threads, or of one thread (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def message(sender: WeChatSender, kind: str, i: int, residents: int = 200) -> dict[str, object]:
    """The i-th benchmark message from one of ``residents`` residents of its kind, unique (never
    taken for a retry).

    ``text``: a greeting, which goes through intent classification to the smalltalk reply.
    ``click``: the 帮助 menu button, answered with the "I can help with …" menu without the intent
    engine: the pipeline the throughput aim names (decrypt, dedup, persist, reply, encrypt).
    Each kind has residents of its own, so a row is not slowed by the per-resident rate limit
    (``BOT_RESIDENT_RATE``, 30 a minute) from the row before it.
    """
    openid = f"o_bench_{kind}_{i % residents:04d}"
    if kind == "click":
        # An event's key is sender + CreateTime + event: a distinct second per message of a resident.
        return {**sender.event(openid, "CLICK", "HELP"), "CreateTime": 1_700_000_000 + i // residents}
    return sender.text(openid, "你好")  # unique by MsgId


async def load(
    url: str, n: int, concurrency: int, label: str, pid: int, kind: str = "text", first: int = 0
) -> dict[str, float]:
    sender = WeChatSender(url, TOKEN, APPID, AES_KEY, mode="safe")
    residents = max(200, n // 10)  # at most 10 messages each: well under the per-resident rate limit
    requests = [sender.build(message(sender, kind, i, residents)) for i in range(first, first + n)]
    latencies: list[float] = []
    errors = 0
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        # Warm up (jieba, SQLite, connection pool) outside the measurement.
        for q, body in [sender.build(sender.text("o_warm", "你好")) for _ in range(20)]:
            async with http.post(url, params=q, data=body.encode()) as resp:
                await resp.read()

        async def worker() -> None:
            nonlocal errors
            while queue:
                q, body = queue.pop()
                t0 = time.perf_counter()
                async with http.post(url, params=q, data=body.encode()) as resp:
                    text = await resp.text()
                    if resp.status != 200 or "<Encrypt>" not in text:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        cpu_before, loop_before = cpu_seconds(pid), cpu_seconds(pid, pid)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu_before
        loop_cpu = cpu_seconds(pid, pid) - loop_before  # the main thread: the event loop's
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000  # noqa: E731
    result = {
        "rps": n / elapsed,
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "mean": statistics.fmean(latencies) * 1000,
        "errors": errors,
        "cpu_ms": cpu / n * 1000,
        "loop_ms": loop_cpu / n * 1000,
    }
    print(
        f"{label:<14} {result['rps']:8.0f} msg/s   p50 {result['p50']:6.1f} ms   p90 {result['p90']:6.1f} ms   "
        f"p99 {result['p99']:6.1f} ms   server CPU {result['cpu_ms']:.2f} ms/msg "
        f"(= {1000 / max(result['cpu_ms'], 1e-9):.0f} msg/s per core; event loop's thread "
        f"{result['loop_ms']:.2f}, other threads {result['cpu_ms'] - result['loop_ms']:.2f})   errors {errors}"
    )
    return result


async def run_server(
    cmd: list[str], env: dict[str, str], port: int, cwd: Path = REPO
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *pinned(cmd), env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_ready(port)
    except BaseException:
        proc.terminate()  # never leave a server behind
        await proc.wait()
        raise
    return proc


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--message",
        choices=["text", "click", "both"],
        default="both",
        help="text: a greeting through intent classification; click: a menu click, no classification",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate the servers this many times; medians are reported"
    )
    parser.add_argument("--write", action="store_true", help="put the table into docs/benchmarks.md")
    parser.add_argument(
        "--database-url",
        default="",
        help="the full pipeline's database (default: a fresh SQLite file); e.g. postgresql+asyncpg://postgres@127.0.0.1/bench",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default="",
        help="also run this git revision's full pipeline in every round, taking turns with this one",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the load generator keeps off the servers' core 0
    kinds = ["text", "click"] if args.message == "both" else [args.message]
    results: dict[str, list[dict[str, float]]] = {"echo": [], **{k: [] for k in kinds}}
    trees = {kind: REPO for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            baseline = Path(tmp) / "baseline"
            _git_worktree("add", "--detach", str(baseline), args.baseline)
            for kind in kinds:
                results[f"{kind}@{args.baseline}"] = []
                trees[f"{kind}@{args.baseline}"] = baseline
        try:
            await _rounds(args, kinds, trees, results, tmp)
        finally:
            if args.baseline:
                _git_worktree("remove", "--force", str(baseline))
    print(f"\nmedians over {args.rounds} rounds of {args.messages} messages, {args.concurrency} connections:")
    for label, runs in results.items():
        med = {key: statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p99", "cpu_ms", "loop_ms")}
        line = (f"{label:<6} {med['rps']:6.0f} msg/s  p50 {med['p50']:5.1f} ms  p99 {med['p99']:5.1f} ms  "
                f"CPU {med['cpu_ms']:.2f} ms/msg (event loop's thread {med['loop_ms']:.2f})")
        if label != "echo":
            line += f"  throughput / echo {statistics.median(_ratios(runs, results['echo'])):.2f}"
        print(line)
    if args.write:
        write_docs(results, args)
        print(f"figures written to {DOCS.relative_to(REPO)}")


DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- wechat_endpoint.py: begin -->", "<!-- wechat_endpoint.py: end -->"
LABELS = {
    "echo": "echo (aiohttp + wechatpy)",
    "click": "full, `click` (no intent engine)",
    "text": "full, `text` (whole product)",
}


def _git_worktree(*args: str) -> None:
    """``git worktree …`` in this repository; a readable error if it fails."""
    try:
        subprocess.run(["git", "-C", str(REPO), "worktree", *args], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise SystemExit(f"git worktree {args[0]}: {detail.strip()}") from None


async def _rounds(
    args: argparse.Namespace,
    kinds: list[str],
    trees: dict[str, Path],
    results: dict[str, list[dict[str, float]]],
    tmp: str,
) -> None:
    """The rounds: the echo server, then each kind's full pipeline (and the baseline's, if any)."""
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    echo_port = free_port()
    bot_port = free_port()
    bot_env = {
        **env,
        "BOT_PORT": str(bot_port),
        "BOT_DATA_DIR": f"{tmp}/data",
        "BOT_WECHAT_TOKEN": TOKEN,
        "BOT_WECHAT_APPID": APPID,
        "BOT_WECHAT_AES_KEY": AES_KEY,
        "BOT_WECHAT_API_BASE": "http://127.0.0.1:9",  # never called: every reply is passive
        "BOT_LOG_LEVEL": "WARNING",
    }
    echo_cmd = [py, "benchmarks/echo_server.py", "--port", str(echo_port), "--token", TOKEN,
                "--aes-key", AES_KEY, "--appid", APPID]
    # The machine's speed drifts (a shared host): the servers take turns, one running at a
    # time, and each figure is compared with the echo run next to it.
    runs_so_far = 0  # each run's messages are new (never retries), even in one shared database
    for r in range(args.rounds):
        echo = await run_server(echo_cmd, env, echo_port)
        try:
            echo_url = f"http://127.0.0.1:{echo_port}/wechat"
            results["echo"].append(await load(echo_url, args.messages, args.concurrency, "echo", echo.pid))
        finally:
            echo.terminate()
            await echo.wait()
        for kind in kinds:
            runs = [label for label in trees if label.split("@", 1)[0] == kind]
            if r % 2:
                runs.reverse()  # this revision and the baseline take turns going first
            for label in runs:
                # Each on a server (and SQLite file) of its own, started like the echo server.
                tree = trees[label]
                name = label.replace("@", "-").replace("/", "-").replace("~", "-")
                database = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench-{r}-{name}.sqlite3"
                server_env = {**bot_env, "PYTHONPATH": str(tree), "BOT_DATABASE_URL": database}
                bot = await run_server([py, "-m", "bot", "serve"], server_env, bot_port, cwd=tree)
                try:
                    results[label].append(
                        await load(
                            f"http://127.0.0.1:{bot_port}/wechat",
                            args.messages,
                            args.concurrency,
                            f"full ({label})",
                            bot.pid,
                            kind,
                            runs_so_far * args.messages,
                        )
                    )
                finally:
                    bot.terminate()
                    await bot.wait()
                runs_so_far += 1


def _ratios(runs: list[dict[str, float]], echo: list[dict[str, float]]) -> list[float]:
    """Each run's throughput over that of the echo run of its round."""
    return [run["rps"] / base["rps"] for run, base in zip(runs, echo, strict=True)]


def write_docs(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    """Replace the block between the markers in docs/benchmarks.md with this run's table."""
    text = DOCS.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOCS}: markers {BEGIN!r} … {END!r} not found")
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"

    def spread(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"

    lines = [
        BEGIN,
        f"Medians over {args.rounds} round{'s' if args.rounds != 1 else ''} of {args.messages:,} messages, {args.concurrency} connections, "
        f"{database}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores (range over the rounds in brackets):",
        "",
        "| server | msg/s | p50 | p99 | server CPU per message | throughput / echo of its round |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, runs in results.items():
        ratios = _ratios(runs, results["echo"]) if label != "echo" else []
        ratio = f"**{statistics.median(ratios):.2f}** ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else "—"
        lines.append(
            f"| {LABELS.get(label, label)} | {spread([r['rps'] for r in runs], ',.0f')} "
            f"| {statistics.median(r['p50'] for r in runs):.1f} ms | {statistics.median(r['p99'] for r in runs):.1f} ms "
            f"| {statistics.median(r['cpu_ms'] for r in runs):.2f} ms | {ratio} |"
        )
    lines.append(END)
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(head + "\n".join(lines) + tail, encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
