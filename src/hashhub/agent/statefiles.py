"""The matcher's state on disk, so an agent starts from files instead of re-reading its whole store.

    statefiles.save(directory, state)   # after syncs: a new snapshot, then CURRENT points at it
    state = statefiles.load(directory)  # at start-up; StateFileError when unusable

`directory` (beside a SQLite store: `agent.db.state/`) is a `hashhub.snapshotfiles` folder, the
same layout as the hub's saved pool; each snapshot holds

    pdq.idx (PdqIndex.save), exact-<signal>.idx (ExactIndex.save), meta-<column>.npy (numpy, no
    pickle), tables.json, videos.json, and manifest.json: {"format", "store_id", "rev", "items",
    "files": {name: {bytes, crc32}}}

The manifest records the store id and revision the files are valid at; the loader replays the
store's changes after that revision. Format 1 (a manifest.json at the top naming a `gen-*` folder)
is no longer read: such files are reported, ignored (the matcher is rebuilt from the store) and
removed by the next save.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hashhub import snapshotfiles
from hashhub.agent.metatable import COLUMNS, MetaColumns, ValueTables
from hashhub.index import ExactIndex, IndexFileError, PdqIndex
from hashhub.snapshotfiles import MANIFEST, SnapshotError

FORMAT = 2

#: saved state cannot be used (missing, damaged, another store's or another format's)
StateFileError = SnapshotError


@dataclass
class SavedState:
    """Everything the matcher needs to answer scans, as of store revision `rev`."""

    store_id: str
    rev: int
    pdq: PdqIndex
    exact: dict[str, ExactIndex]
    videos: dict[int, str]
    meta: MetaColumns


def _current(directory: Path) -> Path | None:
    try:
        return snapshotfiles.current(directory)
    except OSError:
        return None


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The current snapshot's manifest (with `generation`: its folder's name), a format-1 manifest
    left by an older agent, or None when there is none or it cannot be read."""
    snap = _current(directory)
    path = directory / MANIFEST if snap is None else snap / MANIFEST
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    return raw if snap is None else {**raw, "generation": snap.name}


def save(directory: Path, state: SavedState) -> Path:
    """Write `state` as a new snapshot and make it current; returns the snapshot's folder."""

    def write_files(folder: Path) -> None:
        state.pdq.save(folder / "pdq.idx")
        for name, index in state.exact.items():
            index.save(folder / f"exact-{name}.idx")
        for name, array in state.meta.arrays.items():
            snapshotfiles.save_array(folder / f"meta-{name}.npy", array)
        (folder / "tables.json").write_bytes(orjson.dumps(state.meta.tables.to_json()))
        (folder / "videos.json").write_bytes(orjson.dumps({str(k): v for k, v in state.videos.items()}))

    manifest = {"format": FORMAT, "store_id": state.store_id, "rev": state.rev, "items": len(state.meta)}
    folder = snapshotfiles.write_snapshot(directory, state.rev, write_files, manifest, checksum="crc32")
    _drop_format_1(directory)
    return folder


def _drop_format_1(directory: Path) -> None:
    """What an agent of format 1 left: its top-level manifest and `gen-*` folders (never loaded now)."""
    (directory / MANIFEST).unlink(missing_ok=True)
    for old in directory.glob("gen-*"):
        shutil.rmtree(old, ignore_errors=True)


def load(directory: Path, *, verify: bool = True) -> SavedState:
    """The current saved state (big arrays memory-mapped), checked against its manifest."""
    snap = _current(directory)
    if snap is None:
        old = read_manifest(directory)
        if old is not None:
            found = old.get("format")
            raise StateFileError(f"{directory} holds state format {found!r}; this agent reads {FORMAT}.")
        raise StateFileError(f"{directory} holds no saved state.")
    try:
        manifest = snapshotfiles.read_manifest(snap, expect={"format": FORMAT})
        snapshotfiles.verify_files(snap, manifest, checksums=verify)
    except SnapshotError as exc:
        raise StateFileError(f"saved state in {snap} not used: {exc}.") from None
    try:
        arrays = {name: snapshotfiles.map_array(snap / f"meta-{name}.npy") for name in COLUMNS}
        tables = ValueTables.from_json(orjson.loads((snap / "tables.json").read_bytes()))
        videos = {int(k): v for k, v in orjson.loads((snap / "videos.json").read_bytes()).items()}
        pdq = PdqIndex.load(snap / "pdq.idx")
        exact = {
            name.removeprefix("exact-").removesuffix(".idx"): ExactIndex.load(snap / name)
            for name in manifest["files"]
            if name.startswith("exact-")
        }
    except (OSError, ValueError, KeyError, IndexFileError) as exc:
        raise StateFileError(f"saved state in {snap} cannot be read: {exc}") from exc
    return SavedState(
        store_id=str(manifest["store_id"]),
        rev=int(manifest["rev"]),
        pdq=pdq,
        exact=exact,
        videos=videos,
        meta=MetaColumns(arrays, tables),
    )
