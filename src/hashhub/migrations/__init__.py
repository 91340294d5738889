"""The hub's Alembic migrations (applied by `hashhub.db.upgrade(engine, MIGRATIONS)`)."""
