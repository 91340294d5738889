"""A running agent: settings, store, scanner and the background sync loop, wired once.

The CLI and the API both build one of these; tests build their own with a temporary database.

Start-up loads the matcher from saved files (`statefiles`, beside a SQLite store in
`<database>.state/`) and replays only the store's changes after the revision they were saved at;
without usable files it reads the whole store, then saves files for next time.

Replicas (several `agent serve` processes on one store): each runs the same loop. The one holding
the store's `leader` lock syncs every `sync_interval` seconds and saves files; the others follow the
store every `FOLLOW_INTERVAL` seconds (applying what the leader wrote) and try for the lock each
time, so when the leader dies (even kill -9: the lock goes with the process) another takes over.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from hashhub.agent import statefiles
from hashhub.agent.db import open_engine
from hashhub.agent.locks import StoreLock
from hashhub.agent.matcher import Matcher
from hashhub.agent.policy import Policy
from hashhub.agent.scanner import Scanner
from hashhub.agent.settings import AgentSettings
from hashhub.agent.store import Store
from hashhub.agent.sync import ClientFactory, SyncResult, default_client, sync_all

log = logging.getLogger(__name__)

#: seconds between a replica's looks at the store (changes another replica synced, leadership)
FOLLOW_INTERVAL = 1.0
#: item changes applied since the files were written that make a save worth it (or 2% of items)
SAVE_AFTER_CHANGES = 1000


def default_state_dir(store: Store) -> Path | None:
    """Where saved files live: beside a SQLite database; none for a database server."""
    path = store.local_path()
    return None if path is None else path.with_name(f"{path.name}.state")


class AgentRuntime:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        make_client: ClientFactory = default_client,
        state_dir: Path | Literal["auto"] | None = "auto",
    ) -> None:
        """`state_dir`: where the matcher's files are saved (default: `default_state_dir`; None: never)."""
        self.settings = settings
        policy = Policy.load(settings.policy)  # a bad policy file fails before the store is opened
        self.engine: Engine = open_engine(settings.db)
        self.store = Store(self.engine)
        self.scanner = Scanner(self.store, policy)
        self.make_client = make_client
        if state_dir == "auto":
            state_dir = settings.state_dir or default_state_dir(self.store)
        self.state_dir: Path | None = state_dir
        self._leader = StoreLock(self.store, "leader")
        self._round = StoreLock(self.store, "sync")
        self._sync_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded = False
        self._saved_rev: int | None = None  # the revision of files this process loaded or wrote
        self._unsaved = 0  # item changes applied since then
        self.last_results: list[SyncResult] = []
        #: how the last start-up went: {"source": "files" | "store", "seconds", "replayed", "items"}
        self.load_report: dict[str, Any] = {}

    @property
    def matcher(self) -> Matcher:
        return self.scanner.matcher

    @property
    def role(self) -> str:
        """`leader` (syncs for every replica), `follower` (follows the store) or `standalone`."""
        if self._thread is None:
            return "standalone"
        return "leader" if self._leader.held else "follower"

    # -- loading -------------------------------------------------------------------------------------

    def load(self) -> int:
        """Fill the in-memory index (saved files, then the store's later changes); returns its size."""
        with self._load_lock:
            started = time.perf_counter()
            first = not self._loaded
            source = self._restore() if first else "memory"
            replayed = self._refresh()
            if first and source == "files" and not self._consistent():
                log.warning("saved index files disagree with the store; rebuilding from the store")
                self.scanner.matcher = Matcher(self.matcher.pdq_radius)
                self._saved_rev, self._unsaved, source = None, 0, "store"
                replayed = self._refresh()
            self._loaded = True
            if first:
                self.load_report = {
                    "source": source,
                    "seconds": round(time.perf_counter() - started, 3),
                    "replayed": replayed,
                    "items": len(self.matcher),
                }
        # A large list is millions of long-lived objects; without this every full garbage
        # collection walks all of them and stalls scans for a large fraction of a second.
        gc.collect()
        gc.freeze()
        if first:
            self._save_if_due(wait=False)
        return len(self.matcher)

    def _restore(self) -> str:
        if self.state_dir is None:
            return "store"
        try:
            self._saved_rev = self.matcher.restore_state(self.state_dir, self.store)
        except statefiles.StateFileError as exc:
            if statefiles.read_manifest(self.state_dir) is not None:
                log.warning("not using saved index files: %s", exc)
            return "store"
        return "files"

    def _consistent(self) -> bool:
        """Whether the matcher holds as many live items as the store (a cheap check of the files)."""
        for _ in range(3):  # a replica may be writing meanwhile: catch up and count again
            if len(self.matcher) == self.store.count_items():
                return True
            if not self._refresh():
                return False
        return False

    def _refresh(self) -> int:
        changed = self.scanner.refresh()
        self._unsaved += changed
        return changed

    def refresh(self) -> int:
        """Apply what the store changed since the last look (loading first if never loaded)."""
        if not self._loaded:
            before = len(self.matcher)
            return self.load() - before
        return self._refresh()

    # -- saved files ---------------------------------------------------------------------------------

    def _save_due(self) -> bool:
        if self.state_dir is None or not self._loaded or self.role == "follower":
            return False  # followers leave saving to the leader: one writer of the files is enough
        if self._saved_rev is None:
            return True
        threshold = max(SAVE_AFTER_CHANGES, len(self.matcher) // 50)
        return self.matcher.rev != self._saved_rev and self._unsaved >= threshold

    def _save_if_due(self, *, wait: bool) -> bool:
        if not self._save_due():
            return False
        held = self._round.mine  # inside a sync round of this thread
        if not held and not self._round.acquire(blocking=wait):
            return False  # another process is syncing or saving: it will save
        try:
            return self.save_state()
        finally:
            if not held:
                self._round.release()

    def save_state(self) -> bool:
        """Write the matcher's files now (callers hold the store's `sync` lock)."""
        if self.state_dir is None:
            return False
        store_id, _ = self.store.identity()
        started = time.perf_counter()
        unsaved = self._unsaved
        try:
            self._saved_rev = self.matcher.save_state(self.state_dir, store_id)
        except OSError as exc:  # a full disk must not stop syncing or scanning
            log.warning("could not save index files to %s: %s", self.state_dir, exc)
            return False
        self._unsaved -= unsaved
        log.info(
            "saved %d items at rev %d in %.1fs",
            len(self.matcher),
            self._saved_rev,
            time.perf_counter() - started,
        )
        return True

    # -- syncing -------------------------------------------------------------------------------------

    def sync_once(self) -> list[SyncResult]:
        """Sync every followed hub, then pick up the changes in memory (one sync at a time, across
        every process on the store), and save files when enough changed."""
        with self._sync_lock, self._round:
            self.last_results = sync_all(self.store, self.make_client)
            self.refresh()
            self._save_if_due(wait=False)
            return self.last_results

    def _loop(self, interval: float) -> None:
        last_sync = float("-inf")
        while not self._stop.is_set():
            try:
                leading = self._leader.held or self._leader.acquire(blocking=False)
                if leading and time.monotonic() - last_sync >= interval:
                    if last_sync == float("-inf"):
                        log.info("this agent syncs for every replica on its store")
                    last_sync = time.monotonic()
                    self.sync_once()
                else:
                    self.refresh()
            except Exception:  # a failing store must not kill the loop; the next round retries
                log.exception("background sync failed")
            self._stop.wait(min(FOLLOW_INTERVAL, interval))

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
        self._leader.release()

    def close(self) -> None:
        self.stop()
        self._save_if_due(wait=False)
        self.engine.dispose()

    def status(self) -> dict[str, Any]:
        return {
            "items": len(self.matcher),
            "pdq_hashes": self.matcher.pdq_count,
            "rev": self.matcher.rev,
            "replica": self.role,
            "start_up": self.load_report,
            "hubs": [h.public() for h in self.store.hubs()],
            "policy": self.scanner.policy.describe(),
            "sync_interval": self.settings.sync_interval,
        }
