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


def test_one_head() -> None:
    # Branches made in parallel are merged before they land: `db current` prints one revision,
    # and the next migration has one place to start from.
    from alembic.script import ScriptDirectory

    from bot.storage.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads
