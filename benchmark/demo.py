"""`larb demo`: the whole path on the generated `demo` task, with no download.

It generates the task, rescores the example submissions kept in `submissions/`, adds the live
runs that installed plug-ins offer (entry point group `larb.demo`: a callable that writes
submission folders into a work folder and returns them, e.g. the PaSST-MPNet-tags baseline on
mn04 + MiniLM when those assets are available offline), and prints the board. A live run
replaces the kept submission of the same id, and the demo says whether it reproduced it byte
for byte; without the assets the kept rankings are the no-download fallback.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmark import plugins
from benchmark.board import score_task
from benchmark.errors import LarbError
from benchmark.leaderboard import task_table
from benchmark.submission_folders import Submission, find_submissions, load_submission
from benchmark.tasks import get_task

TASK = "demo"


def _replace_by_live_runs(kept: list[Submission], live: list[Submission]) -> list[Submission]:
    """A live run replaces the kept submission of the same id; say whether it reproduced it."""
    by_id = {s.id: s for s in kept}
    for run in live:
        if run.id in by_id:
            same = run.ranking_path(TASK).read_bytes() == by_id[run.id].ranking_path(TASK).read_bytes()
            print(f"{run.id}: the live run {'reproduces' if same else 'differs from'} the ranking kept in "
                  f"{by_id[run.id].folder}")
        by_id[run.id] = run
    return list(by_id.values())


def run(submissions_root: Path) -> int:
    start = time.perf_counter()
    task = get_task(TASK)
    print(f"demo task: {task.ground_truth.n_queries} captions, {len(task.ground_truth.corpus)} generated clips "
          f"in {task.audio_dir}")
    if not Path(submissions_root).is_dir():
        print(f"(no {submissions_root}/ folder here: the kept example submissions are left out; "
              "run from the repository root to include them)")
    submissions = [s for s in find_submissions(submissions_root) if TASK in s.metadata["rankings"]]
    with tempfile.TemporaryDirectory(prefix="larb-demo-") as work:
        for step in plugins.declared("larb.demo"):
            try:
                make_submissions = step.load()
            except ImportError as exc:
                print(f"({step.name}: skipped, {exc.name} is not installed)")
                continue
            try:
                live = [load_submission(folder) for folder in make_submissions(Path(work))]
            except LarbError as exc:
                print(f"({step.name}: skipped, {exc})")
                continue
            submissions = _replace_by_live_runs(submissions, live)
        rows, unscored = score_task(TASK, submissions)
        print()
        print(task_table(TASK, rows))
        for entry in unscored:
            print(f"not scored: {entry.submission_id}: {entry.reason}")
    print(f"\n{len(rows)} systems scored in {time.perf_counter() - start:.1f} s.")
    return 0
