"""The one scoring path: a validated ranking against a task's ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark import metrics, stats
from benchmark.groundtruth import GroundTruth
from benchmark.rankings import Ranking

# Graded tasks (ratings 0-100): a file counts as relevant for the binary metrics from this
# rating on (the middle of the scale); nDCG@10 uses the ratings themselves as gains.
GRADED_RELEVANCE_THRESHOLD = 50


@dataclass(frozen=True)
class Scores:
    """Per-query scores, their means and 95 % jackknife intervals."""

    per_query: dict[str, np.ndarray]
    means: dict[str, float]
    intervals: dict[str, tuple[float, float]]


def judgements_for(ground_truth: GroundTruth) -> metrics.Judgements:
    """The task's relevance in the CSR form the metrics take."""
    corpus_index = {name: i for i, name in enumerate(ground_truth.corpus)}
    judged = [ground_truth.relevance[qid] for qid in ground_truth.query_ids]
    indptr = np.zeros(len(judged) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, judged), np.int64, len(judged)), out=indptr[1:])
    items = np.fromiter(map(corpus_index.__getitem__, (name for row in judged for name in row)), np.int64,
                        int(indptr[-1]))
    grades = np.fromiter((grade for row in judged for grade in row.values()), np.int64, int(indptr[-1]))
    threshold = GRADED_RELEVANCE_THRESHOLD if ground_truth.kind == "graded" else 1
    return metrics.Judgements(indptr, items, grades, len(ground_truth.corpus), threshold)


def score(ranking: Ranking, ground_truth: GroundTruth, names: tuple[str, ...] = metrics.METRIC_NAMES) -> Scores:
    """Each metric of `names` per query, the means and their confidence intervals."""
    per_query = metrics.per_query_scores(ranking.indices, judgements_for(ground_truth), names)
    return Scores(per_query, metrics.mean_scores(per_query),
                  {name: stats.jackknife_interval(values) for name, values in per_query.items()})
