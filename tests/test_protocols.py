"""The DCASE 2025 protocol and one run scored every way: ranking depth, mAP@k against the official
definition, similarity-matrix files (streamed), subsets named in the record, `--protocols all`."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc

import numpy as np
import pytest
from conftest import MIRROR, require_shared

from benchmark import evaluate, get_task, matrix_files
from benchmark.errors import LarbError
from benchmark.evaluation import evaluate_protocols
from benchmark.groundtruth import GroundTruth
from benchmark.matrix_files import read_matrix, write_matrix
from benchmark.metrics import Judgements, per_query_scores
from benchmark.rankings import read_ranking, write_t2a_csv
from benchmark.tasks import Task, TaskSpec


def official_average_precision_at_k(relevant_ranks: list[int], k: int) -> float:
    """CPJKU/dcase2025_task6_baseline `average_precision_at_k`, as its README and code define it:
    0-based ranks of the relevant files, precision at each one inside the cut-off, divided by the
    number of relevant files (not by min(|R|, k))."""
    ap, found = 0.0, 0
    for rank in sorted(relevant_ranks):
        if rank >= k:
            break
        found += 1
        ap += found / (rank + 1)
    return ap / len(relevant_ranks)


@pytest.mark.parametrize("k", [10, 16])
@pytest.mark.parametrize("seed", range(4))
def test_map_at_k_is_the_official_definition_with_several_relevant_files(k, seed):
    rng = np.random.default_rng(seed)
    n_queries, n_corpus = 200, 60
    relevant = [rng.choice(n_corpus, size=rng.integers(1, 9), replace=False) for _ in range(n_queries)]
    full = np.stack([rng.permutation(n_corpus) for _ in range(n_queries)])
    for q in range(0, n_queries, 3):  # put several relevant files in the top k of a third of the queries
        top = list(relevant[q][:4])
        rest = [c for c in full[q] if c not in top]
        full[q] = np.array([*rest[:2], *top, *rest[2:]])
    indptr = np.cumsum([0, *map(len, relevant)])
    judgements = Judgements(indptr, np.concatenate(relevant), np.ones(indptr[-1], np.int64), n_corpus)
    ours = per_query_scores(full[:, :k], judgements, (f"mAP@{k}",))[f"mAP@{k}"]
    for q in range(n_queries):
        ranks = [int(np.flatnonzero(full[q] == r)[0]) for r in relevant[q]]
        assert ours[q] == pytest.approx(official_average_precision_at_k(ranks, k), abs=1e-12)
    assert (np.diff(indptr) > 1).sum() > 100 and (ours > 0).sum() > 50


def _deep_task(gt: GroundTruth, depth: int = 16) -> Task:
    spec = TaskSpec(id="deep", version=1, title="a depth-16 task", direction="t2a", kind="multi", assets=(),
                    build=lambda: gt, sha256=gt.sha256, source="tests", audio="", depth=depth,
                    metrics=("mAP@16", "mAP@10", "R@1", "R@5", "R@10"), main_metric="mAP@16")
    return Task(spec, gt)


@pytest.fixture
def wide_gt() -> GroundTruth:
    corpus = tuple(f"clip_{i:02d}.wav" for i in range(40))
    ids = tuple(f"q{i}" for i in range(30))
    relevance = {q: {corpus[(3 * i + j) % 40]: 1 for j in range(1 + i % 4)} for i, q in enumerate(ids)}
    return GroundTruth("t2a", ids, tuple(f"caption number {i}" for i in range(30)), corpus, relevance, "multi")


def test_a_task_declares_its_depth_and_a_shallower_ranking_is_an_error_naming_it(wide_gt, tmp_path):
    task = _deep_task(wide_gt)
    scores = np.random.default_rng(1).standard_normal((30, 40))
    result = evaluate(scores, task)
    assert list(result.metrics) == ["mAP@16", "mAP@10", "R@1", "R@5", "R@10"]
    assert result.ranking.indices.shape == (30, 16)
    top10 = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    with pytest.raises(LarbError, match="this task ranks 16 candidates per query"):
        evaluate(top10, task)
    csv = write_t2a_csv(tmp_path / "ten.csv", wide_gt.query_ids, wide_gt.query_texts,
                        [[wide_gt.corpus[i] for i in row] for row in top10])
    with pytest.raises(LarbError, match="gives 10 candidates per query; this task ranks 16"):
        read_ranking(csv, wide_gt, depth=16)


def test_more_candidates_than_the_depth_are_kept_for_deeper_metrics_and_declared(wide_gt, tmp_path):
    task = _deep_task(wide_gt)
    scores = np.random.default_rng(2).standard_normal((30, 40))
    top20 = np.argsort(-scores, axis=1, kind="stable")[:, :20]
    csv = write_t2a_csv(tmp_path / "twenty.csv", wide_gt.query_ids, wide_gt.query_texts,
                        [[wide_gt.corpus[i] for i in row] for row in top20])
    from_csv = evaluate(csv, task)
    assert from_csv.ranking.indices.shape == (30, 20) and from_csv.metrics == evaluate(scores, task).metrics
    assert from_csv.record()["submission"]["candidates"] == 20
    shallow = dataclasses.replace(task, spec=dataclasses.replace(task.spec, depth=10, main_metric="mAP@10",
                                                                 metrics=("mAP@10", "R@1", "R@5", "R@10")))
    assert evaluate(csv, shallow).record()["task"]["depth"] == 10


def test_a_matrix_file_and_the_top_k_csv_derived_from_it_score_the_same(small_gt, tmp_path):
    task = Task(TaskSpec(id="small", version=1, title="small", direction="t2a", kind="single", assets=(),
                         build=lambda: small_gt, sha256=small_gt.sha256, source="", audio=""), small_gt)
    scores = np.round(np.random.default_rng(3).standard_normal((24, 12)), 2)  # rounding makes ties
    path = write_matrix(tmp_path / "matrix.csv", small_gt, scores)
    from_file = evaluate(path, task)
    assert from_file.metrics == evaluate(scores, task).metrics
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    csv = write_t2a_csv(tmp_path / "top.csv", small_gt.query_ids, small_gt.query_texts,
                        [[small_gt.corpus[i] for i in row] for row in top])
    assert evaluate(csv, task).metrics == from_file.metrics
    assert np.array_equal(from_file.ranking.indices, top)
    # columns and rows in another order, quoted labels, CRLF line ends, a BOM: the same ranking
    order = np.random.default_rng(4).permutation(12)
    rows = np.random.default_rng(5).permutation(24)
    lines = ["index," + ",".join(small_gt.corpus[i] for i in order)]
    for r in rows:
        label = '"' + small_gt.query_texts[r].replace('"', '""') + '"'
        lines.append(label + "," + ",".join(repr(float(v)) for v in scores[r, order]))
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert np.array_equal(read_matrix(shuffled, small_gt, 10).indices, top)


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[:1] + [lines[1].replace(",", ",nan,", 1).rsplit(",", 1)[0]] + lines[2:], "is nan"),
    (lambda lines: lines[:1] + [lines[1].rsplit(",", 1)[0]] + lines[2:], "expected 12 numbers"),
    (lambda lines: lines[:1] + [lines[1].rsplit(",", 1)[0] + ",x"] + lines[2:], "expected 12 numbers"),
    (lambda lines: [lines[0].rsplit(",", 1)[0]] + lines[1:], "corpus items have no column"),
    (lambda lines: [lines[0].rsplit(",", 1)[0] + ",dog.wav"] + lines[1:], "appears twice"),
    (lambda lines: lines + lines[1:2], "more rows than this task has queries"),
    (lambda lines: lines[:1] + ['"unclosed caption,1,2'], "never closed"),
    (lambda lines: lines[:1] + ["A cat meows.," + lines[1].split(",", 1)[1]] + lines[2:], "not a query"),
])
def test_a_bad_matrix_file_is_one_error_naming_the_line(small_gt, tmp_path, edit, message):
    path = write_matrix(tmp_path / "m.csv", small_gt, np.random.default_rng(0).standard_normal((24, 12)))
    lines = path.read_text("utf-8").splitlines()
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    with pytest.raises(LarbError, match=message) as caught:
        read_matrix(path, small_gt, 10)
    assert str(path) in str(caught.value)


def test_a_matrix_file_is_read_in_bounded_memory(tmp_path, monkeypatch):
    n_queries, n_corpus = 1500, 400  # 600k scores, 4.8 MB as float64
    corpus = tuple(f"f{i}.wav" for i in range(n_corpus))
    ids = tuple(f"q{i}" for i in range(n_queries))
    gt = GroundTruth("t2a", ids, ids, corpus, {q: {corpus[i % n_corpus]: 1} for i, q in enumerate(ids)})
    path = write_matrix(tmp_path / "big.csv", gt, np.random.default_rng(0).random((n_queries, n_corpus)))
    monkeypatch.setattr(matrix_files, "BLOCK_CELLS", 8_000)  # 20 rows a block
    monkeypatch.setattr(matrix_files, "_CHUNK", 1 << 16)  # and 64 KiB read at a time (1 MiB by default)
    tracemalloc.start()
    ranking = read_matrix(path, gt, 10)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ranking.indices.shape == (n_queries, 10)
    assert peak < 0.3 * n_queries * n_corpus * 8, f"peak {peak:,} bytes"  # never the whole matrix


@pytest.fixture
def clotho(shared_mirror):
    for name in ("clotho_captions_evaluation.csv", "metadata_eval.csv"):
        require_shared(MIRROR / name)
    return get_task("clotho-v2.1/evaluation")


def test_the_multi_positive_task_is_dcase_2025s(clotho):
    multi = get_task("clotho-v2.1/evaluation-multi")
    assert (multi.spec.depth, multi.spec.main_metric, multi.spec.subset_of) == (16, "mAP@16", clotho.id)
    assert multi.spec.metrics[:2] == ("mAP@16", "mAP@10")


def test_a_subset_is_scored_only_when_asked_and_the_record_names_it(clotho, tmp_path):
    scores = np.random.default_rng(7).standard_normal((len(clotho.query_ids), len(clotho.corpus)))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :16]
    csv = write_t2a_csv(tmp_path / "full.csv", clotho.query_ids, clotho.query_texts,
                        [[clotho.corpus[i] for i in row] for row in top])
    with pytest.raises(LarbError, match=r"--subset.*README, 'Protocols'"):
        evaluate(csv, "clotho-v2.1/evaluation-multi")
    result = evaluate(csv, "clotho-v2.1/evaluation-multi", subset=True)
    record = result.record()
    assert record["subset"] == {"of": clotho.id, "queries": 1037, "of_queries": 5225}
    multi = get_task("clotho-v2.1/evaluation-multi")
    rows = [clotho.query_ids.index(q) for q in multi.query_ids]
    assert result.metrics == evaluate(scores[rows], multi).metrics


def test_one_run_is_scored_by_every_protocol(clotho, tmp_path):
    scores = np.random.default_rng(8).standard_normal((len(clotho.query_ids), len(clotho.corpus)))
    path = write_matrix(tmp_path / "run.csv", clotho.ground_truth, scores)
    results = evaluate_protocols(path, clotho.id)
    assert list(results) == ["clotho-v2.1/evaluation", "clotho-v2.1/evaluation-multi",
                             "clotho-v2.1/evaluation-graded", "clotho-v2.1/evaluation-a2t"]
    assert results["clotho-v2.1/evaluation-multi"].record()["subset"]["queries"] == 1037
    assert results["clotho-v2.1/evaluation-graded"].task.ground_truth.n_queries == 200
    a2t = results["clotho-v2.1/evaluation-a2t"]
    transposed = evaluate(scores, clotho)  # the same matrix ranks captions for each file
    assert a2t.task.direction == "a2t" and a2t.ranking.indices.shape[0] == len(clotho.corpus)
    assert transposed.metrics["mAP@10"] != a2t.metrics["mAP@10"]
    json.dumps({task: r.record() for task, r in results.items()})
