"""When something goes wrong on a console page, staff get the console's page in Chinese, never
aiohttp's English one: a form too large to take (413), and a failure inside the server (the
database's tickets table gone: 500), which is logged with its place but without its message."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from tests.web.console_util import add_users, login

ENGLISH = ("Internal Server Error", "Server got itself in trouble", "Request Entity Too Large", "Traceback")


async def test_a_form_too_large_is_said_in_chinese(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("zhang", "supervisor", {}))
    zhang = await login(svc.http, svc.base, "zhang")
    too_much = "字" * (max(svc.settings.max_body_bytes, 1024 * 1024) // 3 + 10)
    status, page, resp = await zhang.post("/console/canned", {"title": "太长", "text": too_much})
    assert status == 413, status
    assert "提交的内容太大了" in page and not any(word in page for word in ENGLISH), page[:500]
    assert resp.headers["X-Frame-Options"] == "DENY"


async def test_a_server_failure_is_the_consoles_page_and_logged_without_its_message(
    service_factory, sqlite_url, fake_api, caplog
):
    svc = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("zhang", "supervisor", {}))
    zhang = await login(svc.http, svc.base, "zhang")
    status, _, _ = await zhang.get("/console/tickets")
    assert status == 200
    # The database breaks under the running service. In a thread of its own: the service runs
    # on this test's event loop, and a write of the service's (a scheduler job) that began before
    # can only commit while the loop runs, so waiting for the lock on the loop's thread waited for
    # ever. The write lock is taken first (BEGIN IMMEDIATE), so a commit in between makes it wait,
    # not fail.
    def rename() -> None:
        engine = sa.create_engine(sqlite_url.replace("+aiosqlite", ""), connect_args={"timeout": 60},
                                  isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            connection.exec_driver_sql("ALTER TABLE tickets RENAME TO tickets_gone")
            connection.exec_driver_sql("COMMIT")
        engine.dispose()

    await asyncio.to_thread(rename)
    caplog.set_level(logging.ERROR, logger="bot.web.console")
    status, page, resp = await zhang.get("/console/tickets?number=13800138000")
    assert status == 500, status
    assert "系统出错了" in page and not any(word in page for word in ENGLISH), page[:500]
    assert resp.headers["Content-Type"].startswith("text/html")
    logged = [r.getMessage() for r in caplog.records if r.name == "bot.web.console"]
    assert any("unhandled OperationalError in GET /console/tickets" in m for m in logged), logged
    assert not any("13800138000" in m or "no such table" in m for m in logged), logged
