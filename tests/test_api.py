"""The public Python API: `benchmark.get_task` and `benchmark.evaluate` on every kind of input, the
tie rule, the errors, and the README's "Python API" snippets (executed, so they cannot rot)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

import benchmark
from benchmark import evaluate, get_task
from benchmark.array_rankings import top_k_from_scores
from benchmark.errors import LarbError
from benchmark.rankings import write_t2a_csv
from benchmark.results import result_schema, validate_record

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo():
    return get_task("demo")


@pytest.fixture(scope="module")
def scores(demo) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((len(demo.query_ids), len(demo.corpus)))


def test_get_task_exposes_the_ground_truth_in_its_documented_order(demo):
    gt = demo.ground_truth
    assert (demo.query_ids, demo.query_texts, demo.corpus) == (gt.query_ids, gt.query_texts, gt.corpus)
    assert (demo.direction, demo.kind) == ("t2a", "single") and demo.relevance is gt.relevance
    assert set(benchmark.__all__) >= {"get_task", "evaluate"}


@pytest.mark.parametrize("seed", range(5))
def test_the_tie_rule_is_a_stable_descending_sort(seed):
    """Many ties (scores drawn from 4 values): higher first, equal scores in corpus order."""
    values = np.random.default_rng(seed).integers(0, 4, size=(300, 57)).astype(np.float32)
    expected = np.argsort(-values, axis=1, kind="stable")[:, :10]
    assert np.array_equal(top_k_from_scores(values), expected)


def test_a_matrix_its_top_k_and_the_csv_written_from_it_score_the_same(demo, scores, tmp_path):
    from_matrix = evaluate(scores, demo)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    names = [[demo.corpus[i] for i in row] for row in top]
    csv = write_t2a_csv(tmp_path / "ranking.csv", demo.query_ids, demo.query_texts, names)
    from_csv = evaluate(csv, "demo")
    deeper = np.argsort(-scores, axis=1, kind="stable")[:, :13]  # candidates beyond the depth are allowed
    for other in (evaluate(top, demo), evaluate(np.array(names, dtype=object), demo), from_csv):
        assert other.metrics == from_matrix.metrics
        assert other.ranking.sha256 == from_matrix.ranking.sha256  # the hash of the CSV's bytes
        assert all(np.array_equal(other.per_query[m], from_matrix.per_query[m]) for m in from_matrix.per_query)
    wide = evaluate(deeper, demo)
    assert wide.metrics == from_matrix.metrics and wide.record()["submission"]["candidates"] == 13


def test_a_data_frame_is_matched_by_labels_not_by_position(demo, scores):
    expected = evaluate(scores, demo).metrics
    by_id = pd.DataFrame(scores, index=list(demo.query_ids), columns=list(demo.corpus))
    by_text = pd.DataFrame(scores, index=list(demo.query_texts), columns=list(demo.corpus))
    assert evaluate(by_id.sample(frac=1.0, random_state=1), demo).metrics == expected
    assert evaluate(by_text.iloc[:, ::-1], demo).metrics == expected  # DCASE 2025 form: rows are captions
    # a caption shared by several queries may label one row, which then serves all of them
    assert len(set(demo.query_texts)) < len(demo.query_texts)
    once = evaluate(by_text[~by_text.index.duplicated()], demo)
    shared = [i for i, text in enumerate(demo.query_texts) if demo.query_texts.count(text) > 1]
    first = demo.query_texts.index(demo.query_texts[shared[0]])
    assert np.array_equal(once.ranking.indices[shared[0]], once.ranking.indices[first])
    with pytest.raises(LarbError, match="not a query of this task"):
        evaluate(by_text.rename(index={demo.query_texts[0]: "a cat meows"}), demo)


@pytest.mark.parametrize("make, message", [
    (lambda s: s[:3], r"shape \(3, 60\); this task needs \(300"),
    (lambda s: s[:, :59], "needs \\(300, 60 scores\\)"),
    (lambda s: np.where(np.arange(s.size).reshape(s.shape) == 61, np.nan, s),
     r"query 'test_0000.wav#2' \(row 1\) for 'test_0001.wav' \(column 1\) is nan"),
    (lambda s: np.where(np.arange(s.size).reshape(s.shape) == 0, np.inf, s), "is inf"),
    (lambda s: np.tile(np.arange(10), (300, 1)) + 55, "index 60 is outside the corpus"),
    (lambda s: np.tile(np.r_[0, np.arange(9)], (300, 1)), "ranks a candidate more than once"),
    (lambda s: np.tile(np.arange(9), (300, 1)), "needs \\(300, 10 or more corpus indices\\)"),
    (lambda s: np.full((300, 10), "nope.wav"), "'nope.wav' is not in this task's corpus"),
    (lambda s: s > 0, "neither corpus indices"),
])
def test_bad_arrays_are_one_clear_error(demo, scores, make, message):
    with pytest.raises(LarbError, match=message):
        evaluate(make(scores), demo)


def test_bad_frames_are_one_clear_error(demo, scores):
    frame = pd.DataFrame(scores, index=list(demo.query_ids), columns=list(demo.corpus))
    with pytest.raises(LarbError, match="have no column"):
        evaluate(frame.iloc[:, 1:], demo)
    with pytest.raises(LarbError, match="not in this task's corpus"):
        evaluate(frame.assign(**{"extra.wav": 0.0}), demo)
    with pytest.raises(LarbError, match="no row for query"):
        evaluate(frame.iloc[1:].rename(index=dict(zip(demo.query_ids, demo.query_texts, strict=True))).iloc[:10],
                 demo)
    with pytest.raises(LarbError, match="not scores"):
        evaluate(frame.astype(str), demo)


def test_the_record_is_the_clis_record_and_is_schema_valid(demo, scores, tmp_path, run_cli):
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    csv = write_t2a_csv(tmp_path / "mine.csv", demo.query_ids, demo.query_texts,
                        [[demo.corpus[i] for i in row] for row in top])
    code, _, _ = run_cli("evaluate", csv, "--task", "demo", "--output", tmp_path / "cli.json")
    assert code == 0
    cli_record = json.loads((tmp_path / "cli.json").read_text("utf-8"))
    api = evaluate(csv, "demo")
    saved = json.loads(api.save(tmp_path / "api.json").read_text("utf-8"))
    assert saved == api.record()
    jsonschema.Draft202012Validator(result_schema()).validate(saved)  # the full, item-by-item check
    for record in (saved, cli_record):
        record.pop("created_utc")
    assert saved == cli_record
    matrix_record = evaluate(scores, demo, submission_id="mine").record()
    assert matrix_record["submission"]["sha256"] == cli_record["submission"]["sha256"]


def test_the_fast_record_check_still_rejects_bad_per_query_columns(demo, scores):
    record = evaluate(scores, demo).record()
    for broken in ([*record["per_query"]["R@1"][:-1]], [float("nan")] * len(demo.query_ids),
                   ["0"] * len(demo.query_ids)):
        with pytest.raises(jsonschema.ValidationError):
            validate_record({**record, "per_query": {**record["per_query"], "R@1": broken}})
    with pytest.raises(jsonschema.ValidationError):
        validate_record({**record, "metrics": {**record["metrics"], "R@1": 1.5}})


def test_intervals_stay_within_the_metrics_range(demo):
    perfect = np.tile(np.arange(len(demo.corpus), dtype=np.float64), (len(demo.query_ids), 1))
    relevant = [demo.corpus.index(next(iter(demo.relevance[q]))) for q in demo.query_ids]
    perfect[np.arange(len(relevant)), relevant] = 1e6  # every query's file first
    perfect[0, relevant[0]] = -1e6  # ... but one, so that the interval has a width
    result = evaluate(perfect, demo)
    for name, (low, high) in result.intervals.items():
        assert 0.0 <= low <= result.metrics[name] <= high <= 1.0, name
    assert result.intervals["R@10"][1] == 1.0  # the unclipped jackknife bound lies above 1


def _readme_snippets() -> list[str]:
    text = (REPO / "README.md").read_text("utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_python_snippets_run(tmp_path, monkeypatch):
    snippets = _readme_snippets()
    assert len(snippets) >= 2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "submissions").symlink_to(REPO / "submissions")
    namespace: dict = {}
    for snippet in snippets:
        exec(compile(snippet, "README.md (Python API)", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "results").exists()
