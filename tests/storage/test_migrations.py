"""The schema comes only from migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.storage.db import Database
from bot.storage.migrate import current, upgrade
from bot.storage.models import Base


async def test_migrations_match_models_and_are_idempotent(database_url):
    db = Database(database_url)
    try:
        await upgrade(db)
        await upgrade(db)  # a second run changes nothing
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
        assert diff == []
        assert await current(db) is not None
    finally:
        await db.dispose()
