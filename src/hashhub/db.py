"""Engines, transactions and schema upgrades, for any store in hashhub (hub or agent).

    engine = db.create_engine("sqlite:///hub.db")     # or postgresql+psycopg://...
    db.upgrade(engine, "hashhub:migrations")           # Alembic, programmatically
    with db.write(engine) as conn: ...                 # a transaction that will write

SQLite gets WAL, synchronous=NORMAL, foreign keys and a busy timeout, and real transactions: the
sqlite3 module's default starts a transaction only before the first write, so two SELECTs would see
different states; here every transaction begins explicitly, and write transactions with
`BEGIN IMMEDIATE`, so they queue for the write lock instead of failing half-way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_PAGE_SIZE = 16_384  # for new databases; an existing file keeps its own
WAL_AUTOCHECKPOINT_BYTES = 128 << 20
_BEGIN = "hashhub_begin"


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, **kwargs: object) -> Engine:
    """An engine for `url` (a SQLAlchemy URL or a bare file path for SQLite)."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    engine = sa.create_engine(url, **kwargs)
    if is_sqlite(engine):
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module docstring)
        cursor = dbapi_connection.cursor()
        # Only a new, empty database takes a page size, and only before it turns to WAL. 16 KiB
        # pages: a bulk import's commit writes a quarter as many WAL frames (a write call each) and
        # fewer scattered index pages; measured on a 300k-item raw load with the same 128 MB
        # checkpoint interval, commits cost 5.8 us an item instead of 7.9.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "cache_size=-65536",
            "temp_store=MEMORY",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        # Checkpoint the WAL into the database file every 128 MB rather than every 1,000 pages: a
        # bulk import's batch rewrites thousands of scattered index pages, and a checkpoint (with
        # its fsyncs) after every batch nearly doubled commit time (1M-item raw load, 4 KiB pages:
        # 18.5 us an item at the default, 9.7 with a 200 MB interval).
        page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_BYTES // page_size}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on any error."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(**{_BEGIN: "IMMEDIATE"})
        with conn.begin():
            yield conn


@contextmanager
def read(engine: Engine, *, snapshot: bool = False) -> Iterator[Connection]:
    """A read transaction; `snapshot=True` makes every statement see the same committed state."""
    with engine.connect() as conn:
        if snapshot and not is_sqlite(engine):
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def _location(migrations: str):  # type: ignore[no-untyped-def]
    package, _, folder = migrations.partition(":")
    return resources.files(package).joinpath(folder) if folder else resources.files(package)


def alembic_config(engine: Engine, migrations: str) -> Config:
    """Alembic configuration for a migrations package given as `package:folder`."""
    from alembic.config import Config

    location = _location(migrations)
    config = Config()
    config.set_main_option("script_location", str(location))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, migrations: str, revision: str = "head") -> None:
    """Bring the schema up to date (idempotent; safe to call on every start).

    A database already at the single head is left alone without importing Alembic at all: every
    server process opens its database this way, and Alembic with its script loading costs ~15-20 MB
    of memory a process for nothing there. Anything less plain (no version table yet, another
    revision, several heads) goes through Alembic as before."""
    if revision == "head" and _at_head(engine, migrations):
        return
    from alembic import command

    command.upgrade(alembic_config(engine, migrations), revision)


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)


def _head(migrations: str) -> str | None:
    """The one revision no other revision names as its parent, read from the scripts' text."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in _location(migrations).joinpath("versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("__"):
            continue
        for key, value in _REVISION.findall(script.read_text(encoding="utf-8")):
            (revisions if key == "revision" else parents).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine, migrations: str) -> bool:
    head = _head(migrations)
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    except sa.exc.DBAPIError:  # no version table yet: a new database
        return False
    return current == [head]
