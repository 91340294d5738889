"""Errors the indexes raise; both are ValueErrors, so callers may catch either kind at once.

ValueError
 +-- IndexInputError   bad ids, codes, vectors, values or radius handed to add/remove/search
 +-- IndexFileError    a file that is missing, not an index, of another format version, or damaged
"""

from __future__ import annotations


class IndexInputError(ValueError):
    """Input to an index method has the wrong shape, type or range; the message says which and how."""


class IndexFileError(ValueError):
    """An index file cannot be read back; the message names the file and the problem."""
