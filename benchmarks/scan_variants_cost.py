"""What query variants cost the agent's scan: CPU time of `Scanner.evaluate_scanned(hash_media(...))`
(the scan API's and CLI's path: digests, one decode, PDQ, variants, index search; nothing recorded)
with every variant on versus plain PDQ only, on three kinds of upload:

  - corpus photos as they are (small JPEGs, ~230x300 px): the worst case, the decode is cheap;
  - Kodak PNGs (768x512);
  - phone-sized JPEGs: Kodak photos enlarged to 3000x2000 and saved at quality 90.

    .venv/bin/python benchmarks/scan_variants_cost.py [--files 100] [--repeats 3]

The index holds 10,000 random PDQ hashes. Times are CPU (process) time, not wall time, so load from
other work on a shared machine does not inflate them. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from hashhub.agent.matcher import Matcher
from hashhub.agent.policy import Policy
from hashhub.agent.scanner import Scanner
from hashhub.detect import hash_media

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_scan import build_store  # the agent benchmark's store builder

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def uploads(kind: str, count: int) -> list[bytes]:
    if kind == "photos":
        return [p.read_bytes() for p in sorted((CORPUS / "photos").glob("*.jpg"))[:count]]
    kodak = sorted((CORPUS / "kodak").glob("*.png"))[:count]
    if kind == "kodak":
        return [p.read_bytes() for p in kodak]
    out = []
    for path in kodak:
        with Image.open(path) as im:
            big = im.convert("RGB").resize((3000, 2000), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        big.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def scanners(db: str) -> tuple[Scanner, Scanner]:
    """(plain only, every variant) over one store of 10,000 random PDQ items."""
    store, _ = build_store(db, 10_000, [])
    matcher = Matcher()
    matcher.refresh(store)
    plain = Scanner(store, Policy.from_toml('[variants]\nenabled = ["none"]\n'), matcher)
    return plain, Scanner(store, Policy.from_toml('[variants]\nenabled = ["all"]\n'), matcher)


def cpu_seconds(scan: Scanner, datas: list[bytes], repeats: int) -> float:
    for data in datas[:2]:  # warm up compiled kernels and lazy imports
        scan.evaluate_scanned([None], [hash_media(data, scan.policy.variants)])
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for data in datas:
            scan.evaluate_scanned([None], [hash_media(data, scan.policy.variants)])
        best = min(best, time.process_time() - started)
    return best / len(datas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, object] = {"benchmark": "scan_variants_cost", "index_items": 10_000}
    with tempfile.TemporaryDirectory() as tmp:
        plain, every = scanners(str(Path(tmp) / "agent.db"))
        for kind in ("photos", "kodak", "phone"):
            datas = uploads(kind, args.files)
            plain_ms = cpu_seconds(plain, datas, args.repeats) * 1000
            all_ms = cpu_seconds(every, datas, args.repeats) * 1000
            out[kind] = {
                "files": len(datas),
                "plain_ms": round(plain_ms, 2),
                "all_variants_ms": round(all_ms, 2),
                "ratio": round(all_ms / plain_ms, 2),
            }
        plain.store.engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
