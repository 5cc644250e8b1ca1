"""Residents' ids as the console shows them: masked, yet two residents with short ids (test and
demo ids, ``o_a1``) still look different, and no part of a short id beyond its first character is
on the page. Over HTTP on SQLite, the residents writing through /wechat."""

from __future__ import annotations

import html
import re

from tests.web.console_util import ZHANG, login, say, start_console


async def test_short_ids_are_told_apart_without_showing_them(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    ids = ["o_a1x", "o_b2x"]
    for openid in ids:
        assert await say(svc, openid, "你好")
    zhang = await login(svc.http, svc.base, "zhang")
    _, page, _ = await zhang.get("/console/inbox")
    page = html.unescape(page)
    shown = re.findall(r'<small class="muted">([^<]*)</small>', page)
    assert len(shown) == 2 and shown[0] != shown[1], shown
    for masked in shown:
        assert masked.startswith("o…"), masked
        assert not any(openid in masked or openid[1:] in masked for openid in ids), masked
        assert masked not in ("o_…", "o…")
    assert not any(openid in page for openid in ids)
