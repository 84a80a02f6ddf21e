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

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import matrix_files
from benchmark.array_rankings import ranking_from_array, ranking_from_frame
from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth
from benchmark.rankings import Ranking, read_ranking
from benchmark.results import build_record, write_record
from benchmark.scoring import Scores, score
from benchmark.submission_folders import load_submission
from benchmark.tasks import TASKS, Task, get_task


@dataclass(frozen=True)
class Evaluation:
    """One ranking scored on one task: means, 95 % intervals, per-query scores and the result record."""

    task: Task
    submission_id: str
    ranking: Ranking
    scores: Scores = field(repr=False)
    subset: dict[str, Any] | None = None  # {"of": task id, "queries": n, "of_queries": N} for a subset

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
        return build_record(self.task, self.submission_id, self.ranking, self.scores, self.subset)

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
    path = Path(target)
    if path.is_dir():
        submission = load_submission(path)
        if task_id not in submission.metadata["rankings"]:
            raise LarbError(f"the submission has no ranking for task {task_id}.", path=path / "metadata.yaml",
                            fix=f"add it under 'rankings', or choose one of {sorted(submission.metadata['rankings'])}.")
        return submission.id, submission.ranking_path(task_id)
    return _safe_id(path.stem), path


def _source_task(submission: Any, task: Task | str | Path) -> tuple[Task, str | None, Any]:
    """The task, and for a file or folder its (submission id, file path); the submission is checked
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


def _is_frame(source: Any) -> bool:
    return hasattr(source, "columns") and hasattr(source, "index") and hasattr(source, "to_numpy")


def _ranking(source: Any, from_file: bool, task: Task) -> Ranking:
    """`source` validated against `task` and ranked to its depth (a file: a top-k CSV or a matrix)."""
    gt, depth = task.ground_truth, task.spec.depth
    if from_file:
        if matrix_files.is_matrix(Path(source), gt):
            return matrix_files.read_matrix(source, gt, depth)
        return read_ranking(source, gt, depth)
    if _is_frame(source):
        return ranking_from_frame(source, gt, depth)
    return ranking_from_array(source, gt, depth)


def _subset_hint(task: Task, exc: LarbError) -> LarbError:
    parent = task.spec.subset_of
    return LarbError(f"{exc.detail} Task {task.id} scores {task.ground_truth.n_queries} of the queries of "
                     f"{parent}: to score a ranking of {parent} on it, ask for the subset (--subset; subset=True "
                     "in Python).", path=exc.path, line=exc.line,
                     fix="see the README, 'Protocols'.")


def evaluate(submission: Any, task: Task | str | Path, *, submission_id: str | None = None,
             subset: bool = False) -> Evaluation:
    """Score `submission` on `task` (a task id, a task folder, or a `Task` from `get_task`).

    `submission` is a ranking CSV, a similarity-matrix CSV or a submission folder (path), a top-k
    array of corpus indices or names, a similarity matrix (queries x corpus), or a labelled data
    frame of scores. With `subset=True`, `task` is a subset task (`clotho-v2.1/evaluation-multi`,
    `-graded`) and `submission` ranks the task it is a subset of; the record says so. Raises
    `LarbError` (the same one-line errors as the CLI) for anything that does not fit the task.
    """
    if subset:
        return _evaluate_subset(submission, task, submission_id)
    loaded, found_id, source = _source_task(submission, task)
    try:
        ranking = _ranking(source, found_id is not None, loaded)
    except LarbError as exc:
        if loaded.spec.subset_of and ("not a query of this task" in exc.detail or "shape" in exc.detail):
            raise _subset_hint(loaded, exc) from None
        raise
    name = submission_id or found_id or "python"
    return Evaluation(loaded, name, ranking, score(ranking, loaded.ground_truth, loaded.spec.metrics))


def _evaluate_subset(submission: Any, task: Task | str | Path, submission_id: str | None) -> Evaluation:
    subset_task = task if isinstance(task, Task) else get_task(task)
    parent_id = subset_task.spec.subset_of
    if parent_id is None:
        raise LarbError(f"task {subset_task.id} is not a subset of another task.",
                        fix="drop --subset; see the README, 'Protocols'.")
    parent, found_id, source = _source_task(submission, parent_id)
    deep = dataclasses.replace(parent, spec=dataclasses.replace(parent.spec, depth=subset_task.spec.depth))
    full = _ranking(source, found_id is not None, deep)
    position = {qid: i for i, qid in enumerate(parent.ground_truth.query_ids)}
    rows = np.asarray([position[qid] for qid in subset_task.ground_truth.query_ids])
    if parent.ground_truth.corpus != subset_task.ground_truth.corpus:
        raise ValueError(f"{subset_task.id} and {parent_id} rank different corpora")
    ranking = Ranking(full.indices[rows], full.sha256, full.path)
    info = {"of": parent_id, "queries": len(rows), "of_queries": parent.ground_truth.n_queries}
    gt = subset_task.ground_truth
    return Evaluation(subset_task, submission_id or found_id or "python", ranking,
                      score(ranking, gt, subset_task.spec.metrics), info)


class Protocols(Mapping[str, Evaluation]):
    """One run scored by every protocol of its task: task id -> `Evaluation`, in protocol order;
    `skipped` says, for each protocol not scored, why."""

    def __init__(self, results: dict[str, Evaluation], skipped: dict[str, str]) -> None:
        self._results = results
        self.skipped = skipped

    def __getitem__(self, task_id: str) -> Evaluation:
        return self._results[task_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)


def protocol_tasks(task_id: str) -> list[str]:
    """The task, the tasks that are subsets of it, and its audio-to-text form, in that order."""
    spec = TASKS[task_id]
    subsets = [t for t, other in TASKS.items() if other.subset_of == task_id]
    return [task_id, *subsets, *([spec.transposed] if spec.transposed else [])]


def transposed_scores(scores: np.ndarray, t2a: GroundTruth, a2t: GroundTruth) -> np.ndarray:
    """The audio-to-text score matrix (files x captions) that a text-to-audio one also gives: the
    score of file f for caption c is that of c's (first) query for f."""
    first_query: dict[str, int] = {}
    for q, text in enumerate(t2a.query_texts):
        first_query.setdefault(text, q)
    file_position = {name: i for i, name in enumerate(t2a.corpus)}
    rows = np.asarray([first_query[text] for text in a2t.corpus])
    columns = np.asarray([file_position[name] for name in a2t.query_ids])
    return np.ascontiguousarray(scores[rows][:, columns].T)


def evaluate_protocols(submission: Any, task: str, *, submission_id: str | None = None) -> Protocols:
    """Score one run of `task` by every protocol `protocol_tasks(task)` names: the task itself, its
    subsets (scored from the same ranking or matrix, named in their records) and, when the run is
    a similarity matrix or a folder with an audio-to-text ranking, the audio-to-text task."""
    if task not in TASKS:
        raise LarbError(f"--protocols all needs a registered task, not {task!r}.", fix="see 'larb tasks'.")
    base, found_id, source = _source_task(submission, task)
    folder = Path(submission) if isinstance(submission, (str, Path)) and Path(submission).is_dir() else None
    in_folder = set(load_submission(folder).metadata["rankings"]) if folder is not None else set()
    name = submission_id or found_id or "python"
    scores, digest = None, None  # a similarity matrix, read once for every protocol
    if found_id is not None:
        if matrix_files.is_matrix(Path(source), base.ground_truth):
            scores, digest = matrix_files.read_scores(source, base.ground_truth)
    elif not _is_frame(source) and np.asarray(source).dtype.kind == "f":
        scores = np.asarray(source, dtype=np.float64)
    results: dict[str, Evaluation] = {}
    skipped: dict[str, str] = {}
    for task_id in protocol_tasks(task):
        spec = TASKS[task_id]
        try:
            if task_id in in_folder:
                results[task_id] = evaluate(folder, task_id)
            elif task_id == base.id:
                results[task_id] = evaluate(scores if scores is not None else submission, base, submission_id=name)
            elif spec.subset_of == base.id:
                results[task_id] = evaluate(scores if scores is not None else submission, task_id,
                                            submission_id=name, subset=True)
            elif scores is not None:
                a2t = get_task(task_id)
                results[task_id] = evaluate(transposed_scores(scores, base.ground_truth, a2t.ground_truth), a2t,
                                            submission_id=name)
            else:
                skipped[task_id] = ("a top-k ranking of files cannot rank captions for each file: give a "
                                    "similarity matrix, or a folder with an audio-to-text ranking")
        except LarbError as exc:
            if "candidates per query" not in exc.detail:
                raise
            skipped[task_id] = exc.detail
    if digest is not None:  # records name the matrix file, not the matrix in memory
        results = {t: dataclasses.replace(r, ranking=Ranking(r.ranking.indices, digest, Path(source)))
                   if r.ranking.path.name.startswith("<") else r for t, r in results.items()}
    return Protocols(results, skipped)
