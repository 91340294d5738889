"""The identical-resubmission index moves from `items` into a table of its own, `item_fp_keys`.

An index on `items` (contributor_id, fp_key) takes its entries in item id order, which for a digest
is random: a batch of 10,000 touched nearly every leaf page of it. A table of its own takes a
batch's entries sorted by key, in one pass (see `hashhub.hub.models.item_fp_keys`).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_fp_keys",
        sa.Column("contributor_id", sa.Integer(), nullable=False),
        sa.Column("fp_key", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("contributor_id", "fp_key", "item_id", name="pk_item_fp_keys"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO item_fp_keys (contributor_id, fp_key, item_id) "
        "SELECT contributor_id, fp_key, id FROM items ORDER BY contributor_id, fp_key, id"
    )
    op.drop_index("ix_items_contributor_fp_key", table_name="items")


def downgrade() -> None:
    op.create_index("ix_items_contributor_fp_key", "items", ["contributor_id", "fp_key"])
    op.drop_table("item_fp_keys")
