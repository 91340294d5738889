"""Operations: limits, rate limits, metrics and structured logs around an app, installed in one call.

`install(app, settings, hooks)` wraps an app (hub or agent) with, outermost first: request
observation (metrics, JSON request log, `GET /metrics`), the body-size limit, the per-key rate
limit. The app factories pass `Hooks` saying how to identify a caller and what to measure.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from hashhub.ops import logging as oplog
from hashhub.ops.limits import BodySizeLimit
from hashhub.ops.metrics import Metrics
from hashhub.ops.observe import Observe
from hashhub.ops.ratelimit import Caller, RateLimit, TokenBuckets

__all__ = ["Caller", "Hooks", "OpsSettings", "install"]

#: room on top of the largest accepted upload for multipart framing and form fields.
BODY_SLACK = 1024 * 1024


class OpsSettings(Protocol):
    max_upload_bytes: int
    rate_limits: dict[str, float]
    rate_limit_burst_seconds: float
    metrics_token: str


@dataclass
class Hooks:
    #: a bearer token -> the verified caller, or None when the token is not valid.
    identify: Callable[[str], Awaitable[Caller | None]]
    index_size: Callable[[], float]
    sync_lag: Callable[[], float] | None = None
    #: roles whose keys may read `/metrics` (besides the configured metrics token).
    metrics_roles: frozenset[str] = field(default_factory=lambda: frozenset({"admin"}))


def install(app: FastAPI, settings: OpsSettings, hooks: Hooks, role: str) -> Metrics:
    oplog.configure()
    metrics = Metrics(role, hooks.index_size, hooks.sync_lag)

    async def may_read_metrics(token: str | None) -> bool:
        if not token:
            return False
        if settings.metrics_token and _same(token, settings.metrics_token):
            return True
        caller = await hooks.identify(token)
        return caller is not None and bool(caller.roles & hooks.metrics_roles)

    # add_middleware wraps: the last added is the outermost.
    buckets = TokenBuckets(settings.rate_limits, settings.rate_limit_burst_seconds)
    app.add_middleware(RateLimit, buckets=buckets, identify=hooks.identify)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes + BODY_SLACK)
    app.add_middleware(Observe, metrics=metrics, may_read_metrics=may_read_metrics)
    app.state.ops_metrics = metrics
    return metrics


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
