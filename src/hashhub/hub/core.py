"""`Hub`: one open hub database with its in-memory pool and key verifier (one per process)."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from hashhub import db
from hashhub.hub import MIGRATIONS, orgs
from hashhub.hub.auth import KeyVerifier
from hashhub.hub.pool import Pool, fingerprints_of
from hashhub.hub.poolfile import PoolFiles
from hashhub.hub.settings import HubSettings


class Hub:
    def __init__(self, settings: HubSettings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or db.create_engine(settings.db)
        # Every entry point brings the schema up to date before touching data.
        db.upgrade(self.engine, MIGRATIONS)
        orgs.seed_schemes(self.engine)
        self.cluster_radius: dict[str, float] = {"hamming": settings.cluster_pdq_radius}
        #: the pool is opened (saved files, else the database) on the first refresh; until then empty.
        self.pool = self.new_pool()
        self.files = PoolFiles(self)
        self._opened = False
        self._opening = threading.Lock()
        self.keys = KeyVerifier(self.engine, settings.key_cache_seconds)

    def new_pool(self) -> Pool:
        return Pool(self.fetch_fingerprints, cluster_radius=self.cluster_radius)

    def fetch_fingerprints(self, ids: list[int]) -> dict[int, dict[str, str]]:
        with db.read(self.engine) as conn:
            return fingerprints_of(conn, ids)

    _fingerprints = fetch_fingerprints  # the name earlier code used

    def refresh(self) -> int:
        """Bring the pool up to the committed head; returns its cursor."""
        if not self._opened:
            with self._opening:
                if not self._opened:
                    self.pool = self.files.open()
                    self._opened = True
        with db.read(self.engine) as conn:
            cursor = self.pool.catch_up(conn)
        self.files.after_refresh(cursor)
        return cursor

    def swap_pool(self, pool: Pool) -> None:
        """Serve from `pool` from now on. It is caught up under the old pool's lock, so nothing a
        caller has already seen through the old pool is missing from the new one."""
        old = self.pool
        with old.lock:
            with db.read(self.engine) as conn:
                pool.catch_up(conn)
            self.pool = pool

    def close(self) -> None:
        self.files.wait()
        self.engine.dispose()
