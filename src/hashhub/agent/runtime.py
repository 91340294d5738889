"""A running agent: settings, store, scanner and the background sync loop, wired once.

The CLI and the API both build one of these; tests build their own with a temporary database.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

from sqlalchemy import Engine

from hashhub.agent.db import open_engine
from hashhub.agent.policy import Policy
from hashhub.agent.scanner import Scanner
from hashhub.agent.settings import AgentSettings
from hashhub.agent.store import Store
from hashhub.agent.sync import ClientFactory, SyncResult, default_client, sync_all

log = logging.getLogger(__name__)


class AgentRuntime:
    def __init__(self, settings: AgentSettings, *, make_client: ClientFactory = default_client) -> None:
        self.settings = settings
        policy = Policy.load(settings.policy)  # a bad policy file fails before the store is opened
        self.engine: Engine = open_engine(settings.db)
        self.store = Store(self.engine)
        self.scanner = Scanner(self.store, policy)
        self.make_client = make_client
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_results: list[SyncResult] = []

    def load(self) -> int:
        """Fill the in-memory index from the store; returns how many items it holds."""
        self.scanner.refresh()
        # A large list is millions of long-lived objects; without this every full garbage
        # collection walks all of them and stalls scans for a large fraction of a second.
        gc.collect()
        gc.freeze()
        return len(self.scanner.matcher)

    def sync_once(self) -> list[SyncResult]:
        """Sync every followed hub, then pick up the changes in memory (one sync at a time)."""
        with self._sync_lock:
            self.last_results = sync_all(self.store, self.make_client)
            self.scanner.refresh()
            return self.last_results

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except Exception:  # a failing store must not kill the loop; the next round retries
                log.exception("background sync failed")
            self._stop.wait(interval)

    def start_background_sync(self) -> None:
        interval = self.settings.sync_interval
        if interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval,), name="agent-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.engine.dispose()

    def status(self) -> dict[str, Any]:
        return {
            "items": len(self.scanner.matcher),
            "pdq_hashes": self.scanner.matcher.pdq_count,
            "rev": self.scanner.matcher.rev,
            "hubs": [h.public() for h in self.store.hubs()],
            "policy": self.scanner.policy.describe(),
            "sync_interval": self.settings.sync_interval,
        }
