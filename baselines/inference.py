"""Using trained (or zero-shot) models: load them from checkpoints, embed a task, rank it.

Below the models and the training loops: a model that learns from others (distilled PaSST)
loads its teachers here, and the loops validate with `retrieval_scores`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines import checkpoint
from baselines.config import apply_overrides, resolve_device
from baselines.ensemble import combine
from baselines.registry import get_baseline
from baselines.retrieval import search, top_k
from baselines.spec import BaselineSpec, System
from baselines.task_features import TaskFeatures
from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth
from benchmark.metrics import K, per_query_scores
from benchmark.scoring import judgements_for
from benchmark.tasks import Task


@torch.no_grad()
def embed(head: nn.Module, features: TaskFeatures, device: torch.device | str = "cpu",
          batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(query embeddings, corpus embeddings) as float32 arrays, computed in batches."""
    head.to(device).eval()
    queries = [head.embed_text(features.text[i:i + batch].to(device)).float().cpu()
               for i in range(0, len(features.text), batch)]
    corpus = [head.embed_audio(features.audio[i:i + batch].to(device)).float().cpu()
              for i in range(0, len(features.audio), batch)]
    return torch.cat(queries).numpy(), torch.cat(corpus).numpy()


VALIDATION_METRICS = ("mAP@10", "R@1", "R@5", "R@10")


def retrieval_scores(head: nn.Module, features: TaskFeatures, device: torch.device | str = "cpu"
                     ) -> dict[str, float]:
    """mAP@10 and R@1/5/10 of the head's top-10 ranking on `features`, by the harness's definitions."""
    queries, corpus = embed(head, features, device)
    _, ranking = top_k(queries, corpus, K)
    scores = per_query_scores(ranking, judgements_for(features.ground_truth))
    return {name: float(scores[name].mean()) for name in VALIDATION_METRICS}


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
    saved = spec.saved_config(payload["config"])
    config = apply_overrides(spec.defaults.updated(saved, path=path), settings)
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
                       {qid: files_of[text] for qid, text in zip(ids, gt.corpus, strict=True)}, "multi")
    return dataclasses.replace(task, ground_truth=view), view


def member_embeddings(member: LoadedMember, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """(query embeddings, candidate embeddings) of `task` in its own direction, l2-normalised rows."""
    view_task, _ = t2a_view(task)
    features = member.system.task_features(view_task)
    captions, audio = embed(member.system.head, features, resolve_device(member.system.config))
    return (captions, audio) if task.ground_truth.direction == "t2a" else (audio, captions)


def rank(members: Sequence[LoadedMember], task: Task, method: str = "score-mean") -> np.ndarray:
    """The top candidate indices (queries x the task's depth) of `task` by the combined members."""
    queries, candidates = combine([member_embeddings(m, task) for m in members], method)
    _, indices = search(torch.from_numpy(queries), torch.from_numpy(candidates), task.spec.depth,
                        members[0].system.config.get("retrieval", "chunked"))
    return indices
