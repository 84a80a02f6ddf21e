"""`run.json` in a training run's folder: exactly what the run started from.

The checkpoint keeps the configuration and the declared training data, which only *name* the
inputs. This record pins them: the ground-truth sha256 of every training and validation task,
the sha256 of every weights file or model folder given by path (the `*_checkpoint` settings;
LAION-CLAP, PaSST stride 16 and RoBERTa have no checksum pinned here, so a run that used them
is auditable only this way), the checksums of the registered assets it loads, and the library
versions. A resumed run must start from the same inputs.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from baselines.embedding_cache import file_sha256
from baselines.spec import BaselineSpec
from benchmark import assets
from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError
from benchmark.tasks import Task

RECORD = "run.json"


def weights_file_digests(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """setting -> {path, sha256} (a file) or {path, files: {name: sha256}} (a model folder)."""
    digests: dict[str, dict[str, Any]] = {}
    for key, value in sorted(config.items()):
        if not key.endswith("_checkpoint") or not isinstance(value, str) or value in ("", "none"):
            continue
        path = Path(value).expanduser()
        if path.is_file():
            digests[key] = {"path": str(path.resolve()), "sha256": file_sha256(path)}
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            digests[key] = {"path": str(path.resolve()), "files": {p.name: file_sha256(p) for p in files}}
    return digests


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("larb", "torch", "transformers", "accelerate"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def run_inputs(spec: BaselineSpec, config: Mapping[str, Any], train_tasks: Sequence[Task],
               val_task: Task | None, init_from: Path | None = None) -> dict[str, Any]:
    """Everything a resumed run must share with the run it continues (with `--init-from`, the
    checkpoint it started from)."""
    def task(t: Task) -> dict[str, str]:
        return {"id": t.id, "ground_truth_sha256": t.ground_truth.sha256}

    return {
        "baseline": spec.name,
        "train_tasks": [task(t) for t in train_tasks],
        "val_task": task(val_task) if val_task is not None else None,
        "weights_files": weights_file_digests(config),
        "assets": {name: assets.get(name).checksum for name in spec.required_assets(config)},
    } | ({"init_from": {"path": str(init_from), "sha256": file_sha256(init_from)}} if init_from is not None else {})


def write_run_record(folder: Path, spec: BaselineSpec, config: Mapping[str, Any], train_tasks: Sequence[Task],
                     val_task: Task | None, init_from: Path | None = None) -> Path:
    """Write `folder/run.json`; refuse a folder whose run started from other inputs."""
    inputs = run_inputs(spec, config, train_tasks, val_task, init_from)
    path = folder / RECORD
    if path.exists():
        before = json.loads(path.read_text("utf-8")).get("inputs")
        if before != inputs:
            changed = sorted(k for k in inputs if before is None or before.get(k) != inputs[k])
            raise LarbError(f"this folder holds a run that started from other inputs ({', '.join(changed)}).",
                            path=folder, fix="pass a new --output folder, or the same tasks and weights to resume.")
        return path
    record = {"inputs": inputs, "config": dict(config), "versions": _versions()}
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
