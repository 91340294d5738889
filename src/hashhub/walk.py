"""Expand command-line paths into files: folders are walked, in a stable (sorted) order.

    for entry in walk(["photos/", "upload.jpg"]):
        entry.path    # the path as given, or joined under the folder given
        entry.error   # None, or why it cannot be listed ("No such file or directory")

Nothing is skipped silently: a path that does not exist or a folder that cannot be listed comes
back as an entry with an error, so callers report it and go on. Symbolic links to files are
followed; links to folders are not walked into (they could loop).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    error: str | None = None


def walk(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Entry]:
    """Every file under `paths`, in the order given, each folder's content sorted by name."""
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            yield from _walk_folder(path)
        elif os.path.exists(path):
            yield Entry(path)
        else:
            yield Entry(path, _missing(path))


def _walk_folder(folder: str) -> Iterator[Entry]:
    try:
        with os.scandir(folder) as listing:
            children = sorted(listing, key=lambda child: child.name)
    except OSError as exc:
        yield Entry(folder, f"cannot list folder: {exc.strerror or exc}")
        return
    for child in children:
        path = os.path.join(folder, child.name)
        try:
            is_folder = child.is_dir(follow_symlinks=False)
            is_file = child.is_file(follow_symlinks=True)
        except OSError as exc:
            yield Entry(path, exc.strerror or str(exc))
            continue
        if is_folder:
            yield from _walk_folder(path)
        elif is_file:
            yield Entry(path)
        elif child.is_symlink() and not os.path.exists(path):
            yield Entry(path, "broken symbolic link")
        # Other kinds (sockets, FIFOs, links to folders) are not files to hash.


def _missing(path: str) -> str:
    return "broken symbolic link" if os.path.islink(path) else "No such file or directory"
