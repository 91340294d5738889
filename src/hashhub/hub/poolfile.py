"""Saved pool files: a hub process starts by memory-mapping the last saved pool and replaying only
the changes after its cursor, instead of reading every item from the database.

    <pool dir>/CURRENT                        name of the snapshot to load (replaced atomically)
    <pool dir>/snap-<cursor>-<token>/         one snapshot, never changed after it is renamed here
        columns.hhix, index-<n>.hhix[.videos] numpy columns and one index per signal
        manifest.json                         written last: cursor, schema, database anchor, checksums
    <pool dir>/.lock                          fcntl lock: the one process saving (or cold-building)

The folder mechanics (atomic publish, manifest, checksums, pruning, the lock) are
`hashhub.snapshotfiles`, shared with the agent's saved state; this module decides what a pool
snapshot holds and when it can be trusted.

Trust: a snapshot is used only if its manifest's format, schema revision and cluster settings are
ours, every file has the size and SHA-256 the manifest lists, and the database still holds, at the
snapshot's cursor, the very change row the snapshot was taken after (`anchor`: item id, op, kind and
time) with its head at or past that cursor. Anything else (another database, a restored backup, a
half-written or damaged file) is logged and ignored; the pool is then built from the database.

Consistency: the columns are copied under the pool's lock at cursor C; the indexes are written
just after and may hold a few changes newer than C. The first catch-up after loading replays every
change after C with `replay_all`, which removes each replayed id from every index and re-adds its
current fingerprints, so the loaded pool equals a cold build at the same head.

Memory: every process maps the same files copy-on-write, so their pages are shared and each keeps
only what it changes since (a small delta). Columns are saved with headroom for new ids.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from hashhub import db, snapshotfiles
from hashhub.hub import heads, indexes
from hashhub.hub.columns import SPEC, Columns
from hashhub.hub.models import changes, items
from hashhub.hub.pool import Fetch, Pool
from hashhub.hub.settings import HubSettings
from hashhub.snapshotfiles import SnapshotError, position_of, release_heap, saver_lock

if TYPE_CHECKING:
    from hashhub.hub.core import Hub

log = logging.getLogger("hashhub.hub.poolfile")

POOL_FORMAT = 1
_COLUMNS_MAGIC = b"HHPOOLC1"

#: a snapshot that must not be used; the message says why (the name other code knows it by)
Untrusted = SnapshotError


def pool_dir(settings: HubSettings) -> Path | None:
    """Where this hub's pool files live, or None when it has none (see HubSettings.pool_dir)."""
    chosen = settings.pool_dir.strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen)
    url = make_url(settings.db) if "://" in settings.db else None
    if url is None:  # a bare SQLite file path
        return Path(settings.db + ".pool")
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".pool")
    return None


def _schema(conn: Connection) -> str:
    try:
        return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())
    except sa.exc.SQLAlchemyError:
        return ""


def _anchor(conn: Connection, cursor: int) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(changes.c.item_id, changes.c.op, changes.c.kind, changes.c.at).where(
            changes.c.cursor == cursor
        )
    ).one_or_none()
    if row is None:
        return None
    return {
        "cursor": cursor,
        "item_id": int(row.item_id),
        "op": row.op,
        "kind": row.kind,
        "at": float(row.at),
    }


# -- saving ---------------------------------------------------------------------------------------


def save_pool(hub: Hub, *, wait: bool = True) -> Path | None:
    """Save `hub`'s pool (brought up to the committed head first) as the current snapshot of its
    pool directory; returns the snapshot's folder, or None when the hub keeps no pool files, the
    pool is empty, or (`wait` off) another process holds the lock. `hashhub hub import` may call
    this once it has written everything, so the next server start loads in seconds."""
    directory = pool_dir(hub.settings)
    if directory is None:
        return None
    hub.refresh()
    with saver_lock(directory, wait=wait) as got:
        if not got:
            return None
        return _save_locked(hub.pool, hub.engine, directory)


def _fileformat() -> ModuleType:
    """`hashhub.index._fileformat`, imported on first use (the index package and its C kernels,
    which admin CLI commands that open a Hub never need)."""
    from hashhub.index import _fileformat

    return _fileformat


def _save_locked(pool: Pool, engine: Engine, directory: Path) -> Path | None:
    headroom_min = 65_536
    with pool.lock:
        cursor = pool.cursor
        if cursor <= 0:
            return None
        size = pool.cols.size
        columns = pool.cols.copy(headroom=max(headroom_min, size // 8))
        adapters = dict(pool.indexes)
        meta: dict[str, Any] = {
            "grades": list(pool.grades),
            "signal_bits": dict(pool.signal_bits),
            "org_names": {str(k): v for k, v in pool.org_names.items()},
            "list_names": {str(k): v for k, v in pool.list_names.items()},
            "cluster_radius": dict(pool.cluster_radius),
        }
    with db.read(engine) as conn:
        anchor, schema = _anchor(conn, cursor), _schema(conn)
    if anchor is None:
        log.warning("pool not saved: the change log has no row at cursor %s", cursor)
        return None
    index_files = {signal: f"index-{n}.hhix" for n, signal in enumerate(sorted(adapters))}
    copied = [columns]  # handed over, so the copy is freed once written (before the indexes are)
    del columns

    def write_files(folder: Path) -> None:
        _fileformat().write(folder / "columns.hhix", _COLUMNS_MAGIC, {"size": size}, copied.pop())
        for signal, name in index_files.items():
            adapters[signal].save(folder / name)

    manifest = {
        "format": POOL_FORMAT,
        "columns_format": _fileformat().FORMAT_VERSION,
        "schema": schema,
        "cursor": cursor,
        "anchor": anchor,
        "size": size,
        "saved_at": time.time(),
        "indexes": index_files,
        **meta,
    }
    final = snapshotfiles.write_snapshot(directory, cursor, write_files, manifest, checksum="sha256")
    log.info("pool saved at cursor %s (%s items) in %s", cursor, size, final)
    return final


# -- loading --------------------------------------------------------------------------------------


def current_snapshot(directory: Path) -> Path | None:
    """The snapshot to load from `directory`, or None (nothing saved, or CURRENT unreadable)."""
    try:
        return snapshotfiles.current(directory)
    except OSError as e:  # unreadable: the caller builds from the database (and says so)
        log.warning("pool files in %s unusable (%s)", directory, e)
        return None


def load_pool(
    settings: HubSettings, engine: Engine, fetch: Fetch, cluster_radius: dict[str, float]
) -> Pool | None:
    """A pool loaded from the current snapshot (not yet caught up: its first catch-up replays the
    changes after the snapshot), or None when there is no snapshot or it cannot be trusted."""
    directory = pool_dir(settings)
    if directory is None:
        return None
    snap = current_snapshot(directory)
    if snap is None:
        return None
    try:
        return _load(snap, engine, fetch, cluster_radius, settings.pool_save_changes)
    except Untrusted as e:
        log.warning("saved pool %s ignored: %s; building the pool from the database", snap, e)
    except (OSError, ValueError, KeyError, TypeError) as e:  # IndexFileError is a ValueError
        log.warning("saved pool %s ignored: unreadable (%s); building the pool from the database", snap, e)
    return None


def _load(
    snap: Path, engine: Engine, fetch: Fetch, cluster_radius: dict[str, float], delta_limit: int
) -> Pool:
    expect = {"format": POOL_FORMAT, "columns_format": _fileformat().FORMAT_VERSION}
    manifest = snapshotfiles.read_manifest(snap, expect=expect)
    pool = Pool(fetch, cluster_radius=cluster_radius)
    if manifest["cluster_radius"] != pool.cluster_radius:
        raise Untrusted(
            f"it was clustered with radii {manifest['cluster_radius']}, not {pool.cluster_radius}"
        )
    cursor = int(manifest["cursor"])
    with db.read(engine) as conn:
        schema, head, anchor = _schema(conn), heads.current(conn), _anchor(conn, cursor)
    if manifest["schema"] != schema:
        raise Untrusted(
            f"it was saved at schema revision {manifest['schema']!r}, the database is at {schema!r}"
        )
    if head < cursor or anchor != manifest["anchor"]:
        raise Untrusted(
            f"it was saved from another database (or from a later state of this one) at cursor {cursor}"
        )
    snapshotfiles.verify_files(snap, manifest)
    file_meta, arrays = _fileformat().read(snap / "columns.hhix", _COLUMNS_MAGIC, mmap=True)
    size = int(file_meta["size"])
    if (
        set(arrays) != set(SPEC)
        or size != manifest["size"]
        or any(len(a) < size or a.dtype != np.dtype(SPEC[k]) for k, a in arrays.items())
    ):
        raise Untrusted("its columns do not match this hashhub's")
    loaded = {
        signal: indexes.load(signal, snap / name, delta_limit) for signal, name in manifest["indexes"].items()
    }
    pool.restore(
        Columns.adopt({k: np.asarray(v) for k, v in arrays.items()}, size),
        grades=manifest["grades"],
        signal_bits=manifest["signal_bits"],
        adapters=loaded,
        org_names={int(k): v for k, v in manifest["org_names"].items()},
        list_names={int(k): v for k, v in manifest["list_names"].items()},
        cursor=cursor,
    )
    return pool


# -- who saves, and when --------------------------------------------------------------------------


def worth_saving(pool: Pool, settings: HubSettings) -> bool:
    """Whether a pool built from the database is large enough to be saved at once."""
    return int(np.count_nonzero(pool.cols["status"][: pool.cols.size])) >= settings.pool_save_min_items


class PoolFiles:
    """One hub process's use of its pool directory: load at start-up (or build and save under the
    lock, so several workers starting together build once), save in the background when the log
    has moved `pool_save_changes` past the last snapshot, and switch to a newer snapshot saved by
    another process (so each keeps only a small private delta)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.directory = pool_dir(hub.settings)
        self._saved_cursor = -1  # cursor of the snapshot this process last loaded or saved
        #: cursor of the last snapshot this process loaded (None: it built its pool from the database)
        self.loaded_cursor: int | None = None
        self._worker: threading.Thread | None = None
        self._starting = threading.Lock()
        self._checked = 0.0
        self._renewed = -float("inf")  # when this process last loaded or saved a snapshot
        #: seconds between looks at the directory for a due save or a newer snapshot
        self.check_interval = 1.0

    def open(self) -> Pool:
        """The pool to start with, caught up to the committed head."""
        hub = self._hub
        if self.directory is None:
            return self._caught_up(hub.new_pool())
        pool = self._load()
        if pool is not None:
            self._caught_up(pool)
            release_heap()  # what replaying the changes after the snapshot left behind
            return pool
        try:
            return self._build_and_save()
        except OSError as e:  # e.g. a read-only or full disk: serve anyway, from memory
            log.warning(
                "pool files in %s unusable (%s); building the pool from the database", self.directory, e
            )
            self.directory = None
            return self._caught_up(hub.new_pool())

    def _build_and_save(self) -> Pool:
        """Build from the database under the lock (processes starting together build once: the
        others wait, then load the saved files), save, and serve from the files."""
        hub = self._hub
        assert self.directory is not None
        with saver_lock(self.directory, wait=True):
            pool = self._load()  # another process may have built and saved while we waited
            if pool is not None:
                return self._caught_up(pool)
            if self._item_count() >= max(hub.settings.pool_build_process_items, 1):
                from hashhub.hub.poolbuild import build_elsewhere

                if build_elsewhere(hub.settings) is not None:
                    pool = self._load()
                    if pool is not None:
                        return self._caught_up(pool)
            pool = self._caught_up(hub.new_pool())
            if not worth_saving(pool, hub.settings):
                return pool
            try:
                if _save_locked(pool, hub.engine, self.directory) is None:
                    return pool
            except OSError as e:
                log.warning("pool not saved in %s (%s); serving the pool built in memory", self.directory, e)
                return pool
        # Serve from the mapped files rather than the freshly built arrays: shared, not private.
        loaded = self._load()
        if loaded is None:  # the files we just wrote did not load back (logged): keep what we built
            return pool
        del pool
        release_heap()
        return self._caught_up(loaded)

    def _item_count(self) -> int:
        with db.read(self._hub.engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar() or 0)

    def _load(self) -> Pool | None:
        hub = self._hub
        started = time.perf_counter()
        pool = load_pool(hub.settings, hub.engine, hub.fetch_fingerprints, hub.cluster_radius)
        if pool is not None:
            self._saved_cursor = self.loaded_cursor = pool.cursor
            self._renewed = time.monotonic()
            log.info(
                "pool loaded from %s at cursor %s in %.2f s",
                self.directory,
                pool.cursor,
                time.perf_counter() - started,
            )
        return pool

    def _caught_up(self, pool: Pool) -> Pool:
        with db.read(self._hub.engine) as conn:
            pool.catch_up(conn)
        return pool

    def after_refresh(self, cursor: int) -> None:
        """Called after each catch-up: start a background save or reload when one is due."""
        if self.directory is None or cursor - self._saved_cursor < self._hub.settings.pool_save_changes:
            return
        with self._starting:  # many request threads refresh at once: one worker at a time
            now = time.monotonic()
            if now - self._checked < self.check_interval:
                return
            if now - self._renewed < self._hub.settings.pool_save_min_seconds:
                return  # during a bulk import, save every so often, not back to back
            self._checked = now
            worker = self._worker
            if worker is not None and worker.is_alive():
                return
            self._worker = threading.Thread(target=self._renew, name="hashhub-pool-save", daemon=True)
            self._worker.start()

    def _renew(self) -> None:
        try:
            self._reload_newer() or self._save()
        except Exception:
            log.exception("saving or reloading the pool files failed; the pool in memory is unaffected")

    def _reload_newer(self) -> bool:
        """Switch to a snapshot another process saved since ours, if there is one."""
        snap = current_snapshot(self.directory)
        if snap is None or position_of(snap) <= self._saved_cursor:
            return False
        pool = self._load()
        if pool is None:
            return False
        self._hub.swap_pool(self._caught_up(pool))
        del pool
        release_heap()  # the replaced pool's private arrays
        return True

    def _save(self) -> None:
        hub = self._hub
        with saver_lock(self.directory, wait=False) as got:
            if not got:
                return  # another process is saving; we load its snapshot next time
            if _save_locked(hub.pool, hub.engine, self.directory) is None:
                return
        self._reload_newer()  # our own snapshot: map it and drop the private copies

    def wait(self) -> None:
        """Block until a background save or reload in progress has finished (tests, shutdown)."""
        worker = self._worker
        if worker is not None:
            worker.join()
