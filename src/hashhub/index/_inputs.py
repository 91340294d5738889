"""Checks shared by every index: turn caller input into the arrays the kernels expect, or say why not."""

from __future__ import annotations

from typing import Any

import numpy as np

from hashhub.index.errors import IndexInputError


def as_ids(ids: Any) -> np.ndarray:
    """A 1-D int64 array of ids (any integer sequence or array; no floats, no bools)."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size == 0:
        return np.empty(0, np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise IndexInputError(
            f"ids must be a 1-D array of integers, got dtype {arr.dtype} and shape {arr.shape}."
        )
    if arr.dtype == np.uint64 and arr.max() > np.iinfo(np.int64).max:
        raise IndexInputError("ids must fit in a signed 64-bit integer.")
    return arr.astype(np.int64, copy=False)


def as_rows(rows: Any, width: int, what: str) -> np.ndarray:
    """A C-contiguous (n, width) uint8 array; one row of `width` bytes (or a bytes object) is allowed."""
    if isinstance(rows, bytes | bytearray | memoryview):
        rows = np.frombuffer(bytes(rows), np.uint8)
    arr = np.asarray(rows)
    if arr.ndim == 1 and arr.shape[0] == width:
        arr = arr.reshape(1, width)
    if arr.ndim == 2 and arr.shape[0] == 0:
        return np.empty((0, width), np.uint8)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise IndexInputError(f"{what} must have shape (n, {width}), got {arr.shape}.")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 255:
            raise IndexInputError(f"{what} must be uint8 bytes (0-255), got dtype {arr.dtype}.")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def last_wins(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort a batch by id and keep each id's last row, as if the rows had been added one by one."""
    if ids.shape[0] != rows.shape[0]:
        raise IndexInputError(f"got {ids.shape[0]} ids but {rows.shape[0]} rows; they must pair up.")
    rev_ids = ids[::-1]
    uniq, first_in_rev = np.unique(rev_ids, return_index=True)
    keep = ids.shape[0] - 1 - first_in_rev
    return uniq, rows[keep]


def merge(
    a_ids: np.ndarray, a_codes: np.ndarray, b_ids: np.ndarray, b_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two id-sorted runs of (id, row) with no id in common merged into one in O(n): the small run is
    slotted into the big one, which is never re-sorted."""
    k = b_ids.shape[0]
    if k == 0:
        return a_ids, a_codes
    total = a_ids.shape[0] + k
    at = np.searchsorted(a_ids, b_ids) + np.arange(k)
    from_b = np.zeros(total, bool)
    from_b[at] = True
    ids = np.empty(total, np.int64)
    codes = np.empty((total, *b_codes.shape[1:]), b_codes.dtype)
    ids[at], codes[at] = b_ids, b_codes
    ids[~from_b], codes[~from_b] = a_ids, a_codes
    return ids, codes
