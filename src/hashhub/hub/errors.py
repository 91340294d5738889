"""Domain errors. Services raise these; one handler in `app.py` turns each into its HTTP answer.

    HubError                     (400) something the caller can fix
      ├── Unauthorized           (401) no key, or a bad, unknown or revoked key
      ├── Forbidden              (403) the key is fine but its organisation may not do this
      ├── NotFound               (404) no such item, organisation, list or key
      ├── Conflict               (409) the thing already exists or is in the wrong state
      └── Invalid                (422) the payload is malformed; `rejected` lists bad batch rows

Every message is a full sentence that says what to change.
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class Unauthorized(HubError):
    status = 401


class Forbidden(HubError):
    status = 403


class NotFound(HubError):
    status = 404


class Conflict(HubError):
    status = 409


class Invalid(HubError):
    status = 422
