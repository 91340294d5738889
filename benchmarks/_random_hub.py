"""A SQLite hub filled with random PDQ+MD5 items through the real `hashhub hub import`, shared by the
hub benchmarks (hub_match, hub_pool_start): one contributor `contrib`, one member `plat`, one list
`verified` the member reads."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the set-up is the process tests' own
from tests.support.hubs import contributor_and_member

HASHHUB = [sys.executable, "-c", "from hashhub.cli import main; main()"]
GRADE = {"scheme": "industry", "value": "A1"}

#: the organisations and list of a benchmark hub; returns their API keys by organisation
new_hub = contributor_and_member


def write_items(
    path: Path, count: int, *, seed: int = 7, prefix: str = "b", samples: int = 1000
) -> list[str]:
    """N random PDQ+MD5 items as NDJSON (the `POST /api/v1/items` item shape, one a line); returns
    about `samples` of the listed PDQs, spread over the file, to query near."""
    rng = np.random.default_rng(seed)
    every = max(1, count // samples)
    sample: list[str] = []
    with path.open("wb") as out:
        for start in range(0, count, 100_000):
            n = min(100_000, count - start)
            pdqs = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
            md5s = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
            rows = (
                orjson.dumps(
                    {
                        "external_id": f"{prefix}-{start + i}",
                        "classification": GRADE,
                        "fingerprints": {"pdq": pdqs[i].tobytes().hex(), "md5": md5s[i].tobytes().hex()},
                    }
                )
                for i in range(n)
            )
            out.write(b"\n".join(rows) + b"\n")
            sample.extend(pdqs[j].tobytes().hex() for j in range(0, n, every))
    return sample[:samples]


def import_file(path: Path, db: str, env: dict[str, str]) -> float:
    """`hashhub hub import` of an NDJSON file into `verified` (the file is deleted after); seconds."""
    started = time.perf_counter()
    imported = subprocess.run(
        [*HASHHUB, "hub", "import", str(path), "--org", "contrib", "--list", "verified"],
        env={**env, "HASHHUB_DB": db},
        capture_output=True,
        text=True,
    )
    if imported.returncode != 0:
        raise SystemExit(f"import failed: {imported.stderr[-3000:]}")
    path.unlink()
    return time.perf_counter() - started
