"""Index items by (contributor, fingerprint-set digest): ingest finds identical resubmissions in SQL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_contributor_fp_key", "items", ["contributor_id", "fp_key"])


def downgrade() -> None:
    op.drop_index("ix_items_contributor_fp_key", table_name="items")
