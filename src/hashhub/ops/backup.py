"""Online backup of a SQLite hub database with sqlite3's backup API.

The backup API copies a consistent snapshot page by page while the hub keeps serving (a plain file
copy of a WAL database can catch a half-applied transaction). The copy is written next to the
target and renamed into place, so a failed backup never leaves a truncated file under the real
name. PostgreSQL hubs use pg_dump/pg_restore instead (see the README's operations section).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

PAGES_PER_STEP = 4096  # copy in steps so writers are not held off for the whole copy


class BackupError(Exception):
    """The database cannot be backed up this way (not SQLite, missing file, unwritable target)."""


def sqlite_path(db: str) -> Path:
    url = make_url(db if "://" in db else f"sqlite:///{db}")
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"`hashhub hub backup` copies SQLite databases; this one is {url.get_backend_name()}: "
            "use pg_dump -Fc (and pg_restore) for PostgreSQL."
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("An in-memory database has nothing on disk to back up.")
    path = Path(url.database)
    if not path.is_file():
        raise BackupError(f"There is no database file at {path}.")
    return path


def backup_sqlite(db: str, target: Path) -> dict[str, Any]:
    source_path = sqlite_path(db)
    target = Path(target)
    if target.resolve() == source_path.resolve():
        raise BackupError("The backup must not overwrite the database itself.")
    part = target.with_name(target.name + ".part")
    started = time.perf_counter()
    try:
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
        try:
            dest = sqlite3.connect(part)
            try:
                source.backup(dest, pages=PAGES_PER_STEP)
                dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            finally:
                dest.close()
        finally:
            source.close()
        part.replace(target)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"The backup failed: {exc}") from None
    finally:
        part.unlink(missing_ok=True)
    return {
        "backup": str(target),
        "bytes": target.stat().st_size,
        "seconds": round(time.perf_counter() - started, 3),
    }
