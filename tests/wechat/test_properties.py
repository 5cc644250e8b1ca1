"""Property-based tests (hypothesis) of /wechat's untrusted input: any body (random bytes, random
XML-ish trees, mutated genuine messages) and any query string (huge numbers, missing or doubled
fields, signed or not), in plaintext mode and with an EncodingAESKey (bodies then also inside a
correctly signed, encrypted envelope), get a reply or a 4xx from the running service: never a 5xx,
never a hang.

The examples are few on purpose (the suite stays fast); ``WECHAT_PROPERTY_EXAMPLES`` raises them
for a longer hunt.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.wechat.crypto import signature
from bot.wechat.simulate import WeChatSender, xml_of
from tests.conftest import (
    APPID,
    IN_CI,
    SECRET,
    TOKEN,
    _reachable,
    create_pg_database,
    free_port,
    make_settings,
    need_service,
    start_service,
)

EXAMPLES = int(os.environ.get("WECHAT_PROPERTY_EXAMPLES", "25"))
HANG = aiohttp.ClientTimeout(total=10)  # an answer slower than this counts as a hang
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI", "").lower() == "true",  # CI: the same examples every run
)
_nonces = itertools.count(secrets.randbelow(10**9) * 1000)

# Text a client can send (no lone surrogates); XML may still refuse some of it, which is the point.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=1, max_value=400).map(lambda n: "9" * n),
    st.sampled_from(["", "0", "-1", "1e9", "٣٤", "1_000", " 1", "0x10", "NaN"]),
)
FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey",
          "MediaId", "PicUrl", "Recognition", "Location_X", "Location_Y", "Scale", "Label", "Encrypt", "Ticket"]
TYPES = ["text", "image", "voice", "video", "shortvideo", "location", "link", "event", "file", "miniprogrampage"]
EVENTS = ["subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH", "pic_weixin"]


pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Wechat:
    """One running service, shared by the module's examples (services start in seconds, examples
    take milliseconds)."""

    wechat_url: str
    settings: Settings
    http: aiohttp.ClientSession

    def sender(self, mode: str) -> WeChatSender:
        s = self.settings
        return WeChatSender(self.wechat_url, s.wechat_token, s.wechat_appid, s.wechat_aes_key, mode=mode)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(tmp_path_factory, _pg_databases) -> AsyncIterator[dict[tuple[str, str], Wechat]]:
    """Plaintext (no EncodingAESKey) and AES services, on SQLite and, when reachable (always in
    CI), PostgreSQL, where what does not fit a column is an error rather than stored."""
    from bot.wechat.fake_api import run_fake_api

    databases = {"sqlite": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('wechat-properties') / 'bot.sqlite3'}"}
    if IN_CI or _reachable("127.0.0.1", 5432):
        name = await create_pg_database()
        _pg_databases.append(name)
        databases["postgres"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    runners = []
    async with run_fake_api(credentials={APPID: SECRET}) as fake, aiohttp.ClientSession() as http:
        out: dict[tuple[str, str], Wechat] = {}
        try:
            for (db_name, url), mode in itertools.product(databases.items(), ("plaintext", "aes")):
                port = free_port()
                keyless = {"BOT_WECHAT_AES_KEY": ""} if mode == "plaintext" else {}
                settings = make_settings(url, tmp_path_factory.mktemp("data"), BOT_PORT=port,
                                         BOT_WECHAT_API_BASE=fake, **keyless)
                runners.append(await start_service(settings))
                out[(db_name, mode)] = Wechat(f"http://127.0.0.1:{port}/wechat", settings, http)
            yield out
        finally:
            for runner in reversed(runners):
                await runner.cleanup()


@pytest.fixture(scope="module", params=["plaintext", "aes"])
def wechat(request: pytest.FixtureRequest, services) -> Wechat:
    return services[("sqlite", request.param)]


@pytest.fixture(scope="module", params=["sqlite-plaintext", "sqlite-aes", "postgres-plaintext", "postgres-aes"])
def wechat_db(request: pytest.FixtureRequest, services) -> Wechat:
    db, mode = request.param.split("-")
    if (db, mode) not in services:
        need_service("PostgreSQL", "127.0.0.1", 5432)
    return services[(db, mode)]


def fresh(ts: str | None = None) -> tuple[str, str]:
    return ts or str(int(time.time())), str(next(_nonces))


def signed_query(ts: str | None = None) -> dict[str, str]:
    ts, nonce = fresh(ts)
    return {"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}


async def check(svc: Wechat, method: str, params: dict[str, str], body: bytes | None = None) -> int:
    """The request's answer must be a reply (200: ``success`` or passive XML) or a 4xx with a reason."""
    async with svc.http.request(method, svc.wechat_url, params=params, data=body, timeout=HANG) as resp:
        text = await resp.text()
    assert resp.status < 500, (resp.status, text[:300], params, (body or b"")[:300])
    assert "Traceback" not in text
    if resp.status == 200 and method == "POST":
        assert text == "success" or text.startswith("<xml>"), text[:300]
    elif resp.status >= 400:
        assert text.strip(), "a refusal names its reason"
    return resp.status


async def post_any(svc: Wechat, xml: str | bytes) -> int:
    """``xml`` as the body, correctly signed: as is in plaintext mode; with a key, encrypted in a
    signed envelope (so it reaches the inner parser) and also as is (a refused plaintext)."""
    data = xml if isinstance(xml, bytes) else xml.encode("utf-8", "surrogatepass")
    if svc.settings.accepts_plaintext:
        return await check(svc, "POST", signed_query(), data)
    await check(svc, "POST", signed_query(), data)
    sender = svc.sender("safe")
    ts, nonce = fresh()
    text = data.decode("utf-8", "replace")
    query, envelope = sender.build(text, timestamp=ts, nonce=nonce)
    return await check(svc, "POST", query, envelope.encode())


# --- bodies ----------------------------------------------------------------------------------------


@PROPERTY
@given(body=st.binary(max_size=3000))
async def test_random_bytes(wechat, body):
    await post_any(wechat, body)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    name = st.one_of(st.sampled_from([*FIELDS, "xml", "item", "a"]), st.from_regex(r"[A-Za-z_][\w.-]{0,12}", fullmatch=True))
    attrs = st.lists(st.tuples(st.from_regex(r"[a-z]{1,5}", fullmatch=True), st.from_regex(r"[\w ]{0,8}", fullmatch=True)), max_size=2)
    content = st.one_of(
        st.lists(children, max_size=4).map("".join),
        TEXT.map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;")),
        TEXT.map(lambda t: f"<![CDATA[{t}]]>"),
        NUMBERS,
    )
    return st.builds(_render, name, attrs, content)


def _render(name: str, attrs: list[tuple[str, str]], content: str) -> str:
    attributes = "".join(f' {k}="{v}"' for k, v in attrs)
    return f"<{name}{attributes}>{content}</{name}>"


XML_TREES = st.recursive(TEXT.map(lambda t: t.replace("<", "&lt;").replace("&", "&amp;")), _element, max_leaves=25)
XML_DOCS = st.one_of(
    st.lists(XML_TREES, max_size=8).map(lambda parts: "<xml>" + "".join(parts) + "</xml>"),
    XML_TREES,
    st.tuples(st.sampled_from(["<?xml version='1.0'?>", "<!DOCTYPE xml>", "<!-- c -->", ""]), XML_TREES).map("".join),
)


@PROPERTY
@given(xml=XML_DOCS)
async def test_random_xml_trees(wechat, xml):
    await post_any(wechat, xml)


def genuine(kind: str, openid: str) -> dict[str, Any]:
    s = WeChatSender("http://127.0.0.1/wechat", TOKEN, "x")
    return {
        "text": lambda: s.text(openid, "你好"),
        "voice": lambda: s.voice(openid, recognition="转人工"),
        "image": lambda: s.image(openid, "media-1"),
        "location": lambda: s.location(openid, 40.08, 113.3, "平城区新建南路"),
        "link": lambda: s.link(openid, "通知", "https://example.org"),
        "click": lambda: s.event(openid, "CLICK", "REPORT"),
        "subscribe": lambda: s.event(openid, "subscribe", "qrscene_building:新建南社区/3号楼"),
    }[kind]()


MUTATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("drop"), st.sampled_from(FIELDS), st.none()),
        st.tuples(st.just("set"), st.sampled_from(FIELDS), st.one_of(TEXT, NUMBERS, st.sampled_from(TYPES), st.sampled_from(EVENTS))),
        st.tuples(st.just("set"), st.from_regex(r"[A-Za-z]{1,10}", fullmatch=True), TEXT),
    ),
    max_size=5,
)


@PROPERTY
@given(kind=st.sampled_from(["text", "voice", "image", "location", "link", "click", "subscribe"]),
       openid=st.one_of(st.from_regex(r"o[A-Za-z0-9_-]{5,27}", fullmatch=True), TEXT), mutations=MUTATIONS)
async def test_mutated_genuine_messages(wechat_db, kind, openid, mutations):
    fields = genuine(kind, openid)
    for op, name, value in mutations:
        if op == "drop":
            fields.pop(name, None)
        else:
            fields[name] = value
    await post_any(wechat_db, xml_of(fields))


# --- query strings ---------------------------------------------------------------------------------

QUERY_KEYS = ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "openid", "echostr"]
QUERY_VALUES = st.one_of(NUMBERS, TEXT, st.sampled_from(["aes", "raw", "AES", ""]), st.just("f" * 40))


@PROPERTY
@given(
    query=st.dictionaries(st.sampled_from(QUERY_KEYS), QUERY_VALUES, max_size=7),
    sign=st.booleans(),
    keep_timestamp=st.booleans(),
    method=st.sampled_from(["GET", "POST"]),
    stale=st.sampled_from([0, 0, 301, -301, 30 * 86400]),
)
async def test_random_query_strings(wechat, query, sign, keep_timestamp, method, stale):
    if sign:  # signed over whatever timestamp and nonce it has, so the checks after the signature run
        if not keep_timestamp or "timestamp" not in query:
            query["timestamp"] = str(int(time.time()) - stale)
        query.setdefault("nonce", str(next(_nonces)))
        query["signature"] = signature(TOKEN, query["timestamp"], query["nonce"])
    body = xml_of(genuine("text", "o_query_fuzz")).encode() if method == "POST" else None
    await check(wechat, method, query, body)
