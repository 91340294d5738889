"""The one error media decoding raises."""

from __future__ import annotations


class MediaError(ValueError):
    """A file's media cannot be decoded; the message says why, in words fit to show a user.

    Raised for empty files, files in no supported format, truncated or corrupt data and images over
    the pixel limit. Callers that process many files catch it per file and go on with the rest.
    """
