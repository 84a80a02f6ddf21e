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

from benchmark import jsonschemas
from benchmark.atomic import atomic_write_text
from benchmark.derived_tasks import coverage, full_set_bounds
from benchmark.embedding_space import hubness
from benchmark.rankings import Ranking
from benchmark.scoring import Scores
from benchmark.tasks import Task
from benchmark.version import __version__

HUBNESS_K = 10  # k of the k-occurrence diagnostics in every record


def result_schema() -> dict:
    return jsonschemas.load("result.schema.json")


@cache
def _validator() -> jsonschema.Draft202012Validator:
    """Built once: `jsonschema.validate` checks the schema itself on every call."""
    return jsonschema.Draft202012Validator(result_schema())


@cache
def git_commit() -> str | None:
    """The harness checkout's commit, or None when not run from a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build_record(task: Task, submission_id: str, ranking: Ranking, scores: Scores,
                 subset: dict | None = None) -> dict:
    """The result record of one ranking scored on one task (`subset`: the task it was a ranking of,
    when it was scored on a subset of that task's queries)."""
    gt = task.ground_truth
    hashes = gt.hashes()
    record = {
        "schema_version": 1,
        "task": {"id": task.id, "version": task.version, "direction": gt.direction, "relevance": gt.kind,
                 "depth": task.spec.depth, "main_metric": task.spec.main_metric,
                 "ground_truth_sha256": hashes["ground_truth"], "queries_sha256": hashes["queries"],
                 "corpus_sha256": hashes["corpus"], "relevance_sha256": hashes["relevance"]},
        "submission": {"id": submission_id, "file": ranking.path.name, "sha256": ranking.sha256,
                       "candidates": int(ranking.indices.shape[1])},
        **({"subset": subset} if subset else {}),
        **({"coverage": {**coverage(task), "full_set_bounds": full_set_bounds(task, scores.means)}}
           if task.spec.derived_from else {}),
        "metrics": scores.means,
        "hubness": hubness(ranking.indices, len(gt.corpus), min(HUBNESS_K, task.spec.depth)),
        "confidence_intervals": {name: list(interval) for name, interval in scores.intervals.items()},
        "confidence_method": "jackknife-95",
        "n_queries": gt.n_queries,
        "per_query": {"query_id": list(gt.query_ids),
                      **{name: np.round(values, 10).tolist() for name, values in scores.per_query.items()}},
        "harness": {"version": __version__, "git_commit": git_commit()},
        "environment": {"python": platform.python_version(), "numpy": np.__version__},
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    validate_record(record)
    return record


def validate_record(record: dict) -> None:
    """Check a record against the schema. The per-query columns (one number per query: 5 x 5225 on
    Clotho, millions on a large task) are checked with numpy, since jsonschema's item-by-item walk
    over them took half of `larb evaluate`'s time; the schema sees their first item."""
    per_query = record.get("per_query")
    if not isinstance(per_query, dict) or not isinstance(per_query.get("query_id"), list):
        _validator().validate(record)
        return
    _validator().validate({**record, "per_query": {k: v[:1] if isinstance(v, list) else v
                                                   for k, v in per_query.items()}})
    ids = per_query["query_id"]
    if not all(isinstance(qid, str) for qid in ids):
        raise jsonschema.ValidationError("per_query.query_id holds a value that is not a string")
    for name, column in per_query.items():
        if name == "query_id":
            continue
        values = np.asarray(column)
        if len(column) != len(ids) or values.dtype.kind not in "fiu" or not np.isfinite(values).all():
            raise jsonschema.ValidationError(f"per_query.{name} is not one finite number per query")


def write_record(record: dict, path: Path) -> Path:
    """Write a record atomically (a reader never sees half a file)."""
    return atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
