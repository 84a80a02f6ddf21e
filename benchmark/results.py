"""Result records: what `larb evaluate` writes, validated against a published JSON Schema."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jsonschema
import numpy as np

from benchmark import __version__, jsonschemas
from benchmark.atomic import atomic_write_text
from benchmark.rankings import Ranking
from benchmark.scoring import Scores
from benchmark.tasks import Task


def result_schema() -> dict:
    return jsonschemas.load("result.schema.json")


@cache
def git_commit() -> str | None:
    """The harness checkout's commit, or None when not run from a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_record(task: Task, submission_id: str, ranking: Ranking, scores: Scores) -> dict:
    """The result record of one ranking scored on one task."""
    gt = task.ground_truth
    hashes = gt.hashes()
    record = {
        "schema_version": 1,
        "task": {"id": task.id, "version": task.version, "direction": gt.direction, "relevance": gt.kind,
                 "ground_truth_sha256": hashes["ground_truth"], "queries_sha256": hashes["queries"],
                 "corpus_sha256": hashes["corpus"], "relevance_sha256": hashes["relevance"]},
        "submission": {"id": submission_id, "file": ranking.path.name, "sha256": ranking.sha256},
        "metrics": scores.means,
        "confidence_intervals": {name: list(interval) for name, interval in scores.intervals.items()},
        "confidence_method": "jackknife-95",
        "n_queries": gt.n_queries,
        "per_query": {"query_id": list(gt.query_ids),
                      **{name: np.round(values, 10).tolist() for name, values in scores.per_query.items()}},
        "harness": {"version": __version__, "git_commit": git_commit()},
        "environment": {"python": platform.python_version(), "numpy": np.__version__},
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    jsonschema.validate(record, result_schema())
    return record


def write_record(record: dict, path: Path) -> Path:
    """Write a record atomically (a reader never sees half a file)."""
    return atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
