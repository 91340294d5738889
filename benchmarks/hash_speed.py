"""PDQ speed on phone-sized JPEGs: hashhub vs python-threatexchange, and `hashhub hash --workers`.

    .venv/bin/python benchmarks/hash_speed.py [--count 500] [--workers 1 2] [--size 3000x2000]
                                              [--rounds 1] [--cli-only]

Set-up (made at run time from benign corpus photos, in a temporary folder):
  - `--count` corpus photos, evenly spread, each upscaled (bicubic) to `--size` and saved as JPEG
    quality 90: the corpus photos are ~300x200, where a run would measure start-up, not hashing;
  - one core: this process is pinned to one CPU and BLAS to one thread, then hashes every file with
      hashhub:        `hashhub.hashing.hash_path(path, ["pdq"])` (decode + PDQ, the product's path)
      threatexchange: `PdqSignal.hash_from_file(path)` (Pillow full-size decode + Meta's C++ PDQ)
    alternately for `--rounds` rounds, keeping each side's best round (less noise from other work),
    and, for scale, Pillow's full-size decode alone (what threatexchange's path starts with) and
    hashhub's PDQ on a full-size decode (`open_image` without `target_size`: no DCT scaling);
  - agreement: PDQ distance between the two sides' hashes for the same file (max, median);
  - workers: the installed `hashhub hash FOLDER --signals pdq --workers N` for each N, wall time of
    the whole command (start-up included), output discarded.

Prints ONE JSON line.
"""

from __future__ import annotations

import os

# Before numpy loads anywhere: one BLAS thread, so "one core" means one core for both sides.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from hashhub.hashing import hash_path
from hashhub.media import open_image
from hashhub.signals import PdqSignal as HubPdq

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
HASHHUB = Path(sys.executable).parent / "hashhub"


def _make_one(job: tuple[Path, Path, tuple[int, int]]) -> Path:
    source, target, size = job
    with Image.open(source) as image:
        image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(target, quality=90)
    return target


def make_jpegs(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    photos = sorted((CORPUS / "photos").glob("*.jpg"))
    if not photos:
        sys.exit(f"benign corpus not found at {CORPUS}")
    step = max(len(photos) // count, 1)
    chosen = (photos * (count // len(photos) + 1))[::step][:count]
    jobs = [(source, folder / f"{i:04d}.jpg", size) for i, source in enumerate(chosen)]
    with ProcessPoolExecutor() as pool:
        return list(pool.map(_make_one, jobs, chunksize=8))


def _timed(hasher: Callable[[Path], str], files: list[Path]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    hashes = [hasher(path) for path in files]
    return time.perf_counter() - start, hashes


def _decode_only(path: Path) -> str:
    with Image.open(path) as image:
        image.convert("RGB").load()
    return ""


def _hub_full_size(path: Path) -> str:
    return HubPdq.hash_image(open_image(path)).value or ""


def one_core(files: list[Path], rounds: int) -> dict[str, object]:
    from threatexchange.signal_type.pdq.signal import PdqSignal as TxPdq

    def hub(path: Path) -> str:
        return hash_path(path, ["pdq"]).hashes.get("pdq", "")

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    hub(files[0]), TxPdq.hash_from_file(files[0])  # warm caches, imports and lazily built tables
    hub_best = tx_best = float("inf")
    for _ in range(rounds):
        elapsed, hub_hashes = _timed(hub, files)
        hub_best = min(hub_best, elapsed)
        elapsed, tx_hashes = _timed(TxPdq.hash_from_file, files)
        tx_best = min(tx_best, elapsed)
    decode_time, _ = _timed(_decode_only, files)
    full_time, _ = _timed(_hub_full_size, files)
    distances = [HubPdq.distance(a, b) for a, b in zip(hub_hashes, tx_hashes, strict=True)]
    return {
        "hashhub_images_per_s": round(len(files) / hub_best, 1),
        "threatexchange_images_per_s": round(len(files) / tx_best, 1),
        "speedup_vs_threatexchange": round(tx_best / hub_best, 2),
        "pillow_full_decode_images_per_s": round(len(files) / decode_time, 1),
        "hashhub_full_size_decode_images_per_s": round(len(files) / full_time, 1),
        "pdq_distance_max": max(distances),
        "pdq_distance_median": statistics.median(distances),
    }


def cli_workers(folder: Path, count: int, workers: list[int]) -> dict[str, object]:
    """Wall-clock rate of the whole command; other work on the machine shows in it (see the load)."""
    result: dict[str, object] = {}
    rates = {}
    for n in workers:
        start = time.perf_counter()
        subprocess.run(
            [str(HASHHUB), "hash", str(folder), "--signals", "pdq", "--workers", str(n)],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        rates[n] = count / (time.perf_counter() - start)
        result[f"cli_workers_{n}_images_per_s"] = round(rates[n], 1)
    if 1 in rates and len(rates) > 1:
        top = max(rates)
        result[f"cli_speedup_{top}_vs_1_workers"] = round(rates[top] / rates[1], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", default="3000x2000")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--cli-only", action="store_true", help="only the --workers runs (threatexchange is slow)"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="hashhub-bench-") as tmp:
        folder = Path(tmp)
        files = make_jpegs(folder, args.count, (width, height))
        report: dict[str, object] = {
            "benchmark": "hash_speed",
            "images": len(files),
            "size": f"{width}x{height}",
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        }
        # The CLI runs first, before this process pins itself to one core.
        report.update(cli_workers(folder, len(files), args.workers))
        if not args.cli_only:
            report.update(one_core(files, args.rounds))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
