"""Embedding extraction throughput: one process against two processes started by `accelerate launch`.

Runs `larb baseline extract passt-mpnet-tags` (mn04 tagger + all-MiniLM-L6-v2, from the offline
asset mirror) on a generated folder task (`--clips` noise clips of 10 s at 32 kHz, five captions
each) into fresh caches: one process with one thread, one process with two threads, and two
processes (one thread each, gloo on the CPU). Prints the seconds of each whole command
(interpreter and model start included, about 10 s of the two-process run: the launcher and two
interpreters) and the clips per second, measured in one run; and whether the two-process cache
is byte-identical to the one-thread one. Needs LARB_ASSETS_MIRROR (../shared/assets).

Usage: python scripts/bench_extract.py [--clips 600]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SETTINGS = ["--set", "tagger=mn04", "--set", "text_encoder=all-MiniLM-L6-v2", "--set", "device=cpu"]
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


def folder_task(folder: Path, clips: int) -> Path:
    """A Clotho-layout folder task: `clips` distinct noise clips and a captions CSV."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["file_name,caption_1,caption_2,caption_3,caption_4,caption_5"]
    for i in range(clips):
        sf.write(folder / f"clip{i:05d}.wav", 0.1 * rng.standard_normal(320_000).astype("float32"), 32_000)
        lines.append(f"clip{i:05d}.wav," + ",".join(f"noise clip {i} take {k}" for k in range(5)))
    (folder / "captions.csv").write_text("\n".join(lines) + "\n", "utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=600)
    args = parser.parse_args()
    if not os.environ.get("LARB_ASSETS_MIRROR"):
        sys.exit("set LARB_ASSETS_MIRROR to the offline asset mirror (../shared/assets)")
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        task = folder_task(root / "task", args.clips)
        command = ["baseline", "extract", "passt-mpnet-tags", "--task", str(task), *SETTINGS]
        one = timed([str(BIN / "larb"), *command], root / "one", "1")
        one_two_threads = timed([str(BIN / "larb"), *command], root / "one-2t", "2")
        two = timed([*LAUNCH, str(BIN / "larb"), *command], root / "two", None)
        print(f"{args.clips} clips of 10 s, {5 * args.clips} captions")
        for label, seconds in (("1 process, 1 thread ", one), ("1 process, 2 threads", one_two_threads),
                               ("2 processes (gloo)  ", two)):
            print(f"{label}: {seconds:6.1f} s, {args.clips / seconds:5.1f} clips/s")
        print(f"2 processes: {one / two:.2f}x the 1-process-1-thread speed, {one_two_threads / two:.2f}x the "
              "1-process-2-thread one")
        print("2-process cache identical to the 1-process one:", shards(root / "one") == shards(root / "two"))


if __name__ == "__main__":
    main()
