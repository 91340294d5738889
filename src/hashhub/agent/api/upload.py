"""Moved to `hashhub.uploads` (shared with the hub); kept so existing imports keep working."""

from hashhub.uploads import FILE_FIELD, UploadError, read_multipart

__all__ = ["FILE_FIELD", "UploadError", "read_multipart"]
