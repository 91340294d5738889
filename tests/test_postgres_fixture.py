"""The PostgreSQL fixture starts a real server and hands each test its own empty database."""

from __future__ import annotations

import sqlalchemy as sa


def test_fresh_database_is_real_and_empty(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select version()")).scalar_one().startswith("PostgreSQL")
        tables = conn.execute(
            sa.text("select count(*) from pg_tables where schemaname = 'public'")
        ).scalar_one()
        assert tables == 0
    engine.dispose()
