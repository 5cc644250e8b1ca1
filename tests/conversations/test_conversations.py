"""The conversation suite: every scripted conversation in ``tests/conversations/*.yml`` through
``/wechat`` — signed and encrypted (safe mode) as WeChat sends it — against one service per
database, each conversation with its own residents (openids). Replies are checked for facts
(contains / regex / not-contains), tickets and the points ledger through the JSON API, pushes
through the fake WeChat API. The format: ``docs/conversations.md``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from bot.clock import ManualClock
from bot.config import Settings
from bot.services import handoff
from bot.services.tickets import CHINA
from bot.storage.db import Database
from bot.wechat.simulate import WeChatSender
from tests.api.conftest import make_tokens
from tests.conftest import (
    APPID,
    IN_CI,
    SECRET,
    _reachable,
    create_pg_database,
    free_port,
    make_settings,
    need_service,
    start_service,
)
from tests.conversations import script
from tests.conversations.script import Conversation

CONVERSATIONS = script.load()
HERE = Path(__file__).resolve().parent
RULES = HERE.parents[1] / "bot" / "rules"
# Monday 23 November 2026, 10:00 in Beijing: inside office hours; conversations may set another time.
DAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# The suite's community lines (an operator's data_dir/hazards.yml and office.yml).
DUTY_PHONE = "010-84561234"
CENTRE_PHONE = "010-84560000"

VERBOSE = os.environ.get("CONVERSATIONS_VERBOSE") == "1"  # print every reply (run with -s)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Suite:
    name: str
    base: str
    settings: Settings
    clock: ManualClock
    http: aiohttp.ClientSession
    fake: str
    tokens: dict[str, str]
    db: Database
    residents: dict[str, int] = field(default_factory=dict)

    def sender(self) -> WeChatSender:
        s = self.settings
        return WeChatSender(f"{self.base}/wechat", s.wechat_token, s.wechat_appid, s.wechat_aes_key, mode="safe")

    async def api(self, method: str, path: str, role: str = "supervisor", **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        async with self.http.request(method, f"{self.base}/api/v1{path}", headers=headers, **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    async def ok(self, method: str, path: str, role: str = "supervisor", **kwargs: Any) -> Any:
        status, body = await self.api(method, path, role, **kwargs)
        assert status < 300, (method, path, status, body)
        return body

    async def sent(self, openid: str, since: int = 0) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.fake}/fake/sent", params={"openid": openid, "since": str(since)}) as resp:
            return list((await resp.json())["messages"])

    async def last_seq(self) -> int:
        async with self.http.get(f"{self.fake}/fake/sent", params={"openid": "-"}) as resp:
            return int((await resp.json())["last_seq"])

    async def resident_id(self, openid: str) -> int | None:
        if openid not in self.residents:
            body = await self.ok("GET", "/residents", params={"q": openid})
            exact = [r for r in body["items"] if r["openid"] == openid]
            if not exact:
                return None
            self.residents[openid] = int(exact[0]["id"])
        return self.residents[openid]


def _hazards_file() -> str:
    packaged = (RULES / "hazards.yml").read_text(encoding="utf-8")
    changed = packaged.replace('duty: {name: 物业值班电话, number: ""', f'duty: {{name: 物业值班电话, number: "{DUTY_PHONE}"')
    assert changed != packaged, "the packaged hazards.yml has no empty duty line any more: update the suite"
    return changed


def _community_files(folder: Path) -> None:
    """The operator's files of the suite's community: its duty phone and the centre's phone."""
    folder.mkdir()
    (folder / "hazards.yml").write_text(_hazards_file(), encoding="utf-8")
    office = (RULES / "office.yml").read_text(encoding="utf-8")
    (folder / "office.yml").write_text(office.replace('phone: ""', f'phone: "{CENTRE_PHONE}"'), encoding="utf-8")


async def _catalogue(suite: Suite) -> None:
    """Merchants, coupons, courses and sessions of ``_catalogue.yml``, made through the staff API,
    dated from the suite's clock."""
    doc = yaml.safe_load((HERE / "_catalogue.yml").read_text(encoding="utf-8"))
    now = suite.clock.now()
    for m in doc["merchants"]:
        merchant = await suite.ok("POST", "/merchants", json={k: m[k] for k in ("name", "category", "address") if k in m})
        for c in m["coupons"]:
            body = {k: v for k, v in c.items() if k != "valid_days"}
            body.update(merchant_id=merchant["id"], category=m["category"],
                        valid_from=(now - timedelta(days=1)).isoformat(),
                        valid_until=(now + timedelta(days=int(c.get("valid_days", 30)))).isoformat())
            await suite.ok("POST", "/coupons", json=body)
    for a in doc["courses"]:
        activity = await suite.ok("POST", "/activities", json={k: v for k, v in a.items() if k != "sessions"})
        for s in a["sessions"]:
            day = (now + timedelta(days=int(s["in_days"]))).astimezone(CHINA)
            hour, minute = (int(x) for x in str(s["at"]).split(":"))
            starts = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
            await suite.ok("POST", f"/activities/{activity['id']}/sessions", json={
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=float(s.get("hours", 1.5)))).isoformat(),
                "capacity": int(s["capacity"]),
            })


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                _pg_databases: list[str]) -> AsyncIterator[Suite]:
    from bot.wechat.fake_api import run_fake_api

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('conversations') / 'bot.sqlite3'}"
    else:
        if not (IN_CI or _reachable("127.0.0.1", 5432)):
            need_service("PostgreSQL", "127.0.0.1", 5432)
        name = await create_pg_database()
        _pg_databases.append(name)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    data_dir = tmp_path_factory.mktemp("conversations-data")
    _community_files(data_dir / "data")
    clock = ManualClock(DAY)
    async with run_fake_api(credentials={APPID: SECRET}) as fake, aiohttp.ClientSession() as http:
        port = free_port()
        settings = make_settings(url, data_dir, BOT_PORT=port, BOT_WECHAT_API_BASE=fake)
        runner = await start_service(settings, clock=clock)
        db = Database(url)
        try:
            suite = Suite(request.param, f"http://127.0.0.1:{port}", settings, clock, http, fake,
                          await make_tokens(url), db)
            await _catalogue(suite)
            yield suite
        finally:
            await runner.cleanup()
            await db.dispose()


# ----------------------------------------------------------------------------------- the run
@dataclass
class Run:
    suite: Suite
    conv: Conversation
    seen: dict[str, int] = field(default_factory=dict)  # openid → last fake-API seq taken as a reply

    def openid(self, who: str | None) -> str:
        slug = re.sub(r"[^A-Za-z0-9]", "", self.conv.file)[:12]
        return f"c_{slug}_{self.conv.index:02d}_{who or 'me'}"

    async def send(self, where: str, step: dict[str, Any]) -> str:
        s, openid = self.suite.sender(), self.openid(step.get("who"))
        if "say" in step:
            fields = s.text(openid, str(step["say"]))
        elif "voice" in step:
            fields = s.voice(openid, None if step["voice"] is None else str(step["voice"]))
        elif "image" in step:
            async with self.suite.http.post(f"{self.suite.fake}/fake/media", data=PNG,
                                            headers={"Content-Type": "image/png"}) as resp:
                media_id = str((await resp.json())["media_id"])
            fields = s.image(openid, media_id)
        elif "location" in step:
            loc = step["location"] if isinstance(step["location"], dict) else {"label": str(step["location"])}
            fields = s.location(openid, float(loc.get("lat", 39.91)), float(loc.get("lng", 116.40)), str(loc["label"]))
        elif "link" in step:
            fields = s.link(openid, "分享", str(step["link"]))
        elif "click" in step:
            fields = s.event(openid, "CLICK", str(step["click"]))
        elif "subscribe" in step:
            scene = step["subscribe"]
            fields = s.event(openid, "subscribe", f"qrscene_{scene}" if scene not in (None, True, "") else "")
        else:
            fields = s.event(openid, "SCAN", str(step["scan"]), Ticket="SUITE")
        before = await self.suite.last_seq()
        sent = await s.send(self.suite.http, fields)
        assert sent.status == 200, f"{where}: /wechat answered {sent.status}: {sent.body[:200]}"
        if sent.content is not None:
            return sent.content
        if sent.reply is not None:  # an image or news reply
            return f"[{sent.reply.get('MsgType')}]"
        if not step.get("expect") or step["expect"].get("empty"):
            return ""
        # Past the 5-second budget the answer comes as customer-service messages: read those.
        async def deferred() -> str:
            texts = [m["payload"].get("text", {}).get("content", "") for m in await self.suite.sent(openid, before)]
            assert texts, "no deferred answer yet"
            return "\n".join(texts)
        return str(await script.eventually(deferred, attempts=100, pause=0.1))

    async def ticket_list(self, who: str | None) -> list[dict[str, Any]]:
        rid = await self.suite.resident_id(self.openid(who))
        if rid is None:
            return []
        body = await self.suite.ok("GET", "/tickets", params={"resident_id": str(rid), "limit": "100"})
        return list(body["items"])

    async def newest_ticket(self, where: str, who: str | None, which: Any = "last") -> dict[str, Any]:
        rows = await self.ticket_list(who)
        assert rows, f"{where}: the resident has no ticket"
        chosen = rows[0] if which in ("last", None) else rows[-1] if which == "first" else rows[-int(which)]
        return dict(await self.suite.ok("GET", f"/tickets/{chosen['id']}"))

    async def staff(self, where: str, step: dict[str, Any]) -> None:
        spec = dict(step["staff"])
        who = spec.pop("who", step.get("who"))
        role = spec.pop("role", "supervisor")
        if "points" in spec:
            rid = await self.suite.resident_id(self.openid(who))
            assert rid is not None, f"{where}: the resident has not written yet"
            await self.suite.ok("POST", "/points/adjustments", role, json={
                "resident_id": rid, "amount": int(spec["points"]), "note": "conversation suite"})
            return
        ticket = await self.newest_ticket(where, who, spec.pop("ticket", "last"))
        if "comment" in spec:
            await self.suite.ok("POST", f"/tickets/{ticket['id']}/comments", role,
                                json={"text": str(spec["comment"]), "public": bool(spec.get("public", True))})
            return
        if ticket["status"] == "submitted" and spec.get("action") not in ("dispatch", "reject", "escalate"):
            # Left for triage (routing unsure): staff dispatch it first, as they would.
            await self.suite.ok("POST", f"/tickets/{ticket['id']}/transitions", role,
                                json={"action": "dispatch", "department": "物业服务中心"})
        status, body = await self.suite.api("POST", f"/tickets/{ticket['id']}/transitions", role, json=spec)
        assert status == 200, f"{where}: staff {spec} on {ticket['number']} ({ticket['status']}): {status} {body}"

    async def check(self, where: str, spec: dict[str, Any], who: str | None) -> None:
        if "tickets" in spec:
            await self.check_tickets(where, dict(spec["tickets"]), who)
        if "points" in spec:
            await self.check_points(where, dict(spec["points"]), who)
        if "pushes" in spec:
            await self.check_pushes(where, dict(spec["pushes"]), who)
        if "handoff" in spec:
            await self.check_handoff(where, spec["handoff"], who)

    async def check_tickets(self, where: str, spec: dict[str, Any], who: str | None) -> None:
        who = spec.pop("who", who)
        rows = await self.ticket_list(who)
        if "count" in spec:
            assert len(rows) == int(spec.pop("count")), f"{where}: {len(rows)} tickets: {[r['text'] for r in rows]}"
        for which in ("last", "first"):
            if which in spec:
                ticket = await self.newest_ticket(where, who, which)
                script.match_fields(f"{where} ({which} ticket {ticket['number']})", ticket, dict(spec.pop(which)))
        assert not spec, f"{where}: unknown tickets checks {sorted(spec)}"

    async def check_points(self, where: str, spec: dict[str, Any], who: str | None) -> None:
        rid = await self.suite.resident_id(self.openid(spec.pop("who", who)))
        assert rid is not None, f"{where}: no such resident yet"
        account = await self.suite.ok("GET", f"/points/residents/{rid}")
        if "balance" in spec:
            assert account["balance"] == int(spec.pop("balance")), f"{where}: balance {account['balance']}"
        reasons = [e["reason"] for e in account["entries"]]
        for reason in script._as_list(spec.pop("has", None)):
            assert reason in reasons, f"{where}: no {reason!r} entry: {reasons}"
        if "entries" in spec:
            assert len(reasons) == int(spec.pop("entries")), f"{where}: entries {reasons}"
        assert not spec, f"{where}: unknown points checks {sorted(spec)}"

    async def check_pushes(self, where: str, spec: dict[str, Any], who: str | None) -> None:
        openid = self.openid(spec.pop("who", who))
        positive = any(k in spec for k in ("contains", "count", "images"))
        if not positive:
            await asyncio.sleep(0.6)  # only absences to check: give the outbox time to send anything queued

        async def probe() -> None:
            messages = await self.suite.sent(openid)
            texts = [m["payload"].get("text", {}).get("content", "") for m in messages if m["msgtype"] == "text"]
            joined = " | ".join(texts)
            for word in script._as_list(spec.get("contains")):
                assert any(str(word) in t for t in texts), f"{where}: no push with {word!r}: {joined!r}"
            for word in script._as_list(spec.get("not_contains")):
                assert all(str(word) not in t for t in texts), f"{where}: a push has {word!r}: {joined!r}"
            for word, n in dict(spec.get("count_containing") or {}).items():
                found = sum(str(word) in t for t in texts)
                assert found == int(n), f"{where}: {found} pushes with {word!r}, expected {n}: {joined!r}"
            if "count" in spec:
                assert len(messages) == int(spec["count"]), f"{where}: {len(messages)} pushes: {joined!r}"
            if "images" in spec:
                images = sum(m["msgtype"] == "image" for m in messages)
                assert images == int(spec["images"]), f"{where}: {images} image pushes"

        await script.eventually(probe)

    async def check_handoff(self, where: str, spec: Any, who: str | None) -> None:
        rid = await self.suite.resident_id(self.openid(who))
        rows = [r for r in await handoff.open_requests(self.suite.db, 1000) if r.resident_id == rid]
        if spec in (None, "none", False):
            assert not rows, f"{where}: an open handoff request: {[(r.reason, r.text) for r in rows]}"
            return
        assert rows, f"{where}: no open handoff request"
        script.match_fields(where, {"reason": rows[0].reason, "asks": rows[0].asks, "text": rows[0].text,
                                    "status": rows[0].status}, dict(spec))


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=[c.id for c in CONVERSATIONS])
async def test_conversation(suite: Suite, conv: Conversation) -> None:
    suite.clock.set(script.local_time(conv.at, DAY) if conv.at else DAY)
    run = Run(suite, conv)
    for n, step in enumerate(conv.steps, 1):
        where = f"{conv.id} «{conv.name}» [{suite.name}] step {n}"
        if "wait" in step:
            suite.clock.advance(script.duration(step["wait"]))
        elif "staff" in step:
            await run.staff(where, step)
        elif "check" in step:
            await run.check(where, dict(step["check"]), step.get("who"))
        else:
            reply = await run.send(where, step)
            if VERBOSE:
                print(f"{where}: {step.get('who') or 'me'} → {reply!r}")
            if step.get("expect"):
                script.check_reply(where, reply, dict(step["expect"]))

