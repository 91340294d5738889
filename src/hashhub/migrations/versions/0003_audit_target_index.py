"""Index the audit log by (target, seq): an item's audit trail is an index range, not a scan.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_target_seq", "audit_log", ["target", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_target_seq", table_name="audit_log")
