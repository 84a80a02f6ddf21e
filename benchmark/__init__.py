"""LARB harness: tasks, submission validation, metrics, results and the leaderboard.

The public Python API (see "Python API" in the README):

    from benchmark import get_task, evaluate
    task = get_task("demo")             # a task id or a task folder
    result = evaluate(scores, task)     # a CSV, a submission folder, a top-k array, a score matrix
    result.metrics, result.intervals, result.per_query, result.record(), result.save(path)

This package must import without torch: scoring a CSV needs only the core install. The API is
loaded on first use, so `import benchmark.errors` stays light.
"""

from __future__ import annotations

from typing import Any

from benchmark.version import __version__

__all__ = ["Evaluation", "LarbError", "Task", "__version__", "evaluate", "get_task", "task_ids"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "Evaluation"):
        from benchmark import evaluation

        return getattr(evaluation, name)
    if name in ("get_task", "task_ids", "Task"):
        from benchmark import tasks

        return getattr(tasks, name)
    if name == "LarbError":
        from benchmark.errors import LarbError

        return LarbError
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
