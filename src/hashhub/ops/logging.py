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


#: (whole second, its "YYYY-MM-DDTHH:MM:SS"), replaced as one tuple: one strftime a second
_second: tuple[int, str] = (-1, "")


def timestamp(created: float) -> str:
    """`created` (epoch seconds) as an ISO-8601 UTC time with milliseconds."""
    global _second
    whole = int(created)
    second = _second
    if second[0] != whole:
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{second[1]}.{int((created - whole) * 1000):03d}Z"


def json_line(created: float, level: str, logger: str, msg: str, fields: dict[str, Any] | None) -> str:
    """The JSON object of one log line; `msg` and `fields` must already be safe to write."""
    entry: dict[str, Any] = {"ts": timestamp(created), "level": level, "logger": logger, "msg": msg}
    if fields:
        entry.update(fields)
    return orjson.dumps(entry, default=str).decode()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus the record's `fields` extra."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if not isinstance(fields, dict):
            fields = {}
        elif not getattr(record, "fields_are_safe", False):  # only the request log's fields are checked
            fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        if record.exc_info:
            fields = {**fields, "error": redact(self.formatException(record.exc_info))}
        msg = redact(record.getMessage())
        return json_line(record.created, record.levelname.lower(), record.name, msg, fields)


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


def _sole_json_handler(logger: logging.Logger) -> logging.StreamHandler | None:
    """The one handler that would see `logger`'s INFO records, when that is our JSON stream handler
    and no filter stands in the way; else None (tests' capture handlers, an operator's own set-up)."""
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        current = current.parent if current.propagate else None
    if (
        type(found) is logging.StreamHandler
        and isinstance(found.formatter, JsonFormatter)
        and not found.filters
        and found.level <= logging.INFO
    ):
        return found
    return None


_SAFE_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def log_request(method: str, route: str, status: int, seconds: float, key_id: str | None) -> None:
    """One line per request. `route` is a template from our own routes (or "<unmatched>"), never a
    path; the method and key id are checked for their shapes here, so the formatter need not scan
    these fields for secrets on every request.

    With the logging set up by `configure` (one JSON stream handler), the line is written to that
    handler's stream directly: a LogRecord, caller lookup and handler chain cost several times
    more than the line itself, and the request log is written once per request. Any other set-up
    gets an ordinary record, so capture handlers and an operator's own handlers see it."""
    if not _access.isEnabledFor(logging.INFO):
        return
    fields = {
        "method": method if method in _SAFE_METHODS or _SAFE_METHOD.fullmatch(method) else "OTHER",
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    if key_id:
        fields["key_id"] = key_id if _SAFE_KEY_ID.fullmatch(key_id) else "<other>"
    handler = _sole_json_handler(_access)
    if handler is None:
        _access.info("request", extra={"fields": fields, "fields_are_safe": True})
        return
    line = json_line(time.time(), "info", ACCESS_LOGGER, "request", fields)
    with handler.lock:  # the lock StreamHandler.emit holds
        try:
            handler.stream.write(line + handler.terminator)
            handler.stream.flush()
        except Exception:  # a closed or broken stream: report it the way logging would
            handler.handleError(logging.makeLogRecord({"msg": "request", "name": ACCESS_LOGGER}))
