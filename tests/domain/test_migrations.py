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


def test_upgrading_a_sqlite_database_keeps_its_data(tmp_path) -> None:
    """SQLite rebuilds a table to alter it; with foreign keys on, dropping the old table would
    run every ON DELETE rule pointing at it (owners cleared, children deleted)."""
    import sqlite3

    from alembic import command

    import migrations

    path = tmp_path / "upgrade.db"
    config = migrations.alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "8e1b5c7d2f60")  # the schema of the first release with leads
    with sqlite3.connect(path) as db:
        now = "2026-11-20 08:00:00"
        db.execute(
            "INSERT INTO users (id, username, display_name, role, password_hash, active, on_leave,"
            " locale, created_at, updated_at) VALUES (1, 'rep', '小王', 'sales', 'x', 1, 0,"
            " 'zh-CN', ?, ?)", (now, now))
        db.execute(
            "INSERT INTO customers (id, kind, name, name_key, owner_id, stage, custom,"
            " purchase_count, total_amount, currency, created_at, updated_at) VALUES"
            " (1, 'company', '青禾', '青禾', 1, 'prospect', '{}', 0, 0, 'CNY', ?, ?)", (now, now))
        db.execute(
            "INSERT INTO deals (id, name, customer_id, owner_id, pipeline, stage, status, currency,"
            " created_at, updated_at) VALUES (1, '青禾项目', 1, 1, 'default', 'initial_contact',"
            " 'open', 'CNY', ?, ?)", (now, now))
    command.upgrade(config, "head")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT owner_id FROM customers").fetchall() == [(1,)]
        assert db.execute("SELECT owner_id, customer_id FROM deals").fetchall() == [(1, 1)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
