"""The hub's tables (SQLAlchemy Core: bulk ingest writes rows, not ORM objects).

Timestamps are Unix seconds (float): cheap to write a million of, rendered as ISO 8601 at the edge.
`heads` holds the single-row counters that serialise writers: `changes` (the feed cursor) and
`audit` (the audit chain's last sequence number and hash). See `hashhub.hub.heads`.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite rowid aliases must be INTEGER

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(50), nullable=False, server_default=""),
    sa.Column("roles", sa.String(200), nullable=False),  # comma-separated, sorted
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # the public key id inside the key text
    sa.Column("org_id", sa.ForeignKey("organisations.id"), nullable=False, index=True),
    sa.Column("salt", sa.LargeBinary(32), nullable=False),
    sa.Column("digest", sa.LargeBinary(64), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)

lists = sa.Table(
    "lists",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
)

list_grants = sa.Table(
    "list_grants",
    metadata,
    sa.Column("list_id", sa.ForeignKey("lists.id"), primary_key=True),
    sa.Column("org_id", sa.ForeignKey("organisations.id"), primary_key=True),
    sa.Column("can_read", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("can_write", sa.Boolean, nullable=False, server_default=sa.false()),
)

schemes = sa.Table(
    "schemes",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),  # JSON: {"description", "values": {value: text}}
    sa.Column("builtin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=False),  # allocated under the cursor lock
    sa.Column("list_id", sa.ForeignKey("lists.id"), nullable=False),
    sa.Column("contributor_id", sa.ForeignKey("organisations.id"), nullable=False),
    sa.Column("external_id", sa.String(200)),
    sa.Column("content_type", sa.String(20), nullable=False),
    sa.Column("scheme", sa.String(64), nullable=False),
    sa.Column("classification", sa.String(64), nullable=False),
    sa.Column("reviewers", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # active | disputed | withdrawn
    sa.Column("fp_key", sa.BigInteger, nullable=False),  # digest of the fingerprint set (dedup)
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The item as the feed and snapshot show it (JSON bytes), kept current on every change so that
    # reading a million items is streaming bytes, not rebuilding documents.
    sa.Column("doc", sa.LargeBinary, nullable=False),
    # The canonical fingerprint set, {signal: value} as compact JSON with sorted keys, and the
    # contributor's quality per signal ({signal: 0-100}, NULL when none was given). One row per item
    # is what makes bulk import fast: a table of fingerprints cost two more rows (and index entries)
    # an item. `fingerprints_have` tests the signal names for the feed's filter.
    sa.Column("fingerprints", sa.Text, nullable=False, server_default="{}"),
    sa.Column("quality", sa.Text),
    sa.UniqueConstraint("contributor_id", "external_id", name="uq_items_contributor_external"),
)

#: The index of identical resubmissions, (contributor, fp_key) -> item (migration 0005): an index
#: of `items` kept as a table of its own so that a batch's entries go in sorted by key, in one
#: pass over the index's pages; an index on `items` takes them in id order, which for a digest is
#: random (measured at 1M items: 2.4 us an item less to write). Entries are only ever added; one
#: whose item has since changed fingerprints or been withdrawn is stale, and lookups join `items`
#: on the same key and a live status, so it never matches.
item_fp_keys = sa.Table(
    "item_fp_keys",
    metadata,
    sa.Column("contributor_id", sa.Integer, primary_key=True),
    sa.Column("fp_key", sa.BigInteger, primary_key=True),
    sa.Column("item_id", BigId, primary_key=True),
    sqlite_with_rowid=False,
)

#: A read-only view (migration 0004) with the shape of the table it replaced: one row per item and
#: signal, expanded from `items.fingerprints` and `items.quality`. For ad-hoc SQL and older readers;
#: the hub's own code reads the item columns. Kept out of `metadata`: Alembic must not create it.
fingerprints = sa.Table(
    "fingerprints",
    sa.MetaData(),
    sa.Column("item_id", BigId),
    sa.Column("signal", sa.String(64)),
    sa.Column("value", sa.Text),
    sa.Column("quality", sa.SmallInteger),
)


def fingerprints_have(signal: str) -> sa.ColumnElement[bool]:
    """Whether an item has a fingerprint of canonical type `signal`.

    A substring test of the stored JSON is exact here: `"<name>":` can only occur at a key, because
    values are JSON strings (any quote inside one is escaped) and signal names hold no quotes."""
    return items.c.fingerprints.contains(f'"{signal}":', autoescape=True)


changes = sa.Table(
    "changes",
    metadata,
    sa.Column("cursor", BigId, primary_key=True, autoincrement=False),
    sa.Column("item_id", sa.ForeignKey("items.id"), nullable=False, index=True),
    sa.Column("op", sa.String(10), nullable=False),  # upsert | delete
    sa.Column("kind", sa.String(20), nullable=False),  # new | updated | disputed | confirmed | withdrawn
    sa.Column("at", sa.Float, nullable=False),
)

heads = sa.Table(
    "heads",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, server_default=""),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("item_id", sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("org_id", sa.ForeignKey("organisations.id"), primary_key=True),
    sa.Column("verdict", sa.String(20), nullable=False),  # affirmative | negative
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("at", sa.Float, nullable=False),
)

hits = sa.Table(
    "hits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.ForeignKey("items.id"), nullable=False, index=True),
    sa.Column("org_id", sa.ForeignKey("organisations.id"), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_target_seq", "target", "seq"),  # an item's trail (web item page)
)
