"""The one error of this package: a file that is not well-formed for its format (a 422 `Invalid`)."""

from __future__ import annotations

from hashhub.hub.errors import Invalid


class FormatError(Invalid):
    """The file is not well-formed for its format; the message says what is wrong."""
