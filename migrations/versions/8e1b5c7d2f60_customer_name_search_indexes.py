"""customer name search: pg_trgm for `name LIKE '%…%'`, pattern_ops for `name_key LIKE '…%'`

PostgreSQL only in effect. `name LIKE '%…%'` can use a pg_trgm GIN index when the search text
has at least three characters (two-character searches have no trigram and stay scans);
`name_key LIKE '…%'` needs a pattern_ops b-tree, because a b-tree in a collation other than C
cannot serve LIKE (pattern_ops still serves `name_key = …` for duplicate detection).
On SQLite ix_customers_name_search is a plain b-tree on name over live rows (it serves
sort=name), so the models stay the same on both databases.

Revision ID: 8e1b5c7d2f60
Revises: 7d3f0a2c9e41
Create Date: 2026-11-24 00:46:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '8e1b5c7d2f60'
down_revision = '7d3f0a2c9e41'
branch_labels = None
depends_on = None

LIVE = "deleted_at IS NULL"


def _trgm_schema(bind: sa.engine.Connection) -> str:
    """The schema pg_trgm lives in, installing it (into public if there is one) when missing.

    Not into the current schema: with one schema per test run, dropping that run's schema would
    drop the extension, and with it the indexes of every other run.
    """
    query = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    )
    schema = bind.execute(query).scalar()
    if schema is None:
        public = bind.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")).scalar()
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if public else ""))
        schema = bind.execute(query).scalar_one()
    return schema


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        opclass = f'"{_trgm_schema(bind)}".gin_trgm_ops'
        op.execute(
            f"CREATE INDEX ix_customers_name_search ON customers USING gin (name {opclass})"
            f" WHERE {LIVE}"
        )
        op.drop_index("ix_customers_name_key", table_name="customers")
        op.execute("CREATE INDEX ix_customers_name_key ON customers (name_key varchar_pattern_ops)")
    else:
        op.create_index("ix_customers_name_search", "customers", ["name"], sqlite_where=sa.text(LIVE))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_customers_name_key", table_name="customers")
        op.create_index("ix_customers_name_key", "customers", ["name_key"])
    op.drop_index("ix_customers_name_search", table_name="customers")
