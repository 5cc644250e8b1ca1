"""Schema upgrades through Alembic, callable from the CLI and at server start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(db: Database, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` on the database's own engine."""

    def _upgrade(sync_conn: object) -> None:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await _run_sync(conn, _upgrade)


async def _run_sync(conn: AsyncConnection, fn: object) -> None:
    await conn.run_sync(fn)  # type: ignore[arg-type]


async def current(db: Database) -> str | None:
    """The schema's revision, or its heads joined with '+' when several branches are applied."""
    from alembic.runtime.migration import MigrationContext

    async with db.engine.connect() as conn:
        heads = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())
    return "+".join(sorted(heads)) if heads else None
