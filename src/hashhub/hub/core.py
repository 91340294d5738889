"""`Hub`: one open hub database with its in-memory pool and key verifier (one per process)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from hashhub import db
from hashhub.hub import MIGRATIONS, orgs
from hashhub.hub.auth import KeyVerifier
from hashhub.hub.pool import Pool, fingerprints_of
from hashhub.hub.settings import HubSettings


class Hub:
    def __init__(self, settings: HubSettings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or db.create_engine(settings.db)
        # Every entry point brings the schema up to date before touching data.
        db.upgrade(self.engine, MIGRATIONS)
        orgs.seed_schemes(self.engine)
        self.pool = Pool(self._fingerprints, cluster_radius={"hamming": settings.cluster_pdq_radius})
        self.keys = KeyVerifier(self.engine, settings.key_cache_seconds)

    def _fingerprints(self, ids: list[int]) -> dict[int, dict[str, str]]:
        with db.read(self.engine) as conn:
            return fingerprints_of(conn, ids)

    def refresh(self) -> int:
        """Bring the pool up to the committed head; returns its cursor."""
        with db.read(self.engine) as conn:
            return self.pool.catch_up(conn)

    def close(self) -> None:
        self.engine.dispose()
