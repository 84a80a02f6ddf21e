"""Score anything against a task: the one path that `larb evaluate` and `benchmark.evaluate` share.

    from benchmark import get_task, evaluate
    task = get_task("clotho-v2.1/evaluation")
    result = evaluate(similarity, task)      # queries x corpus, in task.query_ids x task.corpus order
    result.metrics["mAP@10"], result.intervals["mAP@10"], result.per_query["mAP@10"]
    result.save("results/my-system/clotho.json")

What can be scored is listed in `benchmark.array_rankings` (arrays, similarity matrices, data frames)
and `benchmark.rankings` (CSV files); a submission folder is scored on its ranking for the task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.array_rankings import ranking_from_array, ranking_from_frame
from benchmark.errors import LarbError
from benchmark.rankings import Ranking, read_ranking
from benchmark.results import build_record, write_record
from benchmark.scoring import Scores, score
from benchmark.tasks import TASKS, Task, get_task


@dataclass(frozen=True)
class Evaluation:
    """One ranking scored on one task: means, 95 % intervals, per-query scores and the result record."""

    task: Task
    submission_id: str
    ranking: Ranking
    scores: Scores = field(repr=False)

    @property
    def metrics(self) -> dict[str, float]:
        return self.scores.means

    @property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """The 95 % jackknife interval of each metric, within the metric's range [0, 1]."""
        return self.scores.intervals

    @property
    def per_query(self) -> dict[str, np.ndarray]:
        """Each metric per query, in the order of `query_ids`."""
        return self.scores.per_query

    @property
    def query_ids(self) -> tuple[str, ...]:
        return self.task.ground_truth.query_ids

    @cached_property
    def _record(self) -> dict:
        return build_record(self.task, self.submission_id, self.ranking, self.scores)

    def record(self) -> dict:
        """The result record, exactly as `larb evaluate` writes it (schema-valid)."""
        return self._record

    def save(self, path: str | Path) -> Path:
        """Write the result record atomically."""
        return write_record(self._record, Path(path))


def _safe_id(stem: str) -> str:
    """A bare CSV's name as a folder name under results/ (a file named '...csv' must stay inside)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip(".")
    return cleaned or "ranking"


def ranking_source(target: str | Path, task_id: str) -> tuple[str, Path]:
    """(submission id, CSV path) for a submission folder or a bare CSV."""
    from benchmark.submission_folders import load_submission

    path = Path(target)
    if path.is_dir():
        submission = load_submission(path)
        if task_id not in submission.metadata["rankings"]:
            raise LarbError(f"the submission has no ranking for task {task_id}.", path=path / "metadata.yaml",
                            fix=f"add it under 'rankings', or choose one of {sorted(submission.metadata['rankings'])}.")
        return submission.id, submission.ranking_path(task_id)
    return _safe_id(path.stem), path


def _resolved(submission: Any, task: Task | str | Path) -> tuple[Task, str | None, Any]:
    """The task, and for a file or folder its (submission id, CSV path); the submission is checked
    first, so a missing task asset cannot hide a typo in the submission."""
    if isinstance(task, Task):
        if isinstance(submission, (str, Path)):
            return task, *ranking_source(submission, task.id)
        return task, None, submission
    if isinstance(submission, (str, Path)):
        if str(task) in TASKS:
            submission_id, path = ranking_source(submission, str(task))
            return get_task(str(task)), submission_id, path
        loaded = get_task(task)
        return loaded, *ranking_source(submission, loaded.id)
    return get_task(task), None, submission


def evaluate(submission: Any, task: Task | str | Path, *, submission_id: str | None = None) -> Evaluation:
    """Score `submission` on `task` (a task id, a task folder, or a `Task` from `get_task`).

    `submission` is a ranking CSV or submission folder (path), a top-k array of corpus indices or
    names, a similarity matrix (queries x corpus), or a labelled data frame of scores. Raises
    `LarbError` (the same one-line errors as the CLI) for anything that does not fit the task.
    """
    loaded, found_id, source = _resolved(submission, task)
    gt = loaded.ground_truth
    if found_id is not None:
        ranking = read_ranking(source, gt)
    elif hasattr(source, "columns") and hasattr(source, "index") and hasattr(source, "to_numpy"):
        ranking = ranking_from_frame(source, gt)
    else:
        ranking = ranking_from_array(source, gt)
    name = submission_id or found_id or "python"
    return Evaluation(loaded, name, ranking, score(ranking, gt))
