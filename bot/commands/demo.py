"""``python -m bot demo load``: idempotent demo data, so a new user sees something at once.

The data lives in ``bot/web/demo_data.yml``, one section per kind of data; each section has a
loader here (``LOADERS``). A later feature adds its section to the file and its loader to the table.
Loading twice changes nothing: rows are keyed (residents by openid, messages by a demo key), and
rows that already exist are left as they are.

No API token is created here: that is ``python -m bot token create``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.storage.db import Database
from bot.storage.models import Message, Resident, utcnow
from intents.registry import packaged_registry

DEMO_FILE = Path(__file__).resolve().parent.parent / "web" / "demo_data.yml"
DEMO_KEY = "demo:"
MESSAGE_TYPES = ("text", "voice", "image", "location", "link")


class DemoDataError(ValueError):
    """A problem in the demo data file; ``str()`` is ``file:line: what is wrong``."""


@dataclass
class Item:
    """One mapping from the file with where it is, for messages that name file and line."""

    data: dict[str, Any]
    file: Path
    line: int
    where: str
    node: yaml.Node | None = None

    def fail(self, message: str) -> DemoDataError:
        return DemoDataError(f"{self.file}:{self.line}: {self.where}: {message}")

    def text(self, name: str, limit: int, *, required: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(f"'{name}' is required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
            raise self.fail(f"'{name}' must be a non-empty text")
        text = str(value).strip()
        if len(text) > limit:
            raise self.fail(f"'{name}' is longer than {limit} characters")
        return text

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise self.fail(f"'{name}' must be a number from {lo:g} to {hi:g}, got {value!r}")
        return float(value)


@dataclass
class Counts:
    seen: int = 0
    added: int = 0


Loader = Callable[[AsyncSession, list[Item], datetime], Awaitable[dict[str, Counts]]]


# -- reading the file ---------------------------------------------------------------------------


def read(file: Path) -> dict[str, list[Item]]:
    """Sections of the data file as lists of :class:`Item`; raises :class:`DemoDataError`."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DemoDataError(f"{file}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DemoDataError(f"{file}: not UTF-8 text") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise DemoDataError(f"{file}:{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise DemoDataError(f"{file}:1: expected sections (residents: …) at the top level")
    sections: dict[str, list[Item]] = {}
    for key_node, value_node in root.value:
        name = str(key_node.value)
        if name not in LOADERS:
            known = ", ".join(sorted(LOADERS))
            raise DemoDataError(f"{file}:{key_node.start_mark.line + 1}: unknown section '{name}' (known: {known})")
        entries = data[name] or []
        if not isinstance(entries, list) or not isinstance(value_node, yaml.SequenceNode | yaml.ScalarNode):
            raise DemoDataError(f"{file}:{value_node.start_mark.line + 1}: '{name}' must be a list")
        items = []
        for i, entry in enumerate(entries):
            node = value_node.value[i] if isinstance(value_node, yaml.SequenceNode) else value_node
            item = Item(
                entry if isinstance(entry, dict) else {}, file, node.start_mark.line + 1, f"{name}[{i}]", node
            )
            if not isinstance(entry, dict):
                raise item.fail("each entry must be a mapping of fields")
            items.append(item)
        sections[name] = items
    return sections


def _children(item: Item, name: str) -> list[Item]:
    """The list field ``name`` of an item as items (with their own line numbers)."""
    value = item.data.get(name) or []
    if not isinstance(value, list):
        raise item.fail(f"'{name}' must be a list")
    node = item.node
    seq: yaml.Node | None = None
    if isinstance(node, yaml.MappingNode):
        seq = next((v for k, v in node.value if k.value == name), None)
    out = []
    for i, entry in enumerate(value):
        child_node = seq.value[i] if isinstance(seq, yaml.SequenceNode) else None
        line = child_node.start_mark.line + 1 if child_node is not None else item.line
        child = Item(
            entry if isinstance(entry, dict) else {}, item.file, line, f"{item.where}.{name}[{i}]", child_node
        )
        if not isinstance(entry, dict):
            raise child.fail("each entry must be a mapping of fields")
        out.append(child)
    return out


# -- loaders ------------------------------------------------------------------------------------


async def load_residents(session: AsyncSession, items: list[Item], now: datetime) -> dict[str, Counts]:
    residents, messages = Counts(), Counts()
    seen_openids: set[str] = set()
    for item in items:
        openid = item.text("openid", 64, required=True)
        assert openid is not None
        if openid in seen_openids:
            raise item.fail(f"openid {openid} appears twice")
        seen_openids.add(openid)
        community = item.text("community", 64)
        building = item.text("building", 64)
        scene = item.text("scene", 128)
        subscribed = item.data.get("subscribed", True)
        if not isinstance(subscribed, bool):
            raise item.fail("'subscribed' must be true or false")
        rows = [_message(child, now) for child in _children(item, "messages")]

        residents.seen += 1
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
        if resident is None:
            first = min((row.created_at for row in rows), default=now)
            last_in = max((row.created_at for row in rows if row.direction == "in"), default=None)
            resident = Resident(
                openid=openid,
                subscribed=subscribed,
                subscribed_at=first - timedelta(days=30),
                community=community,
                building=building,
                scene=scene,
                last_inbound_at=last_in,
                created_at=first - timedelta(days=30),
            )
            session.add(resident)
            await session.flush()
            residents.added += 1
        keys = [f"{DEMO_KEY}{openid}:{i}" for i in range(len(rows))]
        existing = set(
            await session.scalars(
                select(Message.dedup_key).where(Message.resident_id == resident.id, Message.dedup_key.in_(keys))
            )
        )
        for key, row in zip(keys, rows, strict=True):
            messages.seen += 1
            if key in existing:
                continue
            row.resident_id = resident.id
            row.dedup_key = key
            session.add(row)
            messages.added += 1
    return {"residents": residents, "messages": messages}


def _message(item: Item, now: datetime) -> Message:
    inbound, outbound = item.text("in", 2000), item.text("out", 2000)
    if (inbound is None) == (outbound is None):
        raise item.fail("give exactly one of 'in' (from the resident) or 'out' (from the assistant)")
    kind = item.text("type", 16) or "text"
    if kind not in MESSAGE_TYPES:
        raise item.fail(f"'type' must be one of {', '.join(MESSAGE_TYPES)}")
    intent = item.text("intent", 32)
    intents = packaged_registry().names  # the demo data goes with the packaged intents
    if intent is not None and intent not in intents:
        raise item.fail(f"'intent' must be one of {', '.join(intents)}")
    confidence = item.number("confidence", 1.0, 0.0, 1.0) if intent else None
    minutes = item.number("minutes_ago", 0, 0, 60 * 24 * 365)
    content = inbound if inbound is not None else outbound
    return Message(
        direction="in" if inbound is not None else "out",
        msg_type=kind,
        content=content,
        payload={"Content": content, "demo": True} if inbound is not None else {"kind": kind, "content": content},
        intent=intent if inbound is not None else None,
        confidence=confidence if inbound is not None else None,
        via=None if inbound is not None else "passive",
        created_at=now - timedelta(minutes=minutes),
    )


# -- points mall and courses (issue 6): merchants with coupons, courses with sessions --------------


async def load_merchants(session: AsyncSession, items: list[Item], now: datetime) -> dict[str, Counts]:
    from bot.storage.models import Coupon, Merchant

    merchants, coupons = Counts(), Counts()
    for item in items:
        name = item.text("name", 100, required=True)
        category = item.text("category", 16, required=True)
        merchants.seen += 1
        merchant = await session.scalar(select(Merchant).where(Merchant.name == name))
        if merchant is None:
            merchant = Merchant(
                name=name, category=category, address=item.text("address", 200), created_at=now
            )
            session.add(merchant)
            await session.flush()
            merchants.added += 1
        for child in _children(item, "coupons"):
            title = child.text("title", 100, required=True)
            coupons.seen += 1
            exists = await session.scalar(
                select(Coupon.id).where(Coupon.merchant_id == merchant.id, Coupon.title == title)
            )
            if exists is not None:
                continue
            session.add(
                Coupon(
                    merchant_id=merchant.id,
                    title=title,
                    category=child.text("category", 16) or category,
                    price=int(child.number("price", 0, 0, 100000)),
                    stock=int(child.number("stock", 10, 0, 100000)),
                    per_resident_limit=int(child.number("limit", 1, 1, 100)),
                    valid_from=now - timedelta(days=1),
                    valid_until=now + timedelta(days=child.number("valid_days", 60, 1, 3650)),
                    terms=child.text("terms", 1000),
                    created_at=now,
                )
            )
            coupons.added += 1
    return {"merchants": merchants, "coupons": coupons}


async def load_courses(session: AsyncSession, items: list[Item], now: datetime) -> dict[str, Counts]:
    from zoneinfo import ZoneInfo

    from bot.storage.models import Activity, ActivitySession

    tz = ZoneInfo("Asia/Shanghai")
    courses, sessions = Counts(), Counts()
    for item in items:
        title = item.text("title", 100, required=True)
        courses.seen += 1
        activity = await session.scalar(select(Activity).where(Activity.title == title))
        if activity is None:
            kind = item.text("kind", 16) or "course"
            if kind not in ("course", "activity", "volunteer"):
                raise item.fail("'kind' must be course, activity or volunteer")
            activity = Activity(
                title=title,
                description=item.text("description", 2000),
                kind=kind,
                category=item.text("category", 32, required=True),
                organiser=item.text("organiser", 100),
                place=item.text("place", 200),
                audience=item.text("audience", 64),
                points_cost=int(item.number("points_cost", 0, 0, 100000)),
                volunteer_hours=item.number("volunteer_hours", 0, 0, 24),
                created_at=now,
            )
            session.add(activity)
            await session.flush()
            courses.added += 1
        for child in _children(item, "sessions"):
            at = child.text("at", 5, required=True) or ""
            try:
                hour, minute = (int(x) for x in at.split(":"))
                local_day = (now.astimezone(tz) + timedelta(days=child.number("in_days", 1, 0, 365))).date()
                starts = datetime(local_day.year, local_day.month, local_day.day, hour, minute, tzinfo=tz)
            except ValueError:
                raise child.fail(f"'at' must be a time like 19:00, got {at!r}") from None
            sessions.seen += 1
            exists = await session.scalar(
                select(ActivitySession.id).where(
                    ActivitySession.activity_id == activity.id, ActivitySession.starts_at == starts
                )
            )
            if exists is not None:
                continue
            session.add(
                ActivitySession(
                    activity_id=activity.id,
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=child.number("hours", 1.5, 0.25, 24)),
                    capacity=int(child.number("capacity", 20, 0, 10000)),
                    booked=0,
                    created_at=now,
                )
            )
            sessions.added += 1
    return {"courses": courses, "sessions": sessions}


LOADERS: dict[str, Loader] = {
    "residents": load_residents,
    "merchants": load_merchants,
    "courses": load_courses,
}


# -- the command --------------------------------------------------------------------------------


async def load(database_url: str, file: Path = DEMO_FILE) -> dict[str, Counts]:
    """Load the demo data into the database (schema upgraded first); returns counts per kind."""
    sections = read(file)
    from bot.storage.migrate import upgrade

    db = Database(database_url)
    try:
        await upgrade(db)
        totals: dict[str, Counts] = {}
        now = utcnow()
        async with db.transaction() as session:
            for name, loader in LOADERS.items():
                if name in sections:
                    totals.update(await loader(session, sections[name], now))
        # Staff trying the console find the usual canned replies (问候, 稍等 …) when taking over.
        from bot.services.takeover import seed_canned

        await seed_canned(db, now)
        return totals
    finally:
        await db.dispose()


async def _load(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        totals = await load(settings.database_url, Path(args.file))
    except DemoDataError as exc:
        print(f"demo data error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"cannot load the demo data: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{c.seen} {name} ({c.added} new)" for name, c in totals.items())
    print(f"demo data loaded: {summary or 'nothing'}")
    from bot.services.accounts import ROLE_LABELS, demo_users

    db = Database(settings.database_url)
    try:
        users = await demo_users(db, utcnow())
    finally:
        await db.dispose()
    print("console accounts (log in at http://127.0.0.1:8080/login; new passwords on every load):")
    for name, role, password in users:
        print(f"  {name:<8} {password}   {role} ({ROLE_LABELS[role]})")
    return 0


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    p = sub.add_parser("demo", help="demo data for trying the service")
    dsub = p.add_subparsers(dest="demo_command", metavar="<demo command>", required=True)
    ld = dsub.add_parser(
        "load",
        help="load demo residents and their messages (idempotent; creates no API token)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ld.add_argument("--file", default=str(DEMO_FILE), help="the demo data file (default: %(default)s)")
    ld.set_defaults(func=_load)
