"""Embedding extraction throughput: one process against two processes started by `accelerate launch`.

Runs `larb baseline extract passt-mpnet-tags` (mn04 tagger + all-MiniLM-L6-v2, from the offline
asset mirror) on demo-train and demo (300 clips, 1,500 captions) into fresh caches: one process
with one thread, one process with two threads, and two processes (one thread each, gloo on the
CPU). Prints the seconds of each whole command (interpreter and model start included) and the
ratios, measured in one run; and whether the two-process cache is byte-identical to the
one-thread one. Needs LARB_ASSETS_MIRROR (../shared/assets).

Usage: python scripts/bench_extract.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ARGS = ["baseline", "extract", "passt-mpnet-tags", "--task", "demo-train", "--task", "demo", "--set", "tagger=mn04",
        "--set", "text_encoder=all-MiniLM-L6-v2", "--set", "device=cpu"]
LAUNCH = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no"]


def timed(command: list[str], cache: Path, threads: str | None) -> float:
    env = {**os.environ, "LARB_CACHE_DIR": str(cache)}
    if threads:
        env["OMP_NUM_THREADS"] = threads
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def shards(cache: Path) -> dict[str, bytes]:
    return {str(p.relative_to(cache)): p.read_bytes() for p in sorted((cache / "embeddings").rglob("shard-*.npz"))}


def main() -> None:
    if not os.environ.get("LARB_ASSETS_MIRROR"):
        sys.exit("set LARB_ASSETS_MIRROR to the offline asset mirror (../shared/assets)")
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        warm = timed([str(BIN / "larb"), "tasks"], root / "warm", None)  # demo audio generated, imports warm
        one = timed([str(BIN / "larb"), *ARGS], root / "one", "1")
        one_two_threads = timed([str(BIN / "larb"), *ARGS], root / "one-2t", "2")
        two = timed([*LAUNCH, str(BIN / "larb"), *ARGS], root / "two", None)
        print(f"(larb tasks, to warm the file cache: {warm:.1f} s)")
        print(f"1 process, 1 thread : {one:6.1f} s")
        print(f"1 process, 2 threads: {one_two_threads:6.1f} s  ({one / one_two_threads:.2f}x the 1-thread speed)")
        print(f"2 processes (gloo)  : {two:6.1f} s  ({one / two:.2f}x the 1-process speed, "
              f"{one_two_threads / two:.2f}x the 2-thread one)")
        print("2-process cache identical to the 1-process one:", shards(root / "one") == shards(root / "two"))


if __name__ == "__main__":
    main()
