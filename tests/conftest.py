"""Shared fixtures: where the benign test corpus lives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus (benign photos with reference hashes); skips when the folder is absent."""
    if not (CORPUS / "photos.reference.csv").exists():
        pytest.skip(f"benign test corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole run (skips only where the binaries are absent)."""
    from tests.support import postgres

    reason = postgres.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with postgres.running_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://) of a fresh, empty database, dropped after the test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
