"""The matcher's state on disk, so an agent starts from files instead of re-reading its whole store.

    statefiles.save(directory, state)   # after syncs: a new generation, then the manifest
    state = statefiles.load(directory)  # at start-up; StateFileError when unusable

Layout of `directory` (beside a SQLite store: `agent.db.state/`):

    manifest.json        {"format", "store_id", "rev", "items", "generation", "files": {name: {bytes, crc32}}}
    gen-<rev>-<token>/   pdq.idx (PdqIndex.save), exact-<signal>.idx (ExactIndex.save),
                         meta-<column>.npy (numpy, no pickle), tables.json, videos.json

A save writes a whole new generation folder, fsyncs every file and the folder, and only then
replaces manifest.json (temporary file, fsync, rename, fsync of the directory): a crash at any point
leaves the previous manifest naming complete files. Files are never rewritten in place, so a process
that has the previous generation memory-mapped keeps valid pages. The manifest records the store id
and revision the files are valid at; the loader replays the store's changes after that revision.
"""

from __future__ import annotations

import os
import secrets
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from hashhub.agent.metatable import COLUMNS, MetaColumns, ValueTables
from hashhub.durable import fsync_path
from hashhub.index import ExactIndex, IndexFileError, PdqIndex

FORMAT = 1
MANIFEST = "manifest.json"


class StateFileError(Exception):
    """Saved state cannot be used (missing, damaged, another store's or another format's)."""


@dataclass
class SavedState:
    """Everything the matcher needs to answer scans, as of store revision `rev`."""

    store_id: str
    rev: int
    pdq: PdqIndex
    exact: dict[str, ExactIndex]
    videos: dict[int, str]
    meta: MetaColumns


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The current manifest, or None when there is none (or it cannot be read)."""
    try:
        raw = orjson.loads((directory / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return raw if isinstance(raw, dict) else None


def save(directory: Path, state: SavedState) -> Path:
    """Write `state` as a new generation and make it current; returns the generation folder."""
    directory.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(directory)
    generation = f"gen-{state.rev:012d}-{secrets.token_hex(4)}"
    folder = directory / generation
    folder.mkdir()
    try:
        state.pdq.save(folder / "pdq.idx")
        for name, index in state.exact.items():
            index.save(folder / f"exact-{name}.idx")
        for name, array in state.meta.arrays.items():
            np.save(folder / f"meta-{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (folder / "tables.json").write_bytes(orjson.dumps(state.meta.tables.to_json()))
        (folder / "videos.json").write_bytes(orjson.dumps({str(k): v for k, v in state.videos.items()}))
        files: dict[str, dict[str, int]] = {}
        for path in sorted(folder.iterdir()):
            fsync_path(path)
            files[path.name] = {"bytes": path.stat().st_size, "crc32": _crc32(path)}
        fsync_path(folder)
        manifest = {
            "format": FORMAT,
            "store_id": state.store_id,
            "rev": state.rev,
            "items": len(state.meta),
            "generation": generation,
            "files": files,
        }
        tmp = directory / f".{MANIFEST}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / MANIFEST)
        fsync_path(directory)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # Keep the generation just replaced (a process may be loading it right now); drop older ones.
    keep = {generation, (previous or {}).get("generation")}
    for old in directory.glob("gen-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def _array(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:  # an empty array cannot be memory-mapped
        return np.load(path, allow_pickle=False)


def load(directory: Path, *, verify: bool = True) -> SavedState:
    """The current saved state (big arrays memory-mapped), checked against the manifest."""
    manifest = read_manifest(directory)
    if manifest is None:
        raise StateFileError(f"{directory} holds no saved state (no readable {MANIFEST}).")
    if manifest.get("format") != FORMAT:
        found = manifest.get("format")
        raise StateFileError(f"{directory} holds state format {found!r}; this agent reads {FORMAT}.")
    folder = directory / str(manifest["generation"])
    for name, expected in manifest["files"].items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise StateFileError(f"saved state file {path} is missing: {exc.strerror}.") from None
        if size != expected["bytes"] or (verify and _crc32(path) != expected["crc32"]):
            raise StateFileError(f"saved state file {path} is damaged (size or checksum differs).")
    try:
        arrays = {name: _array(folder / f"meta-{name}.npy") for name in COLUMNS}
        tables = ValueTables.from_json(orjson.loads((folder / "tables.json").read_bytes()))
        videos = {int(k): v for k, v in orjson.loads((folder / "videos.json").read_bytes()).items()}
        pdq = PdqIndex.load(folder / "pdq.idx")
        exact = {
            name.removeprefix("exact-").removesuffix(".idx"): ExactIndex.load(folder / name)
            for name in manifest["files"]
            if name.startswith("exact-")
        }
    except (OSError, ValueError, KeyError, IndexFileError) as exc:
        raise StateFileError(f"saved state in {folder} cannot be read: {exc}") from exc
    return SavedState(
        store_id=str(manifest["store_id"]),
        rev=int(manifest["rev"]),
        pdq=pdq,
        exact=exact,
        videos=videos,
        meta=MetaColumns(arrays, tables),
    )
