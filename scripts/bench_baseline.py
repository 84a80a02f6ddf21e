"""Baseline speed, measured in one run (the machine may be shared: compare ratios, rerun if noisy).

1. Top-10 retrieval of 100,000 queries against 100,000 candidates (dim 768): the exact chunked
   search and FAISS IndexFlatIP, time and peak memory, and the chunked search's time as a share of
   FAISS's (goal <= 1.25x; scripts/bench_retrieval.py measures the chunked search at scale).
2. mn04 embedding extraction on the CPU: clips per second on generated 10 s clips at 44.1 kHz
   (decode, resample, log-mel, network), then the same files again from the embedding cache.
   Needs the mn04 checkpoint (cached or in $LARB_ASSETS_MIRROR, e.g. ../shared/assets).
3. One training epoch of PaSST-MPNet-tags (D = 768, batch 128) on cached features of Clotho
   development size (3,839 clips, 19,195 captions), with validation at Clotho validation size.

Usage: python scripts/bench_baseline.py [--queries 100000] [--corpus 100000] [--clips 64] [--skip-retrieval]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_retrieval

CLOTHO_DEV_CLIPS, CLOTHO_VAL_CLIPS, CAPTIONS_PER_CLIP = 3839, 1045, 5


def bench_extraction(n_clips: int, seconds: float = 10.0, rate: int = 44_100) -> None:
    from baselines.assets import MN04, available_offline
    from baselines.encoders.taggers import TaggerFeatures, tagger_spec

    if not available_offline(MN04):
        print("mn04 extraction: skipped (set LARB_ASSETS_MIRROR to a folder holding mn04_as_mAP_432.pt)")
        return
    with tempfile.TemporaryDirectory(prefix="larb-bench-") as tmp:
        os.environ["LARB_CACHE_DIR"] = str(Path(tmp) / "cache")  # a cold embedding cache
        rng = np.random.default_rng(0)
        paths = []
        for i in range(n_clips):
            t = np.arange(int(seconds * rate)) / rate
            clip = 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
            paths.append(Path(tmp) / f"clip_{i:04d}.wav")
            sf.write(paths[-1], clip.astype(np.float32), rate, subtype="PCM_16")
        features = TaggerFeatures(tagger_spec("mn04"), "cpu", batch_size=16, progress=False)
        start = time.perf_counter()
        _ = features.model
        load = time.perf_counter() - start
        start = time.perf_counter()
        features.logits(paths)
        cold = time.perf_counter() - start
        computed = features.last_computed
        start = time.perf_counter()  # a fresh extractor: the cache is read back from disk
        again = TaggerFeatures(tagger_spec("mn04"), "cpu", batch_size=16, progress=False)
        again.logits(paths)
        warm = time.perf_counter() - start
    print(f"mn04 extraction on CPU ({torch.get_num_threads()} threads), {n_clips} clips of {seconds:g} s at "
          f"{rate} Hz: model load {load:.2f} s")
    print(f"  first run  {cold:7.2f} s  {n_clips / cold:7.1f} clips/s ({computed} extracted)")
    print(f"  second run {warm:7.2f} s  {n_clips / warm:7.1f} clips/s ({again.last_computed} extracted: "
          f"{cold / warm:.0f}x faster; what is left is reading the cache and hashing the files)")


def bench_training_epoch() -> None:
    from baselines.config import apply_overrides
    from baselines.models.passt_mpnet_tags import DEFAULTS, SPEC, PasstMpnetTags
    from baselines.models.tags_head import N_TAGS, TagsHead
    from baselines.task_features import TaskFeatures
    from baselines.train.loop import train
    from benchmark.groundtruth import captions_t2a

    generator = torch.Generator().manual_seed(0)

    def features(n_clips: int, prefix: str) -> TaskFeatures:
        rows = [(f"{prefix}_{i}.wav", [f"{prefix} caption {i}.{k}" for k in range(CAPTIONS_PER_CLIP)])
                for i in range(n_clips)]
        gt = captions_t2a(rows)
        return TaskFeatures(gt, 3 * torch.randn(n_clips, N_TAGS, generator=generator),
                            torch.randn(gt.n_queries, 768, generator=generator))

    config = apply_overrides(DEFAULTS, ["epochs=1", "device=cpu"])
    torch.manual_seed(0)
    system = PasstMpnetTags(config, TagsHead(torch.randn(N_TAGS, 768, generator=generator), config["lambda"]))
    train_features, val_features = features(CLOTHO_DEV_CLIPS, "dev"), features(CLOTHO_VAL_CLIPS, "val")
    with tempfile.TemporaryDirectory(prefix="larb-bench-") as tmp:
        start = time.perf_counter()
        result = train(SPEC, system, train_features, val_features, [], Path(tmp), progress=False)
        seconds = time.perf_counter() - start
    steps = -(-train_features.text.shape[0] // config["batch_size"])
    print(f"one training epoch of {SPEC.name} on cached features ({train_features.text.shape[0]:,} captions, "
          f"{CLOTHO_DEV_CLIPS:,} clips, D=768, batch {config['batch_size']}, {steps} steps) + validation on "
          f"{val_features.text.shape[0]:,} captions: {seconds:.2f} s "
          f"(train loss {result.history[0]['train_loss']:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--corpus", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--skip-retrieval", action="store_true")
    args = parser.parse_args()
    if not args.skip_retrieval:
        results = bench_retrieval.measure(args.queries, args.corpus, args.dim, ["chunked", "faiss"], gap_seconds=0)
        print(f"top-10 retrieval, {args.queries:,} queries x {args.corpus:,} candidates, dim {args.dim}")
        bench_retrieval.report(results, args.queries, args.corpus, args.dim)
        ratio = results["chunked"]["seconds"] / results["faiss"]["seconds"]
        verdict = "met" if ratio <= 1.25 else "NOT met"
        print(f"  chunked / FAISS IndexFlatIP time: {ratio:.2f}x (goal <= 1.25x: {verdict})")
    bench_extraction(args.clips)
    bench_training_epoch()


if __name__ == "__main__":
    main()
