"""The two things a baseline does: train a head, and write a submission (one model or an ensemble).

Used by `larb baseline train|run`, by `larb demo` and by the tests, so all three follow one path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from baselines import checkpoint
from baselines.config import apply_overrides, resolve_device
from baselines.registry import get_baseline
from baselines.retrieval import ensemble_embeddings, search
from baselines.spec import BaselineSpec, System
from baselines.submission_writer import SubmissionInfo, check_submission_id, write_submission
from baselines.task_features import declared_training_data, require_text_to_audio
from baselines.training import TrainResult, embed, train
from benchmark.errors import LarbError
from benchmark.metrics import K
from benchmark.tasks import Task, get_task


def default_run_folder(name: str, train_task: Task) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in train_task.id)
    return Path("runs") / f"{name}-{safe}"


def train_baseline(name: str | BaselineSpec, train_task: str | Path, val_task: str | Path | None,
                   output: Path | None, overrides: Sequence[str] = (), progress: bool = True) -> TrainResult:
    """Train on `train_task`, select on `val_task` (or on a held-out share of the training files).

    Heads on cached features go through `training.train`; systems that fine-tune their encoders
    bring their own loop (`system.fit`, see `baselines.finetune`)."""
    spec = name if isinstance(name, BaselineSpec) else get_baseline(name)
    config = apply_overrides(spec.defaults, overrides)
    task = get_task(str(train_task))
    require_text_to_audio(task)
    system = spec.build(config, resolve_device(config), progress)
    features = system.task_features(task)
    training_data = declared_training_data(task)
    if val_task is None:
        train_features, val_features = features.holdout(config["val_fraction"], config["seed"])
    else:
        validation = get_task(str(val_task))
        train_features, val_features = features, system.task_features(validation)
        training_data += declared_training_data(validation)
    folder = Path(output) if output is not None else default_run_folder(spec.name, task)
    fit = getattr(system, "fit", None)
    if fit is not None:
        return fit(spec, train_features, val_features, training_data, folder, progress)
    return train(spec, system, train_features, val_features, training_data, folder, progress)


def _member_config(spec: BaselineSpec, saved: dict[str, Any], overrides: Sequence[str], path: Path) -> dict:
    """The checkpoint's configuration; overrides may change how it runs, not what it is."""
    config = apply_overrides({**spec.defaults, **saved}, overrides)
    changed = [k for k in spec.model_keys if config[k] != saved[k]]
    if changed:
        raise LarbError(f"--set {changed[0]}={config[changed[0]]} contradicts the checkpoint "
                        f"({changed[0]}={saved[changed[0]]!r}).", path=path,
                        fix="drop that --set, or train a checkpoint with it.")
    return config


def _load_members(spec: BaselineSpec, checkpoints: Sequence[Path], overrides: Sequence[str],
                  progress: bool) -> list[tuple[System, dict[str, Any]]]:
    if not checkpoints:
        config = apply_overrides(spec.defaults, overrides)
        if spec.parameter_counts(config).trainable:
            raise LarbError("this configuration has a trainable head and no --checkpoint was given.",
                            fix=f"train one ('larb baseline train {spec.name} ...') and pass --checkpoint, "
                                "or run the zero-shot system with --set lambda=0.")
        return [(spec.build(config, resolve_device(config), progress), {"training_data": [], "source": "zero-shot"})]
    members = []
    for path in checkpoints:
        payload = checkpoint.load(path, spec.name)
        config = _member_config(spec, payload["config"], overrides, Path(path))
        system = spec.build(config, resolve_device(config), progress)
        system.head.load_state_dict(payload["head"])
        members.append((system, {"training_data": payload["training_data"], "source": str(path),
                                 "epoch": payload["epoch"], "validation": payload["validation"]}))
    return members


def _description(spec: BaselineSpec, members: list[tuple[System, dict[str, Any]]]) -> str:
    parts = []
    for system, info in members:
        if info["source"] == "zero-shot":
            parts.append(f"{spec.system_name(system.config)}: no training; frozen encoders only.")
        else:
            trained_on = ", ".join(f"{d['dataset']}/{d['split']}" for d in info["training_data"])
            parts.append(f"{spec.system_name(system.config)}: head trained on {trained_on}, epoch "
                         f"{info['epoch']} selected by validation mAP@10 {info['validation']['val_mAP@10']:.4f}.")
    if len(members) > 1:
        parts.insert(0, f"Score-level ensemble (mean of similarities) of {len(members)} models.")
    return f"{spec.paper}. " + " ".join(parts)


def run_baseline(name: str, task_name: str, checkpoints: Sequence[Path], output: Path,
                 overrides: Sequence[str] = (), progress: bool = True) -> Path:
    """Rank `task_name`'s corpus for each of its queries and write `output` as a submission folder."""
    spec = get_baseline(name)
    check_submission_id(output)
    task = get_task(task_name)
    require_text_to_audio(task)
    if len(task.ground_truth.corpus) < K:
        raise LarbError(f"task {task.id} has {len(task.ground_truth.corpus)} audio files; a ranking needs {K}.",
                        fix=f"use a task with at least {K} audio files.")
    members = _load_members(spec, checkpoints, overrides, progress)
    embeddings = []
    for system, _ in members:
        features = system.task_features(task)
        embeddings.append(embed(system.head, features, resolve_device(system.config)))
    queries, corpus = ensemble_embeddings(embeddings) if len(embeddings) > 1 else embeddings[0]
    _, indices = search(torch.from_numpy(queries), torch.from_numpy(corpus), K, members[0][0].config["retrieval"])
    counts = [spec.parameter_counts(system.config) for system, _ in members]
    frozen = {component: n for c in counts for component, n in c.frozen.items()}
    trainable = sum(c.trainable for c in counts)
    names = list(dict.fromkeys(spec.system_name(system.config) for system, _ in members))
    info = SubmissionInfo(
        system=names[0] if len(members) == 1 else (
            f"Ensemble of {len(members)} x {names[0]}" if len(names) == 1 else "Ensemble: " + " + ".join(names)),
        description=_description(spec, members), links=spec.links,
        total_parameters=sum(frozen.values()) + trainable, trainable_parameters=trainable,
        training_data=[d for _, info in members for d in info["training_data"]],
        members=[info["source"] for _, info in members])
    return write_submission(output, task, indices, info)
