"""Two services on one database: a claim made through one silences the bot in the other, and a
release through the other gives the conversation back to the bot in both."""

from __future__ import annotations

from tests.web.console_util import add_users, login


async def test_claim_in_one_service_silences_the_bot_in_the_other(service_factory, sqlite_url, fake_api):
    a = await service_factory(sqlite_url, fake_api)
    b = await service_factory(sqlite_url, fake_api)
    await add_users(sqlite_url, ("zhang", "supervisor", {}))
    s = b.sender()
    openid = "o_console_two_0001"
    reply = await s.send(b.http, s.text(openid, "转人工"))
    assert reply.content
    client = await login(a.http, a.base, "zhang")
    status, html, _ = await client.get("/console/handoffs")
    assert status == 200
    import re

    resident = re.search(r"/console/conversations/(\d+)", html)
    assert resident
    status, _, _ = await client.post(f"/console/conversations/{resident.group(1)}/claim")
    assert status == 303
    silent = await s.send(b.http, s.text(openid, "你好"))
    assert silent.status == 200 and silent.content is None  # b stays silent: a's claim
    status, _, _ = await client.post(f"/console/conversations/{resident.group(1)}/release")
    assert status == 303
    again = await s.send(b.http, s.text(openid, "你好"))
    assert again.content
