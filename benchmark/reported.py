"""Figures the baselines' papers reported (`data/reported.yaml`), and which runs here reproduce them.

A reported entry may say which registered baseline configuration it is (`reproduce`: one member
per model, each a baseline name and the settings that must hold, plus the ensemble method when
there are several) and, with `reproduce_training`, the exact training data (pre-training and
selection splits included). A submission written by `larb baseline run|ensemble` declares the
same (`baselines` and `training_data` in its metadata), so the leaderboard can put the best
reproduced run beside the published figure without anyone copying numbers by hand. Without
`reproduce_training` the training data is not matched: it is in the run's rescored row.

Figures on a test set whose ground truth is not public (the DCASE 2022 challenge evaluation set)
belong to a reported-only task (`REPORTED_ONLY_TASKS`): shown on the board, never mixed with a
registered task and never rescored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from benchmark.tasks import TASKS

METRICS = ("mAP@16", "mAP@10", "R@1", "R@5", "R@10", "R@50", "nDCG@10")
# embedding-space figures a paper reported beside its retrieval figures (Tourbabin and Ben-Hur's
# uniformity: sigma and h per modality and of the reference sets they drew beside each row;
# `benchmark.embedding_space` computes them for runs here)
DIAGNOSTICS = ("sigma text", "sigma audio", "sigma uniform", "sigma Gaussians", "h text", "h audio", "h uniform",
               "h Gaussians")
_ENTRY_KEYS = {"system", "source", "training_data", "metrics", "reproduce", "ensemble_method", "note", "parameters",
               "diagnostics", "reproduce_training"}


@dataclass(frozen=True)
class ReportedOnlyTask:
    """A test set that papers report on but whose ground truth LARB does not have: its figures are
    shown apart, never rescored, never beside a registered task's."""

    id: str
    title: str
    metrics: tuple[str, ...]
    main_metric: str = "mAP@10"
    version: int = 1
    evaluation_data: tuple[str, ...] = ()


REPORTED_ONLY_TASKS = {task.id: task for task in (
    ReportedOnlyTask(
        id="dcase2022-task6b/challenge-evaluation",
        title="DCASE 2022 Task 6b challenge evaluation set (1,000 audio files, 1,000 captions; not Clotho v2.1 "
              "evaluation): ground truth not public, reported figures only",
        metrics=("mAP@10", "R@1", "R@5", "R@10")),
)}


@dataclass(frozen=True)
class Reported:
    system: str
    source: str
    training_data: str
    metrics: dict[str, float]
    members: tuple[dict[str, Any], ...] = ()  # each {"baseline": name, "settings": {key: value}}
    ensemble_method: str | None = None
    note: str = ""  # how to read the figures (a definition, a different test set size, an open split)
    parameters: str = ""  # the parameter count as the paper prints it
    diagnostics: dict[str, float] = field(default_factory=dict)
    # the exact "dataset/split"s a reproducing run declares as training data (pre-training and
    # selection splits included); None: not checked
    reproduce_training: tuple[str, ...] | None = None

    def reproduced_by(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a submission's declared baselines are this configuration (members in any order)."""
        declared = metadata.get("baselines") or []
        if not self.members or len(declared) != len(self.members):
            return False
        trained_on = {f"{d['dataset']}/{d['split']}" for d in metadata.get("training_data") or []}
        if self.reproduce_training is not None and trained_on != set(self.reproduce_training):
            return False
        if len(declared) > 1 and metadata.get("ensemble_method") != self.ensemble_method:
            return False
        return _assign(list(self.members), list(declared))


def _fits(wanted: Mapping[str, Any], member: Mapping[str, Any]) -> bool:
    settings = member.get("settings", {})
    return member.get("name") == wanted["baseline"] and all(
        key in settings and settings[key] == value for key, value in wanted.get("settings", {}).items())


def _assign(wanted: list[dict[str, Any]], declared: list[Mapping[str, Any]]) -> bool:
    """A one-to-one pairing of wanted and declared members (a handful at most, so plain backtracking)."""
    if not wanted:
        return True
    first, rest = wanted[0], wanted[1:]
    return any(_fits(first, member) and _assign(rest, declared[:i] + declared[i + 1:])
               for i, member in enumerate(declared))


def _entry(task_id: str, raw: Mapping[str, Any]) -> Reported:
    where = f"reported.yaml, {task_id}, {raw.get('system', '?')!r}"
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
    metrics = raw.get("metrics") or {}
    if set(metrics) - set(METRICS) or not all(isinstance(v, float | int) and 0 <= v <= 1 for v in metrics.values()):
        raise ValueError(f"{where}: metrics must be among {METRICS}, each in [0, 1]")
    members = tuple(raw.get("reproduce") or ())
    if any(set(m) - {"baseline", "settings"} or "baseline" not in m for m in members):
        raise ValueError(f"{where}: each reproduce member is {{baseline: NAME, settings: {{...}}}}")
    if len(members) > 1 and raw.get("ensemble_method") not in ("score-mean", "embedding-mean"):
        raise ValueError(f"{where}: an ensemble needs ensemble_method score-mean or embedding-mean")
    diagnostics = raw.get("diagnostics") or {}
    if set(diagnostics) - set(DIAGNOSTICS) or not all(isinstance(v, float | int) for v in diagnostics.values()):
        raise ValueError(f"{where}: diagnostics must be among {DIAGNOSTICS}, each a number")
    if not metrics and not diagnostics:
        raise ValueError(f"{where}: an entry needs metrics or diagnostics (enter only figures read in the source)")
    reproduce_training = raw.get("reproduce_training")
    if reproduce_training is not None and (not isinstance(reproduce_training, list) or not all(
            isinstance(t, str) and "/" in t for t in reproduce_training)):
        raise ValueError(f"{where}: reproduce_training is a list of dataset/split")
    return Reported(raw["system"], raw["source"], raw["training_data"], dict(metrics), members,
                    raw.get("ensemble_method"), str(raw.get("note", "")), str(raw.get("parameters", "")),
                    dict(diagnostics), None if reproduce_training is None else tuple(reproduce_training))


def load_reported(text: str | None = None) -> dict[str, list[Reported]]:
    """task id -> its reported entries, in file order (the packaged file unless `text` is given).
    Each task id is a registered task or a reported-only one."""
    if text is None:
        text = resources.files("benchmark").joinpath("data", "reported.yaml").read_text("utf-8")
    loaded = yaml.safe_load(text)
    unknown = [t for t in loaded if t not in TASKS and t not in REPORTED_ONLY_TASKS]
    if unknown:
        raise ValueError(f"reported.yaml: {unknown} are neither registered tasks nor in REPORTED_ONLY_TASKS")
    return {task_id: [_entry(task_id, raw) for raw in entries] for task_id, entries in loaded.items()}

