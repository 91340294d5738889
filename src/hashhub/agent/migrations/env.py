"""Alembic environment for the agent's tables, run on the engine `hashhub.db.upgrade` hands over.

The agent keeps its own version table so that a hub and an agent may share one database.
"""

from __future__ import annotations

from alembic import context

from hashhub.agent.models import Base

VERSION_TABLE = "agent_alembic_version"

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
