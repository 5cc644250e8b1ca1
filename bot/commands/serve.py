"""``python -m bot serve``: run the service (upgrading the schema first).

With ``--workers N`` (or ``BOT_WORKERS``) this process becomes a small supervisor: it upgrades the
schema once, reserves the port and starts N worker processes (``serve --worker``), each listening
on it with ``SO_REUSEPORT`` so the kernel spreads new connections over them; a worker that dies is
started again. SIGTERM or SIGINT
stops the service gracefully, in every mode: the socket stops accepting, requests in flight are
finished (up to ``BOT_SHUTDOWN_TIMEOUT`` seconds), deferred answers are queued and what the outbox
has due is sent before the process ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

from bot.config import Settings


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    p = sub.add_parser("serve", help="run the HTTP service (WeChat endpoint, API, console)")
    p.add_argument("--host", help="address to listen on (default BOT_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default BOT_PORT or 8080)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="also run a fake WeChat API on loopback and open the resident simulator at /simulator",
    )
    p.add_argument("--fake-api-port", type=int, default=0, help="port of the fake WeChat API in --demo")
    p.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the listening socket (default BOT_WORKERS or 1); "
        "use PostgreSQL (and Redis) with more than one",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a worker of the supervisor
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.demo:
        overrides["simulator"] = True
    if args.workers is not None:
        if not 1 <= args.workers <= 64:
            print("cannot start: --workers must be between 1 and 64", file=sys.stderr)
            return 2
        overrides["workers"] = args.workers
    settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
    from bot.web.simulator import exposure_problem

    problem = exposure_problem(settings)
    if problem is not None:
        print(f"cannot start: {problem}", file=sys.stderr)
        return 2
    from bot.logsetup import configure

    configure(settings.log_level, settings.log_format)
    if settings.workers > 1 and not args.worker:
        if args.demo:
            print("cannot start: --demo runs one process; leave out --workers", file=sys.stderr)
            return 2
        return _supervise(settings)
    try:
        asyncio.run(_serve(settings, demo=args.demo, fake_port=args.fake_api_port, worker=args.worker))
    except StartupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


class StartupError(Exception):
    """The service could not start; the message says which part failed (no secrets)."""


async def _watch_parent(stop: asyncio.Event, every: float = 1.0) -> None:
    """A worker whose supervisor is gone (killed with SIGKILL, say, so it could not stop its
    workers) stops too, gracefully, instead of serving on alone as an orphan."""
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(every)
        if os.getppid() != parent:
            print(f"worker {os.getpid()}: the supervisor is gone; stopping", flush=True)
            stop.set()


async def _serve(settings: Settings, *, demo: bool, fake_port: int, worker: bool = False) -> None:
    from bot.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runners: list[web.AppRunner] = []
    if demo:
        from bot.wechat.fake_api import make_fake_app

        fake = web.AppRunner(make_fake_app({settings.wechat_appid: settings.wechat_secret}), access_log=None)
        await fake.setup()
        fake_site = web.TCPSite(fake, "127.0.0.1", fake_port)
        await fake_site.start()
        runners.append(fake)
        port = _bound_port(fake_site)
        settings = dataclasses.replace(settings, wechat_api_base=f"http://127.0.0.1:{port}")
        print(f"fake WeChat API on http://127.0.0.1:{port}")
    runner = web.AppRunner(
        create_app(settings, migrate=not worker),  # a worker's supervisor has upgraded the schema
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
    )
    try:
        await runner.setup()  # migrations, language models, background loops
    except Exception as exc:
        for r in runners:
            await r.cleanup()
        where = settings.database_url.split("://", 1)[0]
        raise StartupError(
            f"the database ({where}) or the language data could not be set up: {type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or str(exc).splitlines()[0][:200]}"
        ) from None
    await _warm(settings)
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=worker or None, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        for r in runners:
            await r.cleanup()
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    runners.append(runner)
    # What start-up loaded (language models, jieba's dictionary, modules: ~200k objects) lives as
    # long as the process: keep it out of the collector's full scans, which would otherwise walk
    # it again and again while serving.
    gc.collect()
    gc.freeze()
    # What the first requests keep (compiled statements, caches) is frozen as well, after each of
    # the first full collections; the collector's pauses and the loop's lag go to /metrics.
    from bot import pauses

    pauses.install()
    lag = asyncio.create_task(pauses.watch_lag(stop))
    if not worker:
        base = f"http://{settings.host}:{_bound_port(site)}"
        print(f"社区服务助手 serving on {base}  (WeChat endpoint: {base}/wechat)", flush=True)
        if settings.simulator:
            print(f"resident simulator: {base}/simulator", flush=True)
    else:
        print(f"worker {os.getpid()} listening", flush=True)  # the supervisor's log shows each worker ready
    watch = asyncio.create_task(_watch_parent(stop)) if worker else None
    try:
        await stop.wait()
    finally:
        lag.cancel()
        if watch is not None:
            watch.cancel()
        # Stop accepting, finish requests in flight (up to shutdown_timeout), then the app's
        # cleanup: deferred answers queued, the outbox's due messages sent, connections closed.
        for r in reversed(runners):
            await r.cleanup()


async def _warm(settings: Settings) -> None:
    """Load now, before listening, what the first messages would otherwise load while every request
    in flight waits (and freeze it with the rest, below): the complaint router (0.5-1.3 s in a
    thread contending for the interpreter, at the first report) and the rule files (hazards,
    dispatch, office hours: 20-40 ms of parsing on the event loop at the first message). One that
    cannot be loaded is left to its first use, as before."""
    from bot.services import dispatch, hazards, office
    from bot.services.routing import preload

    await preload(settings.data_dir)
    for load in (hazards.rules_for, dispatch.rules_for, office.hours_for):
        try:
            load(settings.data_dir)
        except Exception as exc:
            logging.getLogger("bot.serve").warning("%s not loaded at start-up: %s", load.__module__, exc)


def _bound_port(site: web.TCPSite) -> int:
    server = site._server
    sockets: list[socket.socket] = list(getattr(server, "sockets", None) or [])
    return int(sockets[0].getsockname()[1]) if sockets else 0


# --- several processes --------------------------------------------------------------------------

RESTART_GIVE_UP = 5  # a worker that dies this many times in a row within seconds of starting


def _supervise(settings: Settings) -> int:
    """Upgrade once, open the socket, run ``settings.workers`` workers until SIGTERM/SIGINT."""
    from bot.storage.db import Database
    from bot.storage.migrate import upgrade

    async def upgrade_once() -> None:
        db = Database(settings.database_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    try:
        asyncio.run(upgrade_once())
    except Exception as exc:
        where = settings.database_url.split("://", 1)[0]
        print(f"cannot start: the database ({where}) could not be upgraded: {type(exc).__name__}: "
              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}", file=sys.stderr)
        return 1
    # The port is held by a bound socket that never listens (port 0 picks one); the workers listen
    # on it themselves with SO_REUSEPORT.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        print(f"cannot start: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="bot-metrics-")
    for stale in Path(metrics_dir).glob("*.db"):  # a previous run's counters
        stale.unlink()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "BOT_WORKERS": str(settings.workers)}
    cmd = [sys.executable, "-m", "bot", "serve", "--worker", "--host", settings.host, "--port", str(port)]

    def start() -> tuple[subprocess.Popen[bytes], float]:
        return subprocess.Popen(cmd, env=env), time.monotonic()

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workers = [start() for _ in range(settings.workers)]
    base = f"http://{settings.host}:{port}"
    print(f"社区服务助手 serving on {base}  (WeChat endpoint: {base}/wechat), {settings.workers} workers", flush=True)
    quick_deaths = 0
    code = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (proc, started) in enumerate(workers):
                if proc.poll() is None or stopping:
                    continue
                _forget_metrics(proc.pid)
                quick_deaths = quick_deaths + 1 if time.monotonic() - started < 10 else 0
                if quick_deaths >= RESTART_GIVE_UP:
                    print(f"cannot start: workers keep exiting (last with code {proc.returncode}); stopping",
                          file=sys.stderr, flush=True)
                    stopping, code = True, 1
                    break
                print(f"worker {proc.pid} exited with code {proc.returncode}; starting another", file=sys.stderr, flush=True)
                workers[i] = start()
    finally:
        sock.close()
        for proc, _ in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.shutdown_timeout + 10
        for proc, _ in workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def _forget_metrics(pid: int) -> None:
    """A dead worker's live gauges go; its counters stay in the sums (prometheus-client's rule)."""
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
