"""Build a hub's match pool from its database in a process of its own, save it, and exit.

A cold build (no saved pool files: the first start after a bulk import without `--save-pool`, or
after a pool format change) reads every item into Python objects. Freed afterwards, that memory
stays with the process that built: CPython's small-object arenas and glibc's heap are left
fragmented, and `malloc_trim` hands back little. Measured at 1M items: a server that built in
process held 164 MB of anonymous memory after switching to the saved files, against 43 MB for one
that loaded them. So a large build runs here, in a fresh interpreter, and the server maps the
files it wrote.

    python -m hashhub.hub.poolbuild   (the hub's settings as JSON on standard input)

The caller holds the pool directory's saver lock while this runs; this process does not take it.
Exit status 0 with the snapshot folder (or nothing, when there was nothing to save) on standard
output; anything else is a failure the caller logs before building in its own process.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from hashhub import db
from hashhub.hub.settings import HubSettings

log = logging.getLogger("hashhub.hub.poolbuild")

#: a build gets this long before the server gives up on it and builds in its own process
TIMEOUT_SECONDS = 1800.0


def build_elsewhere(settings: HubSettings) -> Path | None:
    """Run the build and save in a child process; the snapshot folder it wrote, or None."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hashhub.hub.poolbuild"],
            input=settings.model_dump_json(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("pool build process failed to run (%s); building in this process", e)
        return None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        log.warning("pool build process exited %s (%s); building in this process", done.returncode, tail[0])
        return None
    out = done.stdout.strip()
    return Path(out) if out else None


def main() -> int:
    from hashhub.hub.core import Hub
    from hashhub.hub.poolfile import _save_locked, pool_dir, worth_saving

    settings = HubSettings(**json.loads(sys.stdin.read()))
    directory = pool_dir(settings)
    if directory is None:
        return 0
    hub = Hub(settings)
    try:
        pool = hub.new_pool()
        with db.read(hub.engine) as conn:
            pool.catch_up(conn)
        saved = _save_locked(pool, hub.engine, directory) if worth_saving(pool, settings) else None
    finally:
        hub.engine.dispose()
    if saved is not None:
        print(saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
