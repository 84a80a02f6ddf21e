"""The scorer against the real world: the official DCASE 2022 Task 6b baseline's ranking of
the Clotho v2.1 evaluation captions, its published scores, an independent re-implementation of
the official `eval_script.py`, the astropy jackknife, and pytrec_eval on the DCASE 2025
multi-positive and the TAU graded-relevance annotations (all from ../shared/reference)."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from conftest import brute_force_jackknife

from benchmark.rankings import read_ranking
from benchmark.scoring import score
from benchmark.tasks import get_task

BASELINE = "reference/scoring/dcase2022_baseline_clotho_evaluation.output.csv"
CLOTHO_EVAL = "reference/scoring/clotho_captions_evaluation.csv"
MULTI = "reference/scoring/dcase2025_multi_positive_metadata_eval.csv"
GRADED = "reference/scoring/relevance_crowdsourcing"

# The official eval_script.py definitions on this ranking, to 4 decimals (../shared/reference/README.md).
EXPECTED = {"R@1": 0.0316, "R@5": 0.1095, "R@10": 0.1883, "mAP@10": 0.0679}


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def baseline_csv(shared_path) -> Path:
    return shared_path(BASELINE)


@pytest.fixture
def clotho_eval(shared_mirror):
    return get_task("clotho-v2.1/evaluation")


@pytest.fixture
def baseline_scores(baseline_csv, clotho_eval):
    return score(read_ranking(baseline_csv, clotho_eval.ground_truth), clotho_eval.ground_truth)


def test_header_is_the_dcase_form(baseline_csv):
    assert _read(baseline_csv)[0] == ["caption", *(f"file_name_{i}" for i in range(1, 11))]


def test_python_api_reproduces_the_official_scores(baseline_scores, clotho_eval):
    assert clotho_eval.ground_truth.n_queries == 5225
    assert {name: round(baseline_scores.means[name], 4) for name in EXPECTED} == EXPECTED


def test_cli_evaluate_json_reproduces_the_official_scores(baseline_csv, clotho_eval, run_cli, tmp_path):
    output = tmp_path / "result.json"
    code, out, err = run_cli("evaluate", baseline_csv, "--task", "clotho-v2.1/evaluation", "--json",
                             "--output", output)
    assert code == 0, err
    record = json.loads(out)
    assert {name: round(record["metrics"][name], 4) for name in EXPECTED} == EXPECTED
    assert record["n_queries"] == 5225
    assert json.loads(output.read_text("utf-8"))["metrics"] == record["metrics"]


def _official_eval_script(gt_rows: list[list[str]],
                          output_rows: list[list[str]]) -> dict[str, dict[str, float]]:
    """The DCASE 2022 eval_script.py definitions, written out again: caption -> its audio file;
    R@k = 1 if that file is among the first k names; AP@10 = 1/rank within the top 10."""
    caption_file = {caption: row[0] for row in gt_rows[1:] for caption in row[1:]}
    per_caption: dict[str, dict[str, float]] = {}
    for row in output_rows[1:]:
        caption, names = row[0], row[1:11]
        target = caption_file[caption]
        rank = names.index(target) + 1 if target in names else None
        per_caption[caption] = {
            "R@1": float(rank is not None and rank <= 1), "R@5": float(rank is not None and rank <= 5),
            "R@10": float(rank is not None), "mAP@10": 1.0 / rank if rank is not None else 0.0}
    return per_caption


def test_independent_eval_script_agrees_per_query(baseline_csv, baseline_scores, clotho_eval, shared_path):
    official = _official_eval_script(_read(shared_path(CLOTHO_EVAL)), _read(baseline_csv))
    texts = clotho_eval.ground_truth.query_texts
    assert len(official) == len(texts) == 5225
    for name in EXPECTED:
        theirs = np.array([official[t][name] for t in texts])
        np.testing.assert_allclose(baseline_scores.per_query[name], theirs, rtol=0, atol=1e-12)
        assert abs(baseline_scores.means[name] - theirs.mean()) < 1e-12


def test_jackknife_interval_equals_brute_force(baseline_scores):
    for name in EXPECTED:
        low, high = brute_force_jackknife(baseline_scores.per_query[name])
        assert baseline_scores.intervals[name][0] == pytest.approx(low, abs=1e-12)
        assert baseline_scores.intervals[name][1] == pytest.approx(high, abs=1e-12)
        assert low < baseline_scores.means[name] < high


def _subset_ranking(baseline_csv: Path, captions: set[str], dest: Path) -> list[list[str]]:
    rows = [row for row in _read(baseline_csv)[1:] if row[0] in captions]
    with open(dest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["caption", *(f"file_name_{i}" for i in range(1, 11))])
        writer.writerows(rows)
    return rows


def _pytrec(qrels: dict, rows: list[list[str]], level: int) -> dict[str, dict[str, float]]:
    run = {row[0]: {name: float(10 - r) for r, name in enumerate(row[1:11])} for row in rows}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"map_cut.10", "success.1,5,10", "ndcg_cut.10"},
                                               relevance_level=level)
    return evaluator.evaluate(run)


_TREC_NAMES = {"mAP@10": "map_cut_10", "R@1": "success_1", "R@5": "success_5", "R@10": "success_10",
               "nDCG@10": "ndcg_cut_10"}


def _compare(scores, gt, trec: dict[str, dict[str, float]], names) -> None:
    for name in names:
        theirs = np.array([trec[text][_TREC_NAMES[name]] for text in gt.query_texts])
        np.testing.assert_allclose(scores.per_query[name], theirs, rtol=0, atol=1e-9, err_msg=name)


def test_multi_positive_task_matches_pytrec_eval_on_the_real_annotations(baseline_csv, shared_path,
                                                                       shared_mirror, tmp_path):
    with open(shared_path(MULTI), newline="", encoding="utf-8") as handle:
        qrels = {r["query"]: {name: 1 for name in ast.literal_eval(r["audio_filenames"])}
                 for r in csv.DictReader(handle)}
    task = get_task("clotho-v2.1/evaluation-multi")
    assert len(qrels) == task.ground_truth.n_queries == 1037
    assert max(len(v) for v in qrels.values()) > 1
    rows = _subset_ranking(baseline_csv, set(qrels), tmp_path / "multi.csv")
    scores = score(read_ranking(tmp_path / "multi.csv", task.ground_truth), task.ground_truth)
    _compare(scores, task.ground_truth, _pytrec(qrels, rows, 1), ["mAP@10", "R@1", "R@5", "R@10"])


def test_graded_task_matches_pytrec_eval_on_the_real_ratings(baseline_csv, shared_path, shared_mirror,
                                                             tmp_path):
    folder = shared_path(GRADED)

    def table(name: str) -> list[dict[str, str]]:
        with open(folder / f"evaluation_{name}.csv", newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    fid_file = {r["fid"]: r["file_name"] for r in table("audio_metadata")}
    tid_text = {r["tid"]: r["text"] for r in table("text")}
    qrels: dict[str, dict[str, int]] = {}
    for r in table("relevances"):
        qrels.setdefault(tid_text[r["tid"]], {})[fid_file[r["fid"]]] = int(r["rating"])
    queries = {tid_text[r["tid"]] for r in table("queries")}
    qrels = {text: judged for text, judged in qrels.items() if text in queries}
    task = get_task("clotho-v2.1/evaluation-graded")
    assert task.spec.main_metric == "nDCG@10"
    assert len(qrels) == task.ground_truth.n_queries == 200
    rows = _subset_ranking(baseline_csv, set(qrels), tmp_path / "graded.csv")
    scores = score(read_ranking(tmp_path / "graded.csv", task.ground_truth), task.ground_truth)
    trec = _pytrec(qrels, rows, 50)
    _compare(scores, task.ground_truth, trec, ["mAP@10", "R@1", "R@5", "R@10", "nDCG@10"])
    assert scores.means["nDCG@10"] > 0


def test_a_real_messy_submission_gets_one_clear_error(shared_path, clotho_eval, tmp_path):
    """A real participant's file (challenge-evaluation queries, first header cell left empty)."""
    from benchmark.errors import LarbError

    messy = shared_path("reference/scoring/real_submission_challenge_eval_no_groundtruth.csv")
    with pytest.raises(LarbError) as info:
        read_ranking(messy, clotho_eval.ground_truth)
    assert info.value.line == 1 and "wrong header" in str(info.value) and str(messy) in str(info.value)
    rows = _read(messy)
    rows[0][0] = "caption"
    fixed = tmp_path / "fixed.csv"
    with open(fixed, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(LarbError) as info:  # it ranks the challenge-evaluation files, not Clotho's
        read_ranking(fixed, clotho_eval.ground_truth)
    assert info.value.line == 2 and "'WATER DRIP 2 ECHO LOW PITCH.wav' is not in this task's corpus" in str(
        info.value)
