"""Durable writes of saved files (hub pool snapshots, agent state): fsync a file or a folder, so a
rename that publishes a snapshot is never seen before the data it points at is on disk."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's fsync makes the renames inside it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes) -> None:
    """Make `path` hold `data`, all or nothing: a reader (or a crash) sees the old file or the new
    one, never a part (temporary file, fsync, rename over, fsync of the folder)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)
