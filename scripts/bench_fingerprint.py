"""Measure the near-duplicate fingerprint's threshold: BER of near-copies vs distinct clips.

    python scripts/bench_fingerprint.py [--generated N]

Clips: the 21 real Clotho and AudioCaps clips in ../shared/reference/audio_mini (when present)
and N generated demo clips (benchmark.demo_data: similar synthetic events, hard negatives).
For each clip, each distortion of `datasets_builders.fingerprint.near_copies` is searched in an
index of the originals: is its original found, at what bit error rate (BER)? Each original is
also searched in the index without itself: the lowest BER any other clip reaches. Prints both
distributions and the detection / false-match rates at the module's THRESHOLD. numpy FFT, soxr.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmark import demo_data
from datasets_builders.fingerprint import THRESHOLD, Index, fingerprint, near_copies

AUDIO_MINI = Path(__file__).resolve().parents[2] / "shared" / "reference" / "audio_mini"


def clips(generated: int) -> list[tuple[str, np.ndarray, int]]:
    found = []
    for path in sorted(AUDIO_MINI.glob("*/*.wav")):
        samples, rate = sf.read(path, dtype="float32", always_2d=True)
        found.append((f"real:{path.parent.name}/{path.name}", samples.mean(axis=1), rate))
    with tempfile.TemporaryDirectory() as folder:
        demo_data.generate("test", Path(folder))
        for path in sorted(Path(folder).glob("*.wav"))[:generated]:
            samples, rate = sf.read(path, dtype="float32")
            found.append((f"demo:{path.name}", samples, rate))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=60)
    args = parser.parse_args()
    originals = clips(args.generated)
    real = sum(name.startswith("real:") for name, _, _ in originals)
    print(f"{len(originals)} clips ({real} real, {len(originals) - real} generated); threshold {THRESHOLD}")
    started = time.perf_counter()
    prints = [fingerprint(s, r) for _, s, r in originals]
    print(f"fingerprinted in {time.perf_counter() - started:.2f} s "
          f"({sum(len(s) / r for _, s, r in originals):.0f} s of audio)")
    index = Index(prints)
    by_kind: dict[str, list[float]] = {}
    missed = []
    for i, (name, samples, rate) in enumerate(originals):
        for kind, (copy, copy_rate) in near_copies(samples, rate).items():
            found = {clip: ber for clip, ber, _ in index.matches(fingerprint(copy, copy_rate), threshold=1.0)}
            by_kind.setdefault(kind, []).append(found.get(i, 1.0))
            if found.get(i, 1.0) >= THRESHOLD:
                missed.append(f"{kind} of {name} (BER {found.get(i, 1.0):.3f})")
    distinct = []
    false = []
    for i, (name, _, _) in enumerate(originals):
        others = [(clip, ber) for clip, ber, _ in index.matches(prints[i], threshold=1.0) if clip != i]
        best = min((ber for _, ber in others), default=0.5)
        distinct.append(best)
        false += [f"{name} ~ {originals[c][0]} (BER {b:.3f})" for c, b in others if b < THRESHOLD]
    print(f"{'near-copy':<15} {'found':>7} {'min':>6} {'median':>7} {'max':>6}")
    for kind, values in by_kind.items():
        v = np.array(values)
        print(f"{kind:<15} {np.mean(v < THRESHOLD):>7.0%} {v.min():>6.3f} {np.median(v):>7.3f} {v.max():>6.3f}")
    d = np.array(distinct)
    print(f"{'distinct clips':<15} lowest BER to any other clip: min {d.min():.3f}, median {np.median(d):.3f}; "
          f"pairs below the threshold: {len(false)}")
    for line in missed[:10] + false[:10]:
        print("  " + line)
    scaling()
    return 0


def scaling() -> None:
    """Query time against indexes of 100 to 10,000 clips of random 10 s fingerprints (a stand-in
    for unrelated clips): with a bounded number of verified candidates it should stay flat."""
    from datasets_builders.fingerprint import Fingerprint

    rng = np.random.default_rng(0)
    frames = 860  # 10 s
    queries = [Fingerprint(rng.integers(0, 2**32, frames, dtype=np.uint32), np.ones(frames, bool)) for _ in range(20)]
    print(f"{'index clips':>11} {'build s':>8} {'ms per query':>12}")
    for n in (100, 1_000, 10_000):
        prints = [Fingerprint(rng.integers(0, 2**32, frames, dtype=np.uint32), np.ones(frames, bool))
                  for _ in range(n)]
        started = time.perf_counter()
        index = Index(prints)
        built = time.perf_counter() - started
        started = time.perf_counter()
        for query in queries:
            index.matches(query)
        print(f"{n:>11,} {built:>8.2f} {1000 * (time.perf_counter() - started) / len(queries):>12.1f}")


if __name__ == "__main__":
    sys.exit(main())
