"""Result records: schema, content, atomic writes."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
from datetime import datetime

import jsonschema
import numpy as np
import pytest

from benchmark.errors import LarbError
from benchmark.rankings import read_ranking
from benchmark.results import build_record, result_schema, write_record
from benchmark.scoring import score
from benchmark.tasks import get_task
from benchmark.version import __version__

REQUIRED = {"schema_version", "task", "submission", "metrics", "confidence_intervals", "n_queries",
            "per_query", "harness", "environment", "created_utc"}


@pytest.fixture
def record(tmp_path, write_ranking):
    task = get_task("demo")
    path = write_ranking(tmp_path / "my-run.csv", task.ground_truth, seed=5)
    ranking = read_ranking(path, task.ground_truth)
    scores = score(ranking, task.ground_truth)
    return build_record(task, "my-run", ranking, scores), task, path, scores


def test_record_validates_and_has_the_required_fields(record):
    rec, task, path, scores = record
    jsonschema.Draft202012Validator(result_schema()).validate(rec)
    assert REQUIRED <= set(rec) and set(result_schema()["required"]) == REQUIRED
    gt = task.ground_truth
    assert rec["task"]["id"] == "demo" and rec["task"]["version"] == task.version
    assert rec["task"]["ground_truth_sha256"] == gt.sha256 == task.spec.sha256
    assert rec["task"]["queries_sha256"] == gt.queries_sha256
    assert rec["submission"] == {"id": "my-run", "file": "my-run.csv", "candidates": 10,
                                 "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert (rec["task"]["depth"], rec["task"]["main_metric"]) == (10, "mAP@10") and "subset" not in rec
    assert rec["n_queries"] == gt.n_queries == len(rec["per_query"]["query_id"])
    assert len(rec["per_query"]["mAP@10"]) == gt.n_queries
    assert rec["per_query"]["query_id"] == list(gt.query_ids)
    assert rec["metrics"] == scores.means
    assert rec["metrics"]["mAP@10"] == pytest.approx(np.mean(rec["per_query"]["mAP@10"]), abs=1e-9)
    low, high = rec["confidence_intervals"]["mAP@10"]
    assert low < rec["metrics"]["mAP@10"] < high
    assert rec["confidence_method"] == "jackknife-95"
    assert rec["harness"]["version"] == __version__
    assert rec["environment"] == {"python": platform.python_version(), "numpy": np.__version__}
    assert datetime.fromisoformat(rec["created_utc"]).utcoffset().total_seconds() == 0


def test_schema_rejects_broken_records(record):
    rec = record[0]
    validator = jsonschema.Draft202012Validator(result_schema())
    for broken in (lambda r: r.pop("n_queries"), lambda r: r["task"].update(ground_truth_sha256="abc"),
                   lambda r: r["metrics"].update({"R@1": 1.5}), lambda r: r.update(extra=1)):
        bad = copy.deepcopy(rec)
        broken(bad)
        assert not validator.is_valid(bad)


def test_write_record_round_trip(record, tmp_path):
    rec = record[0]
    path = write_record(rec, tmp_path / "results" / "my-run" / "demo.json")
    assert json.loads(path.read_text("utf-8")) == rec


def test_write_is_atomic(record, tmp_path, monkeypatch):
    rec = record[0]
    target = tmp_path / "out" / "demo.json"
    target.parent.mkdir()
    target.write_text("old result\n", "utf-8")

    def fail(*args, **kwargs):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(LarbError, match="simulated crash"):  # an OS fault is one user-facing error
        write_record(rec, target)
    assert target.read_text("utf-8") == "old result\n"
    assert [p.name for p in target.parent.iterdir()] == ["demo.json"]  # no temporary file left
