"""Per-key rate limits: a token bucket per caller, refill rate chosen by the caller's role.

Callers are told apart by the key id of a *verified* key (never the secret, and never an unverified
id, or anyone could drain a victim's bucket by sending its id); requests without a valid key share
one bucket per client address under the role "anonymous". A role with rate 0 is not limited. Over
the limit the answer is 429 with Retry-After (whole seconds until a token is back).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from hashhub.ops.responses import send_json

CALLER_SCOPE_KEY = "hashhub.caller"  # where the identified caller is left for the request log
MAX_BUCKETS = 50_000  # idle full buckets are dropped beyond this, so random addresses cannot grow memory


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as far as limits and logs care: a bucket id (key id) and its roles.
    `subject`: what the app's identify hook verified (the hub's Principal), opaque to ops, so the
    app's own handler need not verify the same key a second time in the same request."""

    bucket: str
    roles: frozenset[str]
    subject: object = field(default=None, compare=False)


Identify = Callable[[str], Awaitable[Caller | None]]


class TokenBuckets:
    """Thread-safe token buckets keyed by caller; `take` answers 0 (allowed) or seconds to wait."""

    def __init__(self, rates: dict[str, float], burst_seconds: float) -> None:
        self.rates = dict(rates)
        self.burst_seconds = burst_seconds
        self._rate_of: dict[frozenset[str], float] = {}
        self._state: dict[str, tuple[float, float]] = {}  # bucket -> (tokens, monotonic time)
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def rate_for(self, roles: frozenset[str]) -> float:
        """The most generous rate among the roles (0 = unlimited wins)."""
        rate = self._rate_of.get(roles)
        if rate is None:  # a handful of role sets exist: work each out once
            rates = [self.rates.get(r, self.rates.get("anonymous", 0.0)) for r in roles] or [0.0]
            rate = self._rate_of[roles] = 0.0 if 0.0 in rates else max(rates)
        return rate

    def take(self, bucket: str, rate: float, now: float | None = None) -> float:
        if rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        capacity = max(1.0, rate * self.burst_seconds)
        with self._lock:
            tokens, last = self._state.get(bucket, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._state[bucket] = (tokens - 1.0, now)
                self._prune(now)
                return 0.0
            self._state[bucket] = (tokens, now)
            return (1.0 - tokens) / rate

    def _prune(self, now: float) -> None:
        # At most once per burst_seconds: a scan on every call once the table is full would make
        # each request O(buckets).
        if len(self._state) <= MAX_BUCKETS or now < self._next_prune:
            return
        self._next_prune = now + self.burst_seconds
        # A bucket idle for burst_seconds is full again, so forgetting it changes nothing.
        stale = [b for b, (_, last) in self._state.items() if now - last > self.burst_seconds]
        for bucket in stale:
            del self._state[bucket]


class RateLimit:
    def __init__(self, app: ASGIApp, buckets: TokenBuckets, identify: Identify) -> None:
        self.app = app
        self.buckets = buckets
        self.identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        caller = await self._caller(scope)
        scope[CALLER_SCOPE_KEY] = caller
        wait = self.buckets.take(caller.bucket, self.buckets.rate_for(caller.roles))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            message = f"Too many requests for this key; retry in {retry} s."
            await send_json(send, 429, message, {"Retry-After": str(retry)})
            return
        await self.app(scope, receive, send)

    async def _caller(self, scope: Scope) -> Caller:
        token = bearer_token(scope)
        caller = await self.identify(token) if token else None
        if caller is not None:
            return caller
        client = scope.get("client") or ("unknown", 0)
        return Caller(f"addr:{client[0]}", frozenset({"anonymous"}))


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None
