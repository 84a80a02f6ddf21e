"""Rankings from one or several trained baselines, written as submissions (text-to-audio and audio-to-text).

An ensemble combines any registered models (different baselines, losses, seeds), each given by
its checkpoint (which names its baseline and configuration) or, for a zero-shot system, by
name. Two ways, declared in the submission's metadata (`ensemble: true`, `ensemble_method`,
`members`):

- `score-mean` (default): the mean of the members' cosine similarities. Computed exactly by
  searching the concatenation of the members' embeddings (`retrieval.ensemble_embeddings`).
- `embedding-mean`: the mean of the members' (l2-normalised) embeddings, re-normalised, then
  cosine similarity -- what Park et al.'s `pickle_ensemble.py` did. Needs members of one dimension.

Audio-to-text tasks (e.g. `clotho-v2.1/evaluation-a2t`) are ranked through a text-to-audio view
of the same files and captions: every member embeds the task's audio and its captions, and
each audio file gets its 10 most similar captions.

Command: `larb baseline ensemble CHECKPOINT_OR_NAME ... --task TASK --output submissions/ID [--method M]`
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines import checkpoint
from baselines.config import apply_overrides, resolve_device
from baselines.retrieval import ensemble_embeddings, search
from baselines.spec import BaselineSpec, System
from baselines.submission_writer import SubmissionInfo, check_submission_id, write_submission
from baselines.training import embed
from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth
from benchmark.metrics import K
from benchmark.tasks import Task, get_task

METHODS = ("score-mean", "embedding-mean")


@dataclass(frozen=True)
class Member:
    """One model: a trained checkpoint (its baseline is read from it), or a zero-shot baseline."""

    checkpoint: Path | None = None
    baseline: BaselineSpec | str | None = None
    overrides: tuple[str, ...] = ()


@dataclass
class LoadedMember:
    spec: BaselineSpec
    system: System
    info: dict[str, Any]


def _spec(name_or_spec: BaselineSpec | str) -> BaselineSpec:
    """A spec, or a registered baseline's name."""
    if isinstance(name_or_spec, BaselineSpec):
        return name_or_spec
    from baselines.registry import get_baseline

    return get_baseline(name_or_spec)


def load_member(member: Member, overrides: Sequence[str] = (), progress: bool = True) -> LoadedMember:
    """Build the member's system and load its trained weights; `overrides` may change how it runs
    (device, batch sizes), never what it is (its model keys)."""
    settings = [*overrides, *member.overrides]
    if member.checkpoint is None:
        if member.baseline is None:
            raise LarbError("an ensemble member needs a checkpoint or a baseline name.", fix="pass a best.pt.")
        spec = _spec(member.baseline)
        config = apply_overrides(spec.defaults, settings)
        if spec.parameter_counts(config).trainable:
            raise LarbError(f"{spec.name} has a trainable part in this configuration and no checkpoint was given.",
                            fix=f"train one ('larb baseline train {spec.name} ...') and pass its best.pt.")
        system = spec.build(config, resolve_device(config), progress)
        return LoadedMember(spec, system, {"source": f"{spec.name} (zero-shot)", "training_data": []})
    path = Path(member.checkpoint)
    payload = checkpoint.load(path)
    spec = _spec(member.baseline if member.baseline is not None else payload["baseline"])
    if spec.name != payload["baseline"]:
        raise LarbError(f"this checkpoint is of baseline {payload['baseline']!r}, not {spec.name!r}.", path=path,
                        fix="drop the baseline name, or pass a checkpoint of that baseline.")
    saved = payload["config"]
    config = apply_overrides({**spec.defaults, **saved}, settings)
    changed = [k for k in spec.model_keys if config[k] != saved.get(k, spec.defaults[k])]
    if changed:
        raise LarbError(f"--set {changed[0]}={config[changed[0]]} contradicts the checkpoint.", path=path,
                        fix="drop that --set, or train a checkpoint with it.")
    system = spec.build(config, resolve_device(config), progress)
    system.head.load_state_dict(payload["head"])
    info = {"source": str(path), "training_data": payload["training_data"], "epoch": payload.get("epoch"),
            "validation": payload.get("validation", {})}
    return LoadedMember(spec, system, info)


def t2a_view(task: Task) -> tuple[Task, GroundTruth]:
    """A text-to-audio view of an audio-to-text task: its captions as queries over its audio files."""
    gt = task.ground_truth
    if gt.direction == "t2a":
        return task, gt
    files_of: dict[str, dict[str, int]] = {}
    for name in gt.query_ids:
        for caption, grade in gt.relevance[name].items():
            if grade > 0:
                files_of.setdefault(caption, {})[name] = 1
    ids = tuple(f"caption-{i}" for i in range(len(gt.corpus)))
    view = GroundTruth("t2a", ids, tuple(gt.corpus), tuple(gt.query_ids),
                       {qid: files_of[text] for qid, text in zip(ids, gt.corpus)}, "multi")
    return dataclasses.replace(task, ground_truth=view), view


def member_embeddings(member: LoadedMember, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """(query embeddings, candidate embeddings) of `task` in its own direction, l2-normalised rows."""
    view_task, _ = t2a_view(task)
    features = member.system.task_features(view_task)
    captions, audio = embed(member.system.head, features, resolve_device(member.system.config))
    return (captions, audio) if task.ground_truth.direction == "t2a" else (audio, captions)


def combine(embeddings: Sequence[tuple[np.ndarray, np.ndarray]], method: str) -> tuple[np.ndarray, np.ndarray]:
    """One (queries, candidates) pair whose inner products implement `method`."""
    if method not in METHODS:
        raise LarbError(f"unknown ensemble method {method!r}.", fix=f"use one of {', '.join(METHODS)}.")
    if len(embeddings) == 1:
        return embeddings[0]
    if method == "score-mean":
        return ensemble_embeddings(embeddings)
    dims = sorted({q.shape[1] for q, _ in embeddings})
    if len(dims) > 1:
        raise LarbError(f"embedding-mean needs members of one embedding size; these have {dims}.",
                        fix="use --method score-mean, which combines any members.")

    def mean(arrays: list[np.ndarray]) -> np.ndarray:
        stacked = np.mean(np.stack([np.asarray(a, np.float32) for a in arrays]), axis=0)
        return stacked / np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)

    return mean([q for q, _ in embeddings]), mean([c for _, c in embeddings])


def rank(members: Sequence[LoadedMember], task: Task, method: str = "score-mean") -> np.ndarray:
    """Top-K candidate indices (queries x K) of `task` by the combined members."""
    queries, candidates = combine([member_embeddings(m, task) for m in members], method)
    _, indices = search(torch.from_numpy(queries), torch.from_numpy(candidates), K,
                        members[0].system.config.get("retrieval", "chunked"))
    return indices


def _info(members: Sequence[LoadedMember], method: str) -> SubmissionInfo:
    frozen: dict[str, int] = {}
    trainable = 0
    for m in members:
        counts = m.spec.parameter_counts(m.system.config)
        frozen.update(counts.frozen)  # pretrained parts shared by members are counted once
        trainable += counts.trainable
    names = [m.spec.system_name(m.system.config) for m in members]
    parts = []
    for name, m in zip(names, members):
        if not m.info["training_data"]:
            parts.append(f"{name}: no training; frozen encoders only.")
            continue
        trained_on = ", ".join(f"{d['dataset']}/{d['split']}" for d in m.info["training_data"])
        selected = m.info.get("validation", {}).get("val_mAP@10")
        parts.append(f"{name}: trained on {trained_on}" + (f", epoch {m.info['epoch']} selected by validation "
                                                           f"mAP@10 {selected:.4f}." if selected is not None else "."))
    if len(members) > 1:
        how = "mean of similarities" if method == "score-mean" else "mean of l2-normalised embeddings"
        parts.insert(0, f"Ensemble ({method}: {how}) of {len(members)} models.")
        unique = list(dict.fromkeys(names))
        system = f"Ensemble of {len(members)} x {unique[0]}" if len(unique) == 1 else "Ensemble: " + " + ".join(unique)
    else:
        system = names[0]
    papers = list(dict.fromkeys(m.spec.paper for m in members))
    links = members[0].spec.links if len({m.spec.name for m in members}) == 1 else {}
    return SubmissionInfo(system=system, description=" ".join(papers) + ". " + " ".join(parts), links=links,
                          total_parameters=sum(frozen.values()) + trainable, trainable_parameters=trainable,
                          training_data=[d for m in members for d in m.info["training_data"]],
                          members=[m.info["source"] for m in members],
                          baselines=tuple({"name": m.spec.name, "settings": {k: m.system.config[k]
                                                                             for k in m.spec.model_keys}}
                                          for m in members))


def run_models(members: Sequence[Member], task_name: str | Path | Task, output: Path, method: str = "score-mean",
               overrides: Sequence[str] = (), progress: bool = True) -> Path:
    """Rank a task (id, folder or `Task`) with one model or an ensemble; write `output` as a submission."""
    if not members:
        raise LarbError("no model given.", fix="pass at least one checkpoint.")
    if method not in METHODS:
        raise LarbError(f"unknown ensemble method {method!r}.", fix=f"use one of {', '.join(METHODS)}.")
    check_submission_id(output)
    task = task_name if isinstance(task_name, Task) else get_task(str(task_name))
    n_candidates = len(task.ground_truth.corpus)
    if n_candidates < K:
        raise LarbError(f"task {task.id} has {n_candidates} candidates; a ranking needs {K}.",
                        fix=f"use a task with at least {K} candidates.")
    loaded = [load_member(m, overrides, progress) for m in members]
    indices = rank(loaded, task, method)
    return write_submission(output, task, indices, _info(loaded, method), method)


# -- command line -----------------------------------------------------------------------------

def members_from_arguments(arguments: Sequence[str]) -> list[Member]:
    """`larb baseline ensemble` arguments: checkpoints (best.pt) or zero-shot baseline names."""
    return [Member(checkpoint=Path(a)) if Path(a).suffix == ".pt" or Path(a).exists() else Member(baseline=a)
            for a in arguments]
