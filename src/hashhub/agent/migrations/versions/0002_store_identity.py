"""store identity: a random id that tells this store apart from any other (or a re-created one)

The agent's saved index files record the store id and revision they were written at; a file set
whose id differs from the store's (the database was replaced, or the files were copied from
elsewhere) is ignored and the index rebuilt from the store.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store_id", sa.String(length=36), nullable=True))
    state = sa.table("agent_state", sa.column("id", sa.Integer), sa.column("store_id", sa.String))
    op.execute(state.update().where(state.c.id == 1).values(store_id=str(uuid.uuid4())))


def downgrade() -> None:
    with op.batch_alter_table("agent_state", schema=None) as batch_op:
        batch_op.drop_column("store_id")
