"""Metrics: hand-computed cases, pytrec_eval (trec_eval 9) as the oracle on thousands of random
rankings, and properties (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark import metrics
from benchmark.groundtruth import GroundTruth
from benchmark.metrics import Judgements, per_query_scores
from benchmark.scoring import GRADED_RELEVANCE_THRESHOLD, judgements_for

NAMES = ("mAP@10", "R@1", "R@5", "R@10", "nDCG@10")
TREC = {"mAP@10": "map_cut_10", "R@1": "success_1", "R@5": "success_5", "R@10": "success_10",
        "nDCG@10": "ndcg_cut_10"}


def judgements(judged: list[dict[int, int]], n_corpus: int, threshold: int = 1) -> Judgements:
    """CSR judgements from one {corpus index: grade} per query."""
    indptr = np.cumsum([0] + [len(j) for j in judged])
    items = np.array([i for j in judged for i in j], dtype=np.int64)
    grades = np.array([g for j in judged for g in j.values()], dtype=np.int64)
    return Judgements(indptr.astype(np.int64), items, grades, n_corpus, threshold)


def scores_of(ranking, judged, n_corpus=20, threshold=1) -> dict[str, np.ndarray]:
    return per_query_scores(np.asarray(ranking, dtype=np.int64), judgements(judged, n_corpus, threshold))


# --- hand-computed cases -----------------------------------------------------------------

def test_single_relevant_file_gives_reciprocal_rank():
    ranking = [list(range(10)), list(range(10)), list(range(10, 20))]
    s = scores_of(ranking, [{2: 1}, {0: 1}, {5: 1}])
    np.testing.assert_allclose(s["mAP@10"], [1 / 3, 1.0, 0.0])
    np.testing.assert_array_equal(s["R@1"], [0, 1, 0])
    np.testing.assert_array_equal(s["R@5"], [1, 1, 0])
    np.testing.assert_array_equal(s["R@10"], [1, 1, 0])


def test_single_constructor_equals_general_judgements():
    rng = np.random.default_rng(3)
    relevant = rng.integers(0, 30, size=50)
    ranking = np.argsort(rng.random((50, 30)), axis=1)[:, :10]
    a = per_query_scores(ranking, Judgements.single(relevant, 30))
    b = per_query_scores(ranking, judgements([{int(r): 1} for r in relevant], 30))
    for name in NAMES:
        np.testing.assert_array_equal(a[name], b[name])


def test_multi_positive_average_precision_divides_by_all_relevant():
    # relevant {0, 3, 15}: hits at ranks 1 and 4, the third one is outside the top 10
    s = scores_of([list(range(10))], [{0: 1, 3: 1, 15: 1}])
    assert s["mAP@10"][0] == pytest.approx((1 / 1 + 2 / 4) / 3)
    assert s["R@1"][0] == 1


def test_more_relevant_files_than_the_cutoff():
    s = scores_of([list(range(10))], [{i: 1 for i in range(12)}])
    assert s["mAP@10"][0] == pytest.approx(10 / 12)
    assert s["nDCG@10"][0] == pytest.approx(1.0)


def test_graded_threshold_separates_binary_metrics_from_ndcg():
    # a file rated 40 first, one rated 100 third; threshold 50
    s = scores_of([list(range(10))], [{0: 40, 2: 100, 7: 0}], threshold=50)
    assert s["R@1"][0] == 0 and s["R@5"][0] == 1
    assert s["mAP@10"][0] == pytest.approx(1 / 3)
    discount = 1 / np.log2(np.arange(2, 12))
    dcg = 40 * discount[0] + 100 * discount[2]
    idcg = 100 * discount[0] + 40 * discount[1]
    assert s["nDCG@10"][0] == pytest.approx(dcg / idcg)


def test_graded_task_uses_threshold_fifty():
    gt = GroundTruth("t2a", ("q",), ("text",), ("a", "b"), {"q": {"a": 30, "b": 80}}, "graded")
    assert GRADED_RELEVANCE_THRESHOLD == 50
    assert judgements_for(gt).threshold == 50
    single = GroundTruth("t2a", ("q",), ("text",), ("a", "b"), {"q": {"a": 1}}, "single")
    assert judgements_for(single).threshold == 1


def test_query_count_mismatch_is_refused():
    with pytest.raises(ValueError, match="different numbers of queries"):
        scores_of([list(range(10))], [{0: 1}, {1: 1}])


# --- pytrec_eval as the oracle -------------------------------------------------------------

def _check_against_trec(ranking: np.ndarray, judged: list[dict[int, int]], n_corpus: int,
                        threshold: int) -> None:
    ours = per_query_scores(ranking, judgements(judged, n_corpus, threshold))
    qrels = {f"q{q}": {f"d{i}": int(g) for i, g in j.items()} for q, j in enumerate(judged)}
    # strictly decreasing scores: trec_eval's own tie-breaking (by doc id) never matters
    run = {f"q{q}": {f"d{int(i)}": float(10 - r) for r, i in enumerate(row)} for q, row in enumerate(ranking)}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"map_cut.10", "success.1,5,10", "ndcg_cut.10"},
                                               relevance_level=threshold)
    trec = evaluator.evaluate(run)
    assert len(trec) == len(judged)
    for name in NAMES:
        theirs = np.array([trec[f"q{q}"][TREC[name]] for q in range(len(judged))])
        np.testing.assert_allclose(ours[name], theirs, rtol=0, atol=1e-9, err_msg=name)


def _random_rankings(rng: np.random.Generator, n_queries: int, n_corpus: int) -> np.ndarray:
    return np.argsort(rng.random((n_queries, n_corpus)), axis=1)[:, :10]


def _random_judged(rng, n_queries, n_corpus, sizes, grade) -> list[dict[int, int]]:
    out = []
    for _ in range(n_queries):
        items = rng.choice(n_corpus, size=int(rng.integers(*sizes)), replace=False)
        out.append({int(i): int(grade(rng)) for i in items})
    return out


def test_single_positive_matches_pytrec_eval():
    rng = np.random.default_rng(1)
    ranking = _random_rankings(rng, 4000, 40)
    judged = [{int(i): 1} for i in rng.integers(0, 40, size=4000)]
    _check_against_trec(ranking, judged, 40, 1)


def test_multi_positive_matches_pytrec_eval():
    rng = np.random.default_rng(2)
    ranking = _random_rankings(rng, 4000, 30)
    judged = _random_judged(rng, 4000, 30, (1, 17), lambda r: 1)
    sizes = np.array([len(j) for j in judged])
    top10 = [set(row.tolist()) for row in ranking]
    assert (sizes > 10).sum() > 100  # |R| > 10 occurs
    mixed = sum(bool(set(j) - t) and bool(set(j) & t) for j, t in zip(judged, top10, strict=True))
    assert mixed > 1000  # hits in and out
    _check_against_trec(ranking, judged, 30, 1)


def test_graded_matches_pytrec_eval_with_threshold_fifty():
    rng = np.random.default_rng(4)
    ranking = _random_rankings(rng, 3000, 40)
    judged = _random_judged(rng, 3000, 40, (1, 18), lambda r: r.integers(0, 101))
    _check_against_trec(ranking, judged, 40, GRADED_RELEVANCE_THRESHOLD)


def test_tie_heavy_grades_match_pytrec_eval():
    rng = np.random.default_rng(5)
    ranking = _random_rankings(rng, 3000, 30)
    few_levels = _random_judged(rng, 1500, 30, (5, 26), lambda r: r.choice([0, 50, 50, 100]))
    one_level = _random_judged(rng, 1500, 30, (5, 26), lambda r: 70)
    _check_against_trec(ranking, few_levels + one_level, 30, GRADED_RELEVANCE_THRESHOLD)
    _check_against_trec(ranking, few_levels + one_level, 30, 1)


# --- properties ------------------------------------------------------------------------

@st.composite
def instances(draw):
    n_corpus = draw(st.integers(10, 24))
    n_queries = draw(st.integers(1, 8))
    ranking = [draw(st.permutations(range(n_corpus)))[:10] for _ in range(n_queries)]
    judged = [draw(st.dictionaries(st.integers(0, n_corpus - 1), st.integers(0, 100), min_size=1,
                                   max_size=n_corpus)) for _ in range(n_queries)]
    threshold = draw(st.sampled_from([1, 50]))
    return np.array(ranking, dtype=np.int64), judged, n_corpus, threshold


@settings(max_examples=80, deadline=None)
@given(instances())
def test_scores_are_bounded_and_ordered(instance):
    ranking, judged, n_corpus, threshold = instance
    s = per_query_scores(ranking, judgements(judged, n_corpus, threshold))
    for name in NAMES:
        assert np.all(np.isfinite(s[name])) and np.all((0 <= s[name]) & (s[name] <= 1))
    assert np.all(s["R@1"] <= s["R@5"]) and np.all(s["R@5"] <= s["R@10"])
    assert np.all((s["mAP@10"] > 0) == (s["R@10"] > 0))
    assert np.all(s["mAP@10"] <= s["R@10"])


@settings(max_examples=80, deadline=None)
@given(instances())
def test_a_perfect_ranking_scores_one(instance):
    _, judged, n_corpus, threshold = instance
    perfect = []
    for j in judged:
        best = sorted(j, key=lambda i: -j[i])
        perfect.append(best[:10] + [i for i in range(n_corpus) if i not in j][: max(0, 10 - len(best))])
    s = per_query_scores(np.array(perfect, dtype=np.int64), judgements(judged, n_corpus, threshold))
    for q, j in enumerate(judged):
        n_relevant = sum(g >= threshold for g in j.values())
        if n_relevant:
            assert s["R@1"][q] == 1
            assert s["mAP@10"][q] == pytest.approx(min(10, n_relevant) / n_relevant)
        if any(g > 0 for g in j.values()):
            assert s["nDCG@10"][q] == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_permuting_queries_permutes_scores(instance, random):
    ranking, judged, n_corpus, threshold = instance
    order = list(range(len(judged)))
    random.shuffle(order)
    base = per_query_scores(ranking, judgements(judged, n_corpus, threshold))
    moved = per_query_scores(ranking[order], judgements([judged[q] for q in order], n_corpus, threshold))
    for name in NAMES:
        np.testing.assert_array_equal(moved[name], base[name][order])


def test_mean_scores_are_plain_means():
    per_query = {"mAP@10": np.array([0.0, 0.5, 1.0])}
    assert metrics.mean_scores(per_query) == {"mAP@10": 0.5}
