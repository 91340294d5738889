"""Snapshot folders: numpy arrays and index files written once, published atomically, loaded
memory-mapped, and ignored when damaged or foreign. The hub's saved pool (`hub/poolfile.py`) and the
agent's saved matcher (`agent/statefiles.py`) are both built on this; each decides only what it
saves and how a snapshot's position (the hub's cursor, the agent's store revision) is checked.

    <directory>/CURRENT                      name of the snapshot to load (replaced atomically)
    <directory>/snap-<position>-<token>/     one snapshot, never changed once renamed into place
        ... the caller's files ...
        manifest.json                        written last: the caller's facts + every file's size
                                             and checksum
    <directory>/.tmp-<pid>-<token>/          a snapshot being written (or left by a saver that died)
    <directory>/.lock                        fcntl lock for callers with several saving processes

    path = write_snapshot(directory, position, write_files, manifest)   # publishes and prunes
    snap = current(directory)                                           # None: nothing saved
    manifest = read_manifest(snap, expect={"format": 2})                # SnapshotError: unusable
    verify_files(snap, manifest)                                        # sizes and checksums

Crash safety: every file and the folder are fsynced before the folder is renamed into place and
CURRENT points at it, so a crash at any point leaves CURRENT naming a complete snapshot. Files are
never rewritten in place, so a process that has an older snapshot memory-mapped keeps valid pages;
the snapshot CURRENT named before a save is kept (a process may be loading it right now), older
ones are removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import hashlib
import os
import secrets
import shutil
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from hashhub.durable import fsync_path, replace_file

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_PREFIX = "snap-"
_TMP = ".tmp-"


class SnapshotError(Exception):
    """A snapshot that must not be used (missing, unfinished, damaged, another format or another
    source's); the message says why in words a log reader can act on."""


# -- checksums ------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


#: checksum name (the key it has in a manifest's file entries) -> how to compute it
CHECKSUMS: dict[str, Callable[[Path], Any]] = {"sha256": _sha256, "crc32": _crc32}


# -- names ----------------------------------------------------------------------------------------


def position_of(snap: Path) -> int:
    """The position (cursor, revision) a snapshot folder's name says it was saved at; -1 if none."""
    try:
        return int(snap.name.removeprefix(_PREFIX).split("-")[0])
    except ValueError:
        return -1


def current(directory: Path) -> Path | None:
    """The snapshot CURRENT names, or None when there is none. Raises OSError when CURRENT exists
    but cannot be read."""
    try:
        name = (directory / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return directory / name if name else None


# -- writing --------------------------------------------------------------------------------------


@contextlib.contextmanager
def saver_lock(directory: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the directory's saver lock (one saving process at a time); yields False at once when
    `wait` is off and another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_snapshot(
    directory: Path,
    position: int,
    write_files: Callable[[Path], object],
    manifest: Mapping[str, Any],
    *,
    checksum: str = "sha256",
) -> Path:
    """Save a snapshot and make it current; returns its folder.

    `write_files(folder)` writes the caller's files into a fresh folder; every file it leaves there
    is listed in the manifest (`manifest` plus `files`: name -> bytes and `checksum`). Callers with
    several saving processes hold `saver_lock` around this.
    """
    compute = CHECKSUMS[checksum]
    directory.mkdir(parents=True, exist_ok=True)
    _clear_abandoned(directory)
    token = secrets.token_hex(4)
    tmp = directory / f"{_TMP}{os.getpid()}-{token}"
    tmp.mkdir()
    try:
        write_files(tmp)
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(tmp.iterdir()):
            fsync_path(path)
            files[path.name] = {"bytes": path.stat().st_size, checksum: compute(path)}
        (tmp / MANIFEST).write_bytes(orjson.dumps({**manifest, "files": files}, option=orjson.OPT_INDENT_2))
        fsync_path(tmp / MANIFEST)
        fsync_path(tmp)
        final = directory / f"{_PREFIX}{position:015d}-{token}"
        os.rename(tmp, final)
        fsync_path(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        previous = current(directory)
    except OSError:
        previous = None
    replace_file(directory / CURRENT, (final.name + "\n").encode())
    _prune(directory, keep={final.name, previous.name if previous else ""})
    return final


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _clear_abandoned(directory: Path) -> None:
    """Temporary folders of savers that died (their process is gone); another live saver's stays."""
    for tmp in directory.glob(f"{_TMP}*"):
        pid = tmp.name.removeprefix(_TMP).split("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _prune(directory: Path, keep: set[str]) -> None:
    """Drop every snapshot but `keep`: also one renamed into place by a saver that died before it
    updated CURRENT. Processes that mapped a dropped snapshot keep their pages."""
    for snap in directory.glob(f"{_PREFIX}*"):
        if snap.name not in keep:
            shutil.rmtree(snap, ignore_errors=True)


# -- reading --------------------------------------------------------------------------------------


def read_manifest(snap: Path, *, expect: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The snapshot's manifest; SnapshotError when it has none (an unfinished save), it is damaged,
    or any key of `expect` (format versions) has another value."""
    try:
        raw = orjson.loads((snap / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise SnapshotError("it has no manifest (an unfinished save)") from None
    except orjson.JSONDecodeError as e:
        raise SnapshotError(f"its manifest is damaged ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), dict):
        raise SnapshotError("its manifest is damaged (no list of files)")
    for key, wanted in (expect or {}).items():
        if raw.get(key) != wanted:
            raise SnapshotError(f"it has {key} {raw.get(key)!r}; this hashhub reads {wanted!r}")
    return raw


def verify_files(snap: Path, manifest: Mapping[str, Any], *, checksums: bool = True) -> None:
    """SnapshotError unless every file the manifest lists is there with its size (and, when
    `checksums` is on, its checksum)."""
    for name, spec in manifest["files"].items():
        path = snap / name
        try:
            ok = path.is_file() and path.stat().st_size == spec["bytes"]
            if ok and checksums:
                ok = all(compute(path) == spec[algo] for algo, compute in CHECKSUMS.items() if algo in spec)
        except OSError:
            ok = False
        if not ok:
            raise SnapshotError(
                f"{name} is missing, truncated or damaged (its size or checksum is not the manifest's)"
            )


def save_array(path: Path, array: np.ndarray) -> None:
    """One array as a .npy file (no pickle), loadable memory-mapped by `map_array`."""
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def release_heap() -> None:
    """Hand memory freed after building or replacing in-memory state (a cold-built pool, a first
    load read from a database) back to the system: glibc keeps freed heap for reuse, which left a
    process at its peak size even after it switched to mapped files or compact columns."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def map_array(path: Path) -> np.ndarray:
    """A saved .npy array, memory-mapped read-only (pages shared by every process that maps it)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:  # an empty array cannot be memory-mapped
        return np.load(path, allow_pickle=False)
