"""Structured JSON logs that never carry keys, hashes, query strings or bodies.

The request log writes the route template, not the path, and the key *id* (public), not the key.
As a second line of defence the formatter masks anything shaped like an API key secret or a hex
hash in any message, so another module's careless log line cannot leak one either.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

ACCESS_LOGGER = "hashhub.access"
_KEY = re.compile(r"\b(hh_[0-9a-f]{12})_[A-Za-z0-9_\-]+")
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")  # MD5 and longer: fingerprints, digests
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def redact(text: str) -> str:
    text = _KEY.sub(r"\1_***", text)
    text = _BEARER.sub(r"\1***", text)
    return _HEX.sub("<hex>", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus the record's `fields` extra."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            if getattr(record, "fields_are_safe", False):  # the request log's own, checked fields
                entry.update(fields)
            else:
                entry.update({k: redact(v) if isinstance(v, str) else v for k, v in fields.items()})
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class _DropUvicornAccess(logging.Filter):
    """uvicorn's access line holds the raw path with its query string (which may carry hashes);
    the request log below replaces it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def configure(level: int = logging.INFO) -> None:
    """JSON lines on stderr for every `hashhub.*` logger; idempotent (apps are built many times)."""
    root = logging.getLogger("hashhub")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(level)
    uvicorn_access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _DropUvicornAccess) for f in uvicorn_access.filters):
        uvicorn_access.addFilter(_DropUvicornAccess())


_SAFE_METHOD = re.compile(r"[A-Z]{1,16}")
_SAFE_KEY_ID = re.compile(r"[0-9a-z]{1,16}")  # key ids are 12 hex; the agent's one is "agent"
_access = logging.getLogger(ACCESS_LOGGER)


def log_request(method: str, route: str, status: int, seconds: float, key_id: str | None) -> None:
    """One line per request. `route` is a template from our own routes (or "<unmatched>"), never a
    path; the method and key id are checked for their shapes here, so the formatter need not scan
    these fields for secrets on every request."""
    if not _access.isEnabledFor(logging.INFO):
        return
    fields = {
        "method": method if _SAFE_METHOD.fullmatch(method) else "OTHER",
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    if key_id:
        fields["key_id"] = key_id if _SAFE_KEY_ID.fullmatch(key_id) else "<other>"
    _access.info("request", extra={"fields": fields, "fields_are_safe": True})
