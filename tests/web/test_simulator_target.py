"""Issue 12, defect 10: the simulator signs requests with the real token, so it must send them only
to this server itself — never to an address taken from the request's Host header — and the service
must not start with the simulator reachable from elsewhere unless that is said on purpose.

Everything listens on loopback addresses only (the "attacker" on 127.0.0.2)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.config import ConfigError
from tests.conftest import REPO, free_port, make_settings
from tests.web.test_simulator_api import call

ATTACKER_HOST = "127.0.0.2"


@pytest.fixture
async def attacker() -> AsyncIterator[tuple[str, list[str]]]:
    """A second listener on another loopback address that records every request it gets."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs}")
        return web.Response(text="success")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, ATTACKER_HOST, port).start()
    try:
        yield f"{ATTACKER_HOST}:{port}", seen
    finally:
        await runner.cleanup()


async def test_the_host_header_does_not_choose_where_signed_requests_go(
    service_factory, sqlite_url, fake_api, attacker
):
    address, seen = attacker
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1)
    for host in (address, "attacker:1234", "127.0.0.1:9", "[::1]:1"):
        status, data = await call(
            svc, "POST", "/simulator/api/send", headers={"Host": host},
            json={"openid": "o_sim_host", "mode": "safe", "type": "text", "text": "你好"},
        )
        # the real server answered (a reply from the assistant, not from the listener) ...
        assert status == 200, (host, data)
        if data["status"] == "replied":
            assert data["reply"]["content"].strip() not in ("", "success")
        else:  # a machine too slow for the reply budget: the assistant's answer comes from its queue
            assert data["status"] == "deferred", data
            assert await _queued_answers(svc, "o_sim_host") >= 1, host
    # ... and nothing reached the other listener: no signed query string to replay
    assert seen == []


async def _queued_answers(svc, openid: str) -> int:
    """How many customer-service messages the assistant sent ``openid`` (waits up to 20 s for the first)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + 20.0
    while True:
        status, data = await call(svc, "GET", f"/simulator/api/messages?openid={openid}&since=0")
        assert status == 200, data
        if data["messages"] or loop.time() > until:
            return len(data["messages"])
        await asyncio.sleep(0.1)


async def test_a_wildcard_address_sends_to_loopback(service_factory, sqlite_url, fake_api, attacker):
    """Settings that say 0.0.0.0 with BOT_SIMULATOR_PUBLIC=1 (a demo exposed on purpose; the test
    server itself listens on loopback only): the simulator sends to this server over loopback."""
    address, seen = attacker
    svc = await service_factory(sqlite_url, fake_api, BOT_SIMULATOR=1, BOT_HOST="0.0.0.0", BOT_SIMULATOR_PUBLIC=1)
    assert svc.settings.host == "0.0.0.0" and svc.settings.simulator_public
    status, data = await call(
        svc, "POST", "/simulator/api/send", headers={"Host": address},
        json={"openid": "o_sim_wild", "mode": "safe", "type": "text", "text": "你好"},
    )
    assert status == 200 and data["status"] == "replied", data
    assert seen == []


@pytest.mark.parametrize(
    ("host", "public", "refused"),
    [
        ("0.0.0.0", "0", True),
        ("::", "0", True),
        ("192.168.1.5", "0", True),
        ("", "0", True),
        ("0.0.0.0", "1", False),
        ("127.0.0.1", "0", False),
        ("127.0.0.2", "0", False),
        ("::1", "0", False),
        ("localhost", "0", False),
    ],
)
def test_the_app_refuses_the_simulator_off_loopback(tmp_path, host, public, refused):
    from bot.app import create_app

    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}", tmp_path, BOT_SIMULATOR=1,
                             BOT_HOST=host, BOT_SIMULATOR_PUBLIC=public)
    if refused:
        with pytest.raises(ConfigError, match="BOT_SIMULATOR_PUBLIC"):
            create_app(settings, migrate=False, background=False)
    else:
        create_app(settings, migrate=False, background=False)
    # without the simulator any address is the operator's choice
    create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}", tmp_path, BOT_HOST=host),
               migrate=False, background=False)


async def serve(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, float]:
    environment = {
        **os.environ,
        "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.sqlite3'}",
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_PORT": str(free_port()),
        **env,
    }
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", *args, cwd=REPO, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"serve {' '.join(args)} did not refuse: it kept running")
    assert proc.returncode is not None
    return proc.returncode, err.decode(), time.monotonic() - started


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--host", "0.0.0.0"), {"BOT_SIMULATOR": "1"}),
        (("--demo", "--host", "0.0.0.0"), {}),
        ((), {"BOT_SIMULATOR": "1", "BOT_HOST": "0.0.0.0"}),
    ],
)
async def test_serve_refuses_the_simulator_on_every_address(tmp_path, args, env):
    code, err, seconds = await serve(tmp_path, *args, **env)
    assert code != 0, err
    assert "cannot start" in err and "simulator" in err and "BOT_SIMULATOR_PUBLIC=1" in err
    assert "127.0.0.1" in err  # says what to do instead
    assert "Traceback" not in err
    assert seconds < 30
