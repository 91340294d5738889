"""One row per item: fingerprints and quality become JSON columns of `items`; `fingerprints` a view.

Bulk import wrote four rows an item (the item, two fingerprints, a change); now it writes two. The
old table's shape stays readable as a view (item_id, signal, value, quality) for ad-hoc SQL.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SQLITE_VIEW = """
CREATE VIEW fingerprints AS
SELECT items.id AS item_id, f.key AS signal, f.value AS value,
       CAST(json_extract(items.quality, '$."' || f.key || '"') AS INTEGER) AS quality
FROM items, json_each(items.fingerprints) AS f
"""
_POSTGRES_VIEW = """
CREATE VIEW fingerprints AS
SELECT items.id AS item_id, f.key AS signal, f.value AS value,
       CAST(CAST(items.quality AS jsonb) ->> f.key AS smallint) AS quality
FROM items CROSS JOIN LATERAL jsonb_each_text(CAST(items.fingerprints AS jsonb)) AS f
"""

# Old rows -> columns. Keys in signal order; quality NULL when no fingerprint of the item had one.
_SQLITE_MOVE = """
UPDATE items SET
  fingerprints = (SELECT json_group_object(signal, value) FROM
                    (SELECT signal, value FROM fingerprints_old f
                     WHERE f.item_id = items.id ORDER BY signal)),
  quality = (SELECT CASE WHEN count(*) = 0 THEN NULL ELSE json_group_object(signal, quality) END FROM
               (SELECT signal, quality FROM fingerprints_old f
                WHERE f.item_id = items.id AND quality IS NOT NULL ORDER BY signal))
"""
_POSTGRES_MOVE = """
UPDATE items SET fingerprints = moved.fps, quality = moved.quality
FROM (SELECT item_id,
             CAST(jsonb_object_agg(signal, value) AS text) AS fps,
             CAST(jsonb_object_agg(signal, quality) FILTER (WHERE quality IS NOT NULL) AS text) AS quality
      FROM fingerprints_old GROUP BY item_id) AS moved
WHERE moved.item_id = items.id
"""


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.add_column("items", sa.Column("fingerprints", sa.Text(), server_default="{}", nullable=False))
    op.add_column("items", sa.Column("quality", sa.Text(), nullable=True))
    op.rename_table("fingerprints", "fingerprints_old")
    op.execute(_SQLITE_MOVE if _sqlite() else _POSTGRES_MOVE)
    op.drop_table("fingerprints_old")
    op.execute(_SQLITE_VIEW if _sqlite() else _POSTGRES_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW fingerprints")
    op.create_table(
        "fingerprints",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("signal", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_fingerprints_item_id_items")),
        sa.PrimaryKeyConstraint("item_id", "signal", name=op.f("pk_fingerprints")),
    )
    if _sqlite():
        op.execute(
            "INSERT INTO fingerprints (item_id, signal, value, quality) "
            "SELECT items.id, f.key, f.value, json_extract(items.quality, '$.\"' || f.key || '\"') "
            "FROM items, json_each(items.fingerprints) AS f"
        )
    else:
        op.execute(
            "INSERT INTO fingerprints (item_id, signal, value, quality) "
            "SELECT items.id, f.key, f.value, CAST(CAST(items.quality AS jsonb) ->> f.key AS smallint) "
            "FROM items CROSS JOIN LATERAL jsonb_each_text(CAST(items.fingerprints AS jsonb)) AS f"
        )
    # Plain ALTER TABLE (SQLite 3.35+ and PostgreSQL): a batch copy of `items` would have to rebuild
    # every table that refers to it.
    op.execute("ALTER TABLE items DROP COLUMN quality")
    op.execute("ALTER TABLE items DROP COLUMN fingerprints")
