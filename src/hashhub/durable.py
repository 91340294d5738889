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
