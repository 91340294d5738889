"""`hashhub demo`: a hub and an agent on SQLite, demo organisations, a demo list of benign photos.

    from hashhub.demo import run_demo
    run_demo(workdir, check=True)   # start, print, scan once, stop

Everything runs as real servers on loopback (the same `hashhub hub serve` / `hashhub agent serve`
a deployment runs), so what the demo prints works with any HTTP client.
"""

from hashhub.demo.run import DemoError, run_demo

__all__ = ["DemoError", "run_demo"]
