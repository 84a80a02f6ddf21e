"""The ground truth of a harness task, computed from a built split.

The constructors are the harness's own (`benchmark.groundtruth`), fed the rows in the
order of the official CSV, so a user's build hashes to the task registry's pinned sha256.
"""

from __future__ import annotations

import datasets

from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth, audiocaps_t2a, captions_a2t, captions_t2a
from benchmark.tasks import TASKS


def buildable_tasks() -> list[str]:
    """The registered tasks that a built split reproduces (each declares its `built_from`)."""
    return [task_id for task_id, spec in TASKS.items() if spec.built_from is not None]


def task_source(task_id: str) -> tuple[str, str, str]:
    """(dataset builder, split, constructor kind) of a buildable task."""
    spec = TASKS.get(task_id)
    if spec is None or spec.built_from is None:
        raise LarbError(f"no built split feeds task {task_id!r}.", fix=f"choose one of {', '.join(buildable_tasks())}.")
    dataset, split = spec.built_from
    kind = "a2t" if spec.direction == "a2t" else "audiocaps" if dataset == "audiocaps" else "t2a"
    return dataset, split, kind


def task_ground_truth(split: datasets.Dataset, task_id: str) -> GroundTruth:
    """Ground truth of `task_id` from a built split (all its rows, available audio or not)."""
    dataset, split_name, kind = task_source(task_id)
    columns = split.column_names
    names = set(split.unique("dataset")) if "dataset" in columns else set()
    splits = set(split.unique("split")) if "split" in columns else set()
    if names != {dataset} or splits != {split_name}:
        raise LarbError(f"task {task_id} needs the {split_name} split of {dataset}, not "
                        f"{sorted(names)}/{sorted(splits)}.",
                        fix=f"build it with: larb data build {dataset} --split {split_name}")
    if kind == "audiocaps":
        if "version" in columns and set(split.unique("version")) != {"1"}:
            raise LarbError(f"task {task_id} is defined on AudioCaps v1.",
                            fix="build with --option version=1.")
        table = split.select_columns(["audiocap_ids", "youtube_id", "start_time", "captions", "csv_lines"])
        rows = []
        for record in table:
            for qid, caption, line in zip(record["audiocap_ids"], record["captions"], record["csv_lines"], strict=True):
                rows.append((line, (qid, record["youtube_id"], record["start_time"], caption)))
        return audiocaps_t2a(row for _, row in sorted(rows))
    table = split.select_columns(["file_name", "captions"])
    rows = [(record["file_name"], record["captions"]) for record in table]
    return captions_t2a(rows) if kind == "t2a" else captions_a2t(rows)
