#!/usr/bin/env python
"""Build throughput of the dataset builders: clips per second (decode, resample, write).

Generates a Clotho-layout evaluation split of N noise clips (44.1 kHz, 16-bit mono WAV, the
Clotho format) in a temporary folder, then runs the real builder on it (`build("clotho",
data_dir=..., output=...)`: decode with soundfile, resample with soxr VHQ, encode FLAC, write
Arrow, save the DatasetDict) with 1 and 2 processes, each in a fresh subprocess. Peak memory
is sampled from the whole process tree (sum of RSS, every 50 ms) with psutil.

    python scripts/bench_build.py                       # 2000 clips of 5 s, to 32 kHz, 1 and 2 procs
    python scripts/bench_build.py --clips 3000 --seconds 2 --sample-rate original --procs 1 2
    python scripts/bench_build.py --sizes 2000 20000 --seconds 0.5   # peak memory against the clip count

With `--sizes`, one build per size (one process) and the ratio of the peak memories: the
builder writes Arrow shards as it goes (rows are never all in memory), so the peak should
not grow with the number of clips (goal: within 1.3x from 2,000 to 20,000 clips).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def generate(folder: Path, clips: int, seconds: float, rate: int = 44_100) -> None:
    """A Clotho-layout evaluation split: captions CSV, metadata CSV, evaluation/*.wav."""
    audio = folder / "evaluation"
    audio.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"clip {i:05d}.wav" for i in range(clips)]
    base = rng.uniform(-0.3, 0.3, int(seconds * rate)).astype(np.float32)
    for i, name in enumerate(names):
        sf.write(audio / name, np.roll(base, i * 97), rate, subtype="PCM_16")
    with open(folder / "clotho_captions_evaluation.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name"] + [f"caption_{k}" for k in range(1, 6)])
        for i, name in enumerate(names):
            writer.writerow([name] + [f"Generated sound number {i}, take {k}." for k in range(1, 6)])
    with open(folder / "clotho_metadata_evaluation.csv", "w", newline="", encoding="iso-8859-1") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "keywords", "sound_id", "sound_link", "start_end_samples", "manufacturer",
                         "license"])
        for i, name in enumerate(names):
            writer.writerow([name, "noise;generated", str(i), "", "", "bench", "CC0"])


def worker(data: Path, output: Path, procs: int, sample_rate: int | None) -> None:
    """One build, in its own process; prints a JSON line with its timings."""
    import logging

    logging.getLogger("larb.data").setLevel(logging.ERROR)  # the generated CSVs are not the official ones
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    from datasets_builders.build import build

    start = time.perf_counter()
    result = build("clotho", splits=["evaluation"], sample_rate=sample_rate, data_dir=data, output=output,
                   num_proc=procs)
    elapsed = time.perf_counter() - start
    print(json.dumps({"rows": result["evaluation"].num_rows, "seconds": elapsed}))


def measure(data: Path, scratch: Path, procs: int, sample_rate: int | None) -> dict[str, float]:
    import psutil

    output = scratch / f"out-{procs}"
    env = dict(os.environ, LARB_CACHE_DIR=str(scratch / f"cache-{procs}"), PYTHONPATH=str(REPO))
    command = [sys.executable, __file__, "--worker", str(data), str(output), str(procs), str(sample_rate or 0)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    root, peak, peak_anon = psutil.Process(process.pid), 0, 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            infos = [p.memory_info() for p in tree if p.is_running()]
            peak = max(peak, sum(i.rss for i in infos))
            peak_anon = max(peak_anon, sum(i.rss - i.shared for i in infos))  # RssAnon: not file-backed
        except psutil.Error:
            pass
        time.sleep(0.05)
    out = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"the build with {procs} process(es) failed (exit {process.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    size = sum(f.stat().st_size for f in output.rglob("*") if f.is_file())
    shutil.rmtree(output)
    return {**result, "peak_rss_mib": peak / 2**20, "peak_anon_mib": peak_anon / 2**20, "output_mib": size / 2**20}


def stages(folder: Path, rate: int | None, count: int = 100) -> str:
    """Milliseconds per clip of each stage, in this process: decode, resample, encode."""
    import io

    from datasets_builders.audio import resample

    files = sorted(folder.iterdir())[:count]
    start = time.perf_counter()
    decoded = [sf.read(f, dtype="float32", always_2d=True) for f in files]
    t_decode = time.perf_counter() - start
    start = time.perf_counter()
    out = [(resample(x, sr, rate), rate) if rate and rate != sr else (x, sr) for x, sr in decoded]
    t_resample = time.perf_counter() - start
    start = time.perf_counter()
    for samples, sr in out:
        sf.write(io.BytesIO(), samples, sr, format="FLAC", subtype="PCM_16")
    t_encode = time.perf_counter() - start
    n = len(files)
    if not rate:
        return (f"per clip, one process: decode {1000 * t_decode / n:.1f} ms (at the original rate the "
                "builder stores the WAV bytes as they are: no decode, resample or encode)")
    return (f"per clip, one process: decode {1000 * t_decode / n:.1f} ms, resample (soxr VHQ) "
            f"{1000 * t_resample / n:.1f} ms, FLAC encode {1000 * t_encode / n:.1f} ms")


def compare_sizes(sizes: list[int], seconds: float, rate: int | None) -> int:
    """Peak memory of a one-process build at each size, and the ratio of the largest to the smallest."""
    rows = []
    for clips in sizes:
        with tempfile.TemporaryDirectory(prefix="larb-bench-") as tmp:
            scratch = Path(tmp)
            generate(scratch / "data", clips, seconds)
            r = measure(scratch / "data", scratch, 1, rate)
            assert r["rows"] == clips, r
            rows.append((clips, r))
            print(f"{clips:>7} clips of {seconds:g} s: {r['seconds']:7.1f} s, peak RSS {r['peak_rss_mib']:6.0f} MiB, "
                  f"peak anon {r['peak_anon_mib']:6.0f} MiB, output {r['output_mib']:6.0f} MiB")
    (small, a), (large, b) = rows[0], rows[-1]
    ratio = b["peak_anon_mib"] / a["peak_anon_mib"]
    verdict = "met" if ratio <= 1.3 else "NOT met"
    print(f"peak anon memory {large:,} / {small:,} clips: {ratio:.2f}x "
          f"(RSS {b['peak_rss_mib'] / a['peak_rss_mib']:.2f}x; goal within 1.3x: {verdict})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each clip")
    parser.add_argument("--sample-rate", default="32000", help="target rate, or 'original'")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", help="build each number of clips once (1 process) and "
                                                             "compare peak memory")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        data, output, procs, rate = args.worker
        worker(Path(data), Path(output), int(procs), int(rate) or None)
        return 0
    rate = None if args.sample_rate == "original" else int(args.sample_rate)
    if args.sizes:
        return compare_sizes(args.sizes, args.seconds, rate)
    with tempfile.TemporaryDirectory(prefix="larb-bench-") as tmp:
        scratch = Path(tmp)
        start = time.perf_counter()
        generate(scratch / "data", args.clips, args.seconds)
        audio_mib = sum(f.stat().st_size for f in (scratch / "data" / "evaluation").iterdir()) / 2**20
        print(f"generated {args.clips} clips of {args.seconds:g} s (44.1 kHz 16-bit mono, {audio_mib:.0f} MiB) "
              f"in {time.perf_counter() - start:.1f} s; target rate: {rate or 'original'}; cpus: {os.cpu_count()}")
        print(stages(scratch / "data" / "evaluation", rate))
        print(f"{'procs':>5} {'seconds':>8} {'clips/s':>8} {'audio s/s':>9} {'peak RSS MiB':>12} "
              f"{'peak anon MiB':>13} {'output MiB':>10}")
        for procs in args.procs:
            r = measure(scratch / "data", scratch, procs, rate)
            assert r["rows"] == args.clips, r
            print(f"{procs:>5} {r['seconds']:>8.1f} {args.clips / r['seconds']:>8.1f} "
                  f"{args.clips * args.seconds / r['seconds']:>9.0f} {r['peak_rss_mib']:>12.0f} "
                  f"{r['peak_anon_mib']:>13.0f} {r['output_mib']:>10.0f}")
        print("RSS counts the memory-mapped Arrow files read back; anon (RSS minus file-backed pages) is the "
              "memory the build itself holds. "
              f"Load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
