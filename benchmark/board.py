"""The leaderboard's data: every submission rescored on every task it ranks, and what could not be.

`leaderboard.md` and the web site (`benchmark.site`) are two renderings of one `Board`, so they
can never disagree. A ranking that cannot be scored on the board (a folder task, an unknown task
id, a file the validator refuses) is kept as an `Unscored` entry with its reason, never dropped:
both renderings list it and `larb leaderboard --check` fails on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.contamination import Overlap, overlap
from benchmark.embedding_space import hubness
from benchmark.errors import LarbError
from benchmark.evaluation import Evaluation, evaluate
from benchmark.reported import REPORTED_ONLY_TASKS, Reported, ReportedOnlyTask, load_reported
from benchmark.results import HUBNESS_K
from benchmark.scoring import Scores
from benchmark.submission_folders import Submission, find_submissions
from benchmark.tasks import TASKS, Task, TaskSpec, get_task


@dataclass(frozen=True)
class Row:
    """One submission scored on one task."""

    submission: Submission
    evaluation: Evaluation
    hubness: dict
    # the task's audio that the declared training data holds, by source id (None: not auditable)
    overlap: Overlap | None = None

    @property
    def scores(self) -> Scores:
        return self.evaluation.scores


@dataclass(frozen=True)
class Unscored:
    """A ranking a submission declares that the board could not score, and why."""

    submission_id: str
    task_id: str
    reason: str


@dataclass(frozen=True)
class TaskBoard:
    """A task's rows, best first, and the figures its papers reported."""

    spec: TaskSpec | ReportedOnlyTask
    task: Task | None  # None when only reported figures exist for it
    rows: list[Row]
    reported: list[Reported]

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class Board:
    submissions: list[Submission]
    tasks: list[TaskBoard]
    unscored: list[Unscored]

    def task(self, task_id: str) -> TaskBoard:
        """The board of one task (registered or reported-only)."""
        return next(board for board in self.tasks if board.id == task_id)

    def rows_of(self, submission_id: str) -> list[tuple[TaskBoard, Row]]:
        """Every task row of one submission, in board order."""
        return [(board, row) for board in self.tasks for row in board.rows if row.submission.id == submission_id]


NOT_REGISTERED = ("not a registered task: the board scores registered tasks only (see 'larb tasks'); score a "
                  "folder task with 'larb evaluate'.")


def board_order(row: Row, main: str) -> tuple[float, str]:
    """Where a row stands on its task's board: best main metric first, ties by submission id."""
    return -row.scores.means[main], row.submission.id


def _score(task: Task, submission: Submission) -> Row:
    result = evaluate(submission.folder, task)
    training_data = submission.metadata["training_data"]
    return Row(submission, result, hubness(result.ranking.indices, len(task.corpus), min(HUBNESS_K, task.spec.depth)),
               overlap(task, training_data) if training_data else None)


def score_task(task_id: str, submissions: list[Submission]) -> tuple[list[Row], list[Unscored]]:
    """Rescore every submission that ranks `task_id` (by `benchmark.evaluation`, the path `larb
    evaluate` takes): rows best first (ties by id), and the rankings that could not be scored."""
    ranking = [s for s in submissions if task_id in s.metadata["rankings"]]
    try:
        task = get_task(task_id)
    except LarbError as exc:
        return [], [Unscored(s.id, task_id, f"the task cannot be loaded: {exc}") for s in ranking]
    rows, unscored = [], []
    for sub in ranking:
        try:
            rows.append(_score(task, sub))
        except LarbError as exc:
            unscored.append(Unscored(sub.id, task_id, str(exc)))
    main = task.spec.main_metric
    return sorted(rows, key=lambda r: board_order(r, main)), unscored


def build_board(submissions_root: str | Path) -> Board:
    """Score every submission under `submissions_root` on every registered task it ranks."""
    submissions = find_submissions(submissions_root)
    reported = load_reported()
    ranked = {t for s in submissions for t in s.metadata["rankings"]}
    unscored = [Unscored(s.id, t, NOT_REGISTERED) for s in submissions for t in s.metadata["rankings"]
                if t not in TASKS]
    tasks = []
    for task_id, spec in TASKS.items():
        if task_id not in ranked and task_id not in reported:
            continue
        rows: list[Row] = []
        task = None
        if task_id in ranked:
            rows, failed = score_task(task_id, submissions)
            unscored += failed
            task = rows[0].evaluation.task if rows else None
        tasks.append(TaskBoard(spec, task, rows, reported.get(task_id, [])))
    tasks += [TaskBoard(spec, None, [], reported[task_id]) for task_id, spec in REPORTED_ONLY_TASKS.items()
              if task_id in reported]
    return Board(submissions, tasks, sorted(unscored, key=lambda u: (u.submission_id, u.task_id)))
