"""Two processes started by `accelerate launch` on the CPU (gloo), against one process.

Accelerate 1.x starts CPU processes with `--multi_gpu --num_processes 2` on a machine without GPUs
(torch.distributed.run underneath); its `--cpu --num_processes 2` starts a single process unless
given an MPI host file, so every launch here also checks that two processes really ran.
The one-process runs use one intra-op thread, as each launched process does (torch.distributed.run
sets OMP_NUM_THREADS=1), so that the same batches give bit-identical encoder outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import MIRROR, require_shared

BIN = Path(sys.executable).parent
ENCODERS = ["--set", "tagger=mn04", "--set", "text_encoder=all-MiniLM-L6-v2", "--set", "device=cpu"]
TRAIN = [*ENCODERS, "--set", "batch_size=32"]
LAUNCH = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--dynamo_backend", "no"]

# Records every file a process opens for writing under LARB_TEST_WATCH, one log per rank.
WRITE_AUDIT = textwrap.dedent('''
    import os, sys
    _watch, _log = os.environ.get("LARB_TEST_WATCH"), os.environ.get("LARB_TEST_WRITE_LOG")
    def _hook(event, args):
        if event != "open" or not _watch:
            return
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writes and isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(_watch):
            with open(f"{_log}.rank{os.environ.get('RANK', '0')}", "a") as out:
                out.write(os.fspath(path) + "\\n")
    sys.addaudithook(_hook)
''')


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LARB_CACHE_DIR": str(cache), "LARB_ASSETS_MIRROR": str(MIRROR), **extra}
    env.pop("LARB_DEBUG", None)
    return env


def larb(args: list[str], cache: Path, processes: int = 1, launcher: list[str] = (), **env: str) -> str:
    """`larb ARGS` in one process (one thread) or under the launcher; returns its output."""
    if processes == 1:
        command, env = [str(BIN / "larb"), *args], {"OMP_NUM_THREADS": "1", **env}
    else:
        command = [*LAUNCH, *(launcher or ["--mixed_precision", "no"]), str(BIN / "larb"), *args]
    done = subprocess.run(command, env=_env(cache, **env), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if processes > 1:
        assert "(2 processes)" in done.stdout or "training on 2 processes" in done.stdout, done.stdout
    return done.stdout


def _shards(cache: Path) -> dict[str, bytes]:
    root = cache / "embeddings"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("shard-*.npz"))}


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """The embeddings of demo and demo-train, extracted by one process and by two."""
    require_shared(MIRROR)
    one, two = tmp_path_factory.mktemp("cache-one"), tmp_path_factory.mktemp("cache-two")
    extract = ["baseline", "extract", "passt-mpnet-tags", "--task", "demo-train", "--task", "demo", *ENCODERS]
    larb(extract, one)
    out = larb(extract, two, processes=2)
    assert "demo-train: 240 audio embeddings (527,), 1200 caption embeddings (384,)" in out
    return one, two


def test_two_processes_extract_exactly_the_cache_of_one(caches):
    one, two = caches
    shards = _shards(one)
    assert len(shards) > 4 and _shards(two) == shards  # the same files, byte for byte


def test_an_extraction_a_crashed_rank_left_unfinished_is_completed_by_the_next_run(caches, tmp_path):
    import shutil

    _, two = caches
    partial = tmp_path / "partial"
    shutil.copytree(two, partial)
    lost = sorted((partial / "embeddings").rglob("shard-*.npz"))[1::3]  # batches a rank never wrote
    for shard in lost:
        shard.unlink()
    kept = {p: p.stat().st_mtime_ns for p in (partial / "embeddings").rglob("shard-*.npz")}
    larb(["baseline", "extract", "passt-mpnet-tags", "--task", "demo-train", "--task", "demo", *ENCODERS],
         partial, processes=2)
    assert _shards(partial) == _shards(two)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # finished batches were not redone


def _run(folder: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    return log, torch.load(folder / "best.pt", weights_only=True)["head"]


def test_two_process_training_matches_one_process_with_the_same_global_batch_and_only_rank_0_writes(
        caches, tmp_path):
    one_cache, _ = caches
    single, double = tmp_path / "single", tmp_path / "double"
    train = ["baseline", "train", "passt-mpnet-tags", "--train-task", "demo-train", *TRAIN, "--set", "epochs=3"]
    larb([*train, "--output", str(single)], one_cache)
    audit = tmp_path / "sitecustomize"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(WRITE_AUDIT, "utf-8")
    out = larb([*train, "--output", str(double)], one_cache, processes=2, PYTHONPATH=str(audit),
               LARB_TEST_WATCH=str(double), LARB_TEST_WRITE_LOG=str(tmp_path / "writes"))
    assert out.count("best: epoch") == 1  # the summary is printed once, by rank 0
    log_1, head_1 = _run(single)
    log_2, head_2 = _run(double)
    # Same validation figures; losses and weights equal up to float summation order (gloo all-reduce).
    assert [r["val_mAP@10"] for r in log_2] == [r["val_mAP@10"] for r in log_1]
    for a, b in zip(log_1, log_2, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
    assert all(torch.allclose(head_1[k], head_2[k], rtol=0, atol=1e-4) for k in head_1)
    # Measured here: the largest weight difference is about 5e-6.
    written_by = {rank: set((tmp_path / f"writes.rank{rank}").read_text().splitlines())
                  if (tmp_path / f"writes.rank{rank}").exists() else set() for rank in (0, 1)}
    assert written_by[1] == set()
    # atomic writes open `.NAME.PID.XXXX.tmp` beside NAME, then rename it
    targets = {Path(p).name.lstrip(".").split(".")[0] for p in written_by[0]}
    assert {"run", "log", "best", "last"} <= targets, written_by[0]

def test_a_two_process_run_resumes_exactly_and_the_launchers_mixed_precision_passes_through(caches, tmp_path):
    one_cache, _ = caches
    train = ["baseline", "train", "passt-mpnet-tags", "--train-task", "demo-train", *TRAIN]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    larb([*train, "--set", "epochs=3", "--output", str(straight)], one_cache, processes=2)
    larb([*train, "--set", "epochs=2", "--output", str(resumed)], one_cache, processes=2)
    out = larb([*train, "--set", "epochs=3", "--output", str(resumed)], one_cache, processes=2)
    assert "resuming" in out and "after epoch 2" in out
    log_a, head_a = _run(straight)
    log_b, head_b = _run(resumed)
    assert log_a == log_b and all(torch.equal(head_a[k], head_b[k]) for k in head_a)
    bf16 = larb([*train, "--set", "epochs=1", "--output", str(tmp_path / "bf16")], one_cache, processes=2,
                launcher=["--mixed_precision", "bf16"])
    assert "training on 2 processes (cpu), mixed precision bf16, global batch 32" in bf16
    fixed = larb([*train, "--set", "epochs=1", "--set", "mixed_precision=no", "--output", str(tmp_path / "fp32")],
                 one_cache, processes=2, launcher=["--mixed_precision", "bf16"])
    assert "mixed precision no," in fixed  # an explicit setting wins over the launcher's
