"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from domain.db import create_engine
from domain.tables import metadata


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == [], "write a migration: `dossier makemigration '...'`"


def test_downgrade_to_nothing_and_back(tmp_path) -> None:
    """A release can be rolled back: every migration's downgrade runs."""
    from alembic import command

    import migrations

    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"
    config = migrations.alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
