"""The peers' protocols over the hub's own services: NCMEC hash-sharing v2 and StopNCII v1.

`include(app)` mounts them; what each client needs, line by line, is in `interop/peer-clients.md`.
"""

from __future__ import annotations

from hashhub.hub.compat.api import include

__all__ = ["include"]
