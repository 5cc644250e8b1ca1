"""``python -m bot serve``: run the service (upgrading the schema first)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import socket
import sys
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
    settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
    from bot.web.simulator import exposure_problem

    problem = exposure_problem(settings)
    if problem is not None:
        print(f"cannot start: {problem}", file=sys.stderr)
        return 2
    logging.getLogger().setLevel(settings.log_level)
    try:
        asyncio.run(_serve(settings, demo=args.demo, fake_port=args.fake_api_port))
    except StartupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


class StartupError(Exception):
    """The service could not start; the message says which part failed (no secrets)."""


async def _serve(settings: Settings, *, demo: bool, fake_port: int) -> None:
    from bot.app import create_app

    runners: list[web.AppRunner] = []
    if demo:
        from bot.wechat.fake_api import make_fake_app

        fake = web.AppRunner(make_fake_app({settings.wechat_appid: settings.wechat_secret}), access_log=None)
        await fake.setup()
        site = web.TCPSite(fake, "127.0.0.1", fake_port)
        await site.start()
        runners.append(fake)
        port = _bound_port(site)
        settings = dataclasses.replace(settings, wechat_api_base=f"http://127.0.0.1:{port}")
        print(f"fake WeChat API on http://127.0.0.1:{port}")
    runner = web.AppRunner(create_app(settings), access_log=None)
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
    site = web.TCPSite(runner, settings.host, settings.port)
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
    base = f"http://{settings.host}:{_bound_port(site)}"
    print(f"社区服务助手 serving on {base}  (WeChat endpoint: {base}/wechat)", flush=True)
    if settings.simulator:
        print(f"resident simulator: {base}/simulator", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for r in reversed(runners):
            await r.cleanup()


def _bound_port(site: web.TCPSite) -> int:
    server = site._server
    sockets: list[socket.socket] = list(getattr(server, "sockets", None) or [])
    return int(sockets[0].getsockname()[1]) if sockets else 0
