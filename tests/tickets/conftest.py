"""Tickets through the WeChat endpoint and the JSON API, with a controllable clock."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.storage.db import Database
from bot.storage.models import Ticket, TicketEvent
from tests.api.conftest import Api, make_tokens
from tests.conftest import Service, ServiceFactory

START = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


@dataclasses.dataclass
class Desk:
    """The service, the clock it runs on, the staff API and a database handle for checks."""

    svc: Service
    clock: ManualClock
    api: Api
    db: Database

    async def say(self, openid: str, text: str) -> str:
        s = self.svc.sender()
        reply = await s.send(self.svc.http, s.text(openid, text))
        assert reply.status == 200, reply.body
        return reply.content or ""

    async def send(self, fields: dict[str, Any]) -> str:
        reply = await self.svc.sender().send(self.svc.http, fields)
        assert reply.status == 200, reply.body
        return reply.content or ""

    async def tickets(self) -> list[Ticket]:
        async with self.db.session() as s:
            return list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        async with self.db.session() as s:
            return list(
                (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                 .order_by(TicketEvent.id))).all()
            )

    async def act(self, ticket_id: int, token: str = "supervisor", **body: Any) -> tuple[int, Any]:
        status, data, _ = await self.api.call("POST", f"/tickets/{ticket_id}/transitions", token, json=body)
        return status, data

    async def pushed(self, openid: str, contains: str, attempts: int = 200) -> list[str]:
        """Customer-service texts the fake WeChat API received for ``openid`` once one contains ``contains``."""
        texts: list[str] = []
        for _ in range(attempts):
            texts = [m["payload"].get("text", {}).get("content", "") for m in await self.svc.fake_sent(openid)]
            if any(contains in t for t in texts):
                return texts
            await asyncio.sleep(0.05)
        raise AssertionError(f"no pushed message containing {contains!r}; got {texts}")


@pytest.fixture
async def desk(service_factory: ServiceFactory, database_url: str, fake_api: str) -> Any:
    clock = ManualClock(START)
    svc = await service_factory(database_url, fake_api, app_kwargs={"clock": clock})
    api = Api(svc, await make_tokens(database_url))
    db = Database(database_url)
    yield Desk(svc, clock, api, db)
    await db.dispose()
