"""Forcing a race between two database transactions, for tests of what a service does when it
loses one: the first holds its row locks while the second waits on them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from bot.storage.db import Database


async def while_held(db: Database, first: Callable[[Connection], Any], second: Callable[[Connection], Any]) -> Any:
    """``first`` in a transaction left open while ``second`` runs in its own (and waits for the
    first's row locks); then the first commits and the second's outcome is returned."""
    async with db.engine.connect() as conn:
        await conn.begin()
        await conn.run_sync(first)
        task = asyncio.create_task(db.run_sync_transaction(second))
        await asyncio.sleep(0.5)
        assert not task.done()  # waiting on a lock the first holds
        await conn.commit()
    return await task
