"""Browser sessions: an API key is exchanged once for a random session id in a cookie.

The cookie carries only an unguessable id (HttpOnly, SameSite=Strict, Secure over HTTPS); the key it
stands for stays in this process's memory, and every request re-checks that key with the app's own
verifier, so revoking a key ends its browser sessions too. Each session has its own CSRF token that
every form posts back; the sign-in form, which comes before any session, uses a double-submit cookie.
Sessions are per process and end when it restarts (people sign in again).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from fastapi import Request, Response

COOKIE = "hashhub_session"
LOGIN_COOKIE = "hashhub_login"
#: a session unused this long ends (trust-and-safety shifts are long; the key itself may live years).
IDLE_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(slots=True)
class WebSession:
    token: str
    key: str
    csrf: str
    expires: float


class Sessions:
    """Open sessions by id, each forgotten after `idle` seconds without a request."""

    def __init__(self, idle: float = IDLE_SECONDS, limit: int = MAX_SESSIONS) -> None:
        self._idle = idle
        self._limit = limit
        self._open: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def open(self, key: str) -> WebSession:
        now = time.monotonic()
        session = WebSession(secrets.token_urlsafe(32), key, secrets.token_urlsafe(32), now + self._idle)
        with self._lock:
            if len(self._open) >= self._limit:
                self._open = {t: s for t, s in self._open.items() if s.expires > now}
            if len(self._open) >= self._limit:  # still full of live sessions: drop the stalest
                del self._open[min(self._open, key=lambda t: self._open[t].expires)]
            self._open[session.token] = session
        return session

    def find(self, token: str | None) -> WebSession | None:
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._open.get(token)
            if session is None:
                return None
            if session.expires <= now:
                del self._open[token]
                return None
            session.expires = now + self._idle
            return session

    def close(self, token: str | None) -> None:
        with self._lock:
            self._open.pop(token or "", None)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def same(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens; a missing one never matches."""
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


def login_token(request: Request) -> str:
    """The sign-in form's CSRF token: the one the browser already holds, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
