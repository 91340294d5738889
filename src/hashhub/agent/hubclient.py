"""The agent's HTTP client for one hub: snapshot, feed, feedback and hits (nothing else).

Errors, all `HubError` (its message is a full sentence naming the hub):

    HubError
     +-- HubUnreachable       connection refused, DNS, timeout
     +-- HubRefused           401/403: the key is wrong, revoked or lacks the scope
     +-- HubProtocolError     any other non-2xx answer, or a body that is not the contract's shape
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

SNAPSHOT_PATH = "/api/v1/snapshot"
FEED_PATH = "/api/v1/feed"
FEEDBACK_PATH = "/api/v1/items/{id}/feedback"
HITS_PATH = "/api/v1/items/{id}/hits"
USER_AGENT = "hashhub-agent"


class HubError(Exception):
    """Talking to a hub failed; the message says which hub and what to do."""


class HubUnreachable(HubError):
    pass


class HubRefused(HubError):
    pass


class HubProtocolError(HubError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: the HTTP status when the hub answered with an error (None: the body was malformed).
        self.status = status

    @property
    def permanent(self) -> bool:
        """The hub understood and refused the request (404, 409, 422): retrying will not help."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)


@dataclass(frozen=True, slots=True)
class FeedPage:
    changes: list[dict[str, Any]]
    next: int
    has_more: bool


class HubClient:
    """One hub, one key. `transport` lets unit tests put an `httpx.MockTransport` underneath."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _check(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        if not response.is_stream_consumed:
            response.read()
        detail = response.text[:300]
        where = f"{self.url}{response.request.url.path}"
        if response.status_code in (401, 403):
            raise HubRefused(
                f"The hub at {self.url} refused the key ({response.status_code} on {where}): {detail}. "
                "Check the key given with --key or HASHHUB_KEY, and that it has the member role."
            )
        raise HubProtocolError(
            f"The hub answered {response.status_code} on {where}: {detail}", response.status_code
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise HubUnreachable(f"Cannot reach the hub at {self.url}: {exc}") from exc
        self._check(response)
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise HubProtocolError(
                f"The hub at {self.url} sent a body that is not JSON on {response.request.url.path}."
            ) from None

    def snapshot(self) -> tuple[int, Iterator[dict[str, Any]]]:
        """(cursor, items): the hub's current items and the feed cursor they are valid at.

        The body is streamed (gzip when the hub sends it), so a large list never sits in memory.
        """
        try:
            request = self._http.build_request("GET", SNAPSHOT_PATH)
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise HubUnreachable(f"Cannot reach the hub at {self.url}: {exc}") from exc
        try:
            self._check(response)
            lines = response.iter_lines()
            head = self._decode_line(next((line for line in lines if line.strip()), ""))
        except BaseException:
            response.close()
            raise
        if not isinstance(head, dict) or not isinstance(head.get("cursor"), int):
            response.close()
            raise HubProtocolError(
                f"The hub at {self.url} sent a snapshot without a first {{'cursor': N}} line."
            )

        def items() -> Iterator[dict[str, Any]]:
            try:
                for line in lines:
                    if line.strip():
                        yield self._decode_line(line)
            except httpx.TransportError as exc:
                raise HubUnreachable(f"The snapshot from {self.url} was cut off: {exc}") from exc
            finally:
                response.close()

        return head["cursor"], items()

    def _decode_line(self, line: str) -> Any:
        try:
            return json.loads(line)
        except ValueError:
            raise HubProtocolError(
                f"The hub at {self.url} sent a snapshot line that is not JSON: {line[:120]!r}"
            ) from None

    def feed(self, after: int, limit: int) -> FeedPage:
        body = self._json(self._request("GET", FEED_PATH, params={"after": after, "limit": limit}))
        changes = body.get("changes") if isinstance(body, dict) else None
        if not isinstance(changes, list):
            raise HubProtocolError(f"The hub at {self.url} sent a feed page without a 'changes' list.")
        nxt = body.get("next")
        if not isinstance(nxt, int):
            cursors = [c.get("cursor") for c in changes if isinstance(c, dict)]
            nxt = max([after, *(c for c in cursors if isinstance(c, int))])
        return FeedPage(changes=changes, next=nxt, has_more=bool(body.get("has_more")))

    def feedback(self, item_id: str, verdict: str, reason: str, note: str = "") -> Any:
        """Affirmative or negative feedback on one item; `reason` is a short code, `note` free text."""
        path = FEEDBACK_PATH.format(id=quote(item_id, safe=""))
        body = {"verdict": verdict, "reason": reason, "note": note}
        return self._json(self._request("POST", path, json=body))

    def hit(self, item_id: str, count: int = 1) -> Any:
        """Tell the hub its item matched `count` files here."""
        path = HITS_PATH.format(id=quote(item_id, safe=""))
        return self._json(self._request("POST", path, json={"count": count}))
