"""Opening the agent's store: SQLite by default, PostgreSQL by URL, schema brought up to date first.

Engine set-up and Alembic runs are the project's shared `hashhub.db` helpers; this module adds what
the agent's CLI needs on top: bare paths and `postgresql://` URLs accepted, and errors a person can
act on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from hashhub import db

DEFAULT_DB = "sqlite:///hashhub-agent.db"
MIGRATIONS = "hashhub.agent:migrations"


class StoreError(Exception):
    """The store cannot be opened; the message says which database and why."""


class StoreUnavailable(StoreError):
    """The URL is fine but the database cannot be reached or upgraded (an outside failure)."""


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL; a bare file path means SQLite, and `postgresql://` uses psycopg 3."""
    text = url.strip()
    if not text:
        raise StoreError("The database URL is empty; pass --db or set HASHHUB_DB.")
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser()}"
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    return text


def _json(value: Any) -> str:
    # orjson both ways: JSON columns are most of the cost of writing a large snapshot and of
    # loading a large store into memory.
    return orjson.dumps(value).decode()


def open_engine(url: str) -> Engine:
    """An engine on `url` whose agent tables are up to date, or StoreError saying why not."""
    try:
        normalised = normalise_url(url)
        make_url(normalised)
        engine = db.create_engine(normalised, json_serializer=_json, json_deserializer=orjson.loads)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"{url!r} is not a database URL or path: {exc}") from None
    except ImportError as exc:
        raise StoreError(f"The database driver for {url!r} is not installed: {exc}") from None
    try:
        db.upgrade(engine, MIGRATIONS)
    except Exception as exc:
        engine.dispose()
        raise StoreUnavailable(f"Cannot open the agent database {url!r}: {exc}") from exc
    return engine
