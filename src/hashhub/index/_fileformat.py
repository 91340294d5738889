"""The one on-disk layout every index uses: a versioned header, then raw aligned arrays (never pickle).

    bytes 0-7    magic, one per index kind (b"HHIXPDQ1", ...)
    bytes 8-11   format version, uint32 little-endian
    bytes 12-15  header length H, uint32 little-endian
    bytes 16-    H bytes of JSON: {"meta": {...counts...}, "arrays": [{"name", "dtype", "shape", "offset"}]}
    then         each array's raw C-order bytes at its offset (64-byte aligned, so it can be memory-mapped)

Writes go to a temporary file renamed over the target, so a reader that has the old file mapped keeps
valid pages and a crash never leaves half a file under the real name.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from hashhub.index.errors import IndexFileError

FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")
_ALIGN = 64


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def write(
    path: str | os.PathLike[str], magic: bytes, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Write `arrays` (little-endian, C order) and `meta` (JSON-able counts) to `path` atomically."""
    specs = []
    # Offsets depend on the header's length, which depends on the offsets: size the header generously.
    body = [(name, np.ascontiguousarray(a)) for name, a in arrays.items()]
    for name, a in body:
        if a.dtype.byteorder == ">":
            raise ValueError(f"array {name} must be little-endian")
        specs.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": 0})
    header_len = _aligned(len(json.dumps({"meta": meta, "arrays": specs})) + 32 * len(specs) + 64)
    offset = _aligned(_PREFIX.size + header_len)
    end = offset
    for spec, (_, a) in zip(specs, body, strict=True):
        spec["offset"] = offset
        end = offset + a.nbytes
        offset = _aligned(end)
    header = json.dumps({"meta": meta, "arrays": specs}).encode()
    assert len(header) <= header_len
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(_PREFIX.pack(magic, FORMAT_VERSION, header_len))
            f.write(header.ljust(header_len, b" "))
            for spec, (_, a) in zip(specs, body, strict=True):
                f.seek(spec["offset"])
                # Write in slices: a 320 MB array should not need a second 320 MB bytes copy.
                flat = a.reshape(-1).view(np.uint8)
                for start in range(0, flat.size, 1 << 26):
                    f.write(flat[start : start + (1 << 26)].data)
            f.truncate(end)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read(
    path: str | os.PathLike[str], magic: bytes, *, mmap: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by `write`. With `mmap`, arrays are copy-on-write maps of the file: pages are
    shared between processes and loaded on first touch (the indexes never write to them)."""
    target = Path(path)
    try:
        size = target.stat().st_size
        with open(target, "rb") as f:
            prefix = f.read(_PREFIX.size)
            if len(prefix) < _PREFIX.size:
                raise IndexFileError(f"{target} is too short to be an index file ({size} bytes).")
            found, version, header_len = _PREFIX.unpack(prefix)
            if found != magic:
                raise IndexFileError(f"{target} is not a {magic.decode(errors='replace')} index file.")
            if version != FORMAT_VERSION:
                raise IndexFileError(
                    f"{target} uses index format version {version}; "
                    f"this hashhub reads version {FORMAT_VERSION}."
                )
            header = json.loads(f.read(header_len))
    except OSError as e:
        raise IndexFileError(f"cannot read index file {target}: {e.strerror or e}.") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFileError(f"{target} has a damaged header: {e}.") from e
    arrays: dict[str, np.ndarray] = {}
    for spec in header["arrays"]:
        dtype, shape, offset = np.dtype(spec["dtype"]), tuple(spec["shape"]), int(spec["offset"])
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + nbytes > size:
            raise IndexFileError(
                f"{target} is truncated: array {spec['name']} runs past the end of the file."
            )
        if nbytes == 0:
            arrays[spec["name"]] = np.zeros(shape, dtype)
        elif mmap:
            arrays[spec["name"]] = np.asarray(
                np.memmap(target, dtype=dtype, mode="c", offset=offset, shape=shape)
            )
        else:
            arrays[spec["name"]] = np.fromfile(
                target, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset
            ).reshape(shape)
    return header["meta"], arrays
