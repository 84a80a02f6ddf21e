"""Retrieval metrics on a top-k ranking, vectorised over queries.

Definitions (those of DCASE and trec_eval; cross-checked against pytrec_eval and the DCASE 2025
baseline's `average_precision_at_k` in the tests), for any cut-off k up to the ranking's depth:

- AP@k = (1/|R|) * sum of precision@r over the ranks r <= k that hold a relevant item,
  |R| = number of relevant items of the query (trec_eval `map_cut.k`; the DCASE 2025 code, which
  divides by all relevant files, not by min(|R|, k)). With one relevant item (Clotho, AudioCaps)
  this is 1/rank, exactly the DCASE 2022 `eval_script.py`. mAP@k is the mean over queries.
- R@k = 1 when any relevant item is in the top k (hit rate; trec_eval `success.k`), the
  "recall" of the audio-retrieval papers.
- nDCG@k with linear gains (the grade) and log2(rank + 1) discounts, the ideal ranking
  taken over all judged items (trec_eval `ndcg_cut.k`).

A ranking is an int array (queries x depth) of corpus indices; relevance is a CSR-like
`Judgements`. Rankings are validated upstream (no repeats, known items), so ties and
duplicates never reach this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K = 10  # the depth of the DCASE 2022-2024 tasks, and of a task that declares none
METRIC_NAMES = ("mAP@10", "R@1", "R@5", "R@10", "nDCG@10")
_KINDS = ("mAP", "R", "nDCG")


def parse_metric(name: str) -> tuple[str, int]:
    """("mAP", 16) for "mAP@16"; ValueError for anything else."""
    kind, sep, cutoff = name.partition("@")
    if kind not in _KINDS or not sep or not cutoff.isdigit() or int(cutoff) < 1:
        raise ValueError(f"unknown metric {name!r}: use mAP@k, R@k or nDCG@k")
    return kind, int(cutoff)


@dataclass(frozen=True)
class Judgements:
    """Relevance of corpus items per query, in CSR form.

    `indptr[q]:indptr[q+1]` slices `items` (corpus indices) and `grades` (gains) of query q.
    An item is relevant for the binary metrics when its grade >= `threshold`.
    """

    indptr: np.ndarray
    items: np.ndarray
    grades: np.ndarray
    n_corpus: int
    threshold: int = 1

    @classmethod
    def single(cls, relevant: np.ndarray, n_corpus: int) -> Judgements:
        """One relevant item per query (the DCASE 2022-2024 case)."""
        n = len(relevant)
        return cls(np.arange(n + 1, dtype=np.int64), relevant.astype(np.int64),
                   np.ones(n, dtype=np.int64), n_corpus)

    @property
    def n_queries(self) -> int:
        return len(self.indptr) - 1


def gains_at_ranks(ranking: np.ndarray, judgements: Judgements) -> np.ndarray:
    """The grade of the item at each rank (0 for unjudged), shape (queries, k)."""
    n_queries = ranking.shape[0]
    query_of_item = np.repeat(np.arange(judgements.n_queries, dtype=np.int64), np.diff(judgements.indptr))
    judged_keys = query_of_item * judgements.n_corpus + judgements.items
    order = np.argsort(judged_keys, kind="stable")
    judged_keys = judged_keys[order]
    judged_grades = judgements.grades[order]
    keys = np.arange(n_queries, dtype=np.int64)[:, None] * judgements.n_corpus + ranking
    pos = np.searchsorted(judged_keys, keys)
    pos_clipped = np.minimum(pos, len(judged_keys) - 1)
    found = (pos < len(judged_keys)) & (judged_keys[pos_clipped] == keys)
    return np.where(found, judged_grades[pos_clipped], 0)


def per_query_scores(ranking: np.ndarray, judgements: Judgements,
                     names: tuple[str, ...] = METRIC_NAMES) -> dict[str, np.ndarray]:
    """Each metric of `names` for every query (float64 arrays of length n_queries)."""
    if ranking.shape[0] != judgements.n_queries:
        raise ValueError("ranking and judgements have different numbers of queries")
    parsed = [parse_metric(name) for name in names]
    depth = max(k for _, k in parsed)
    if depth > ranking.shape[1]:
        raise ValueError(f"{names} need {depth} ranks; the ranking has {ranking.shape[1]}")
    gains = gains_at_ranks(ranking[:, :depth], judgements).astype(np.float64)
    hits = gains >= judgements.threshold
    query_of_item = np.repeat(np.arange(judgements.n_queries), np.diff(judgements.indptr))
    n_relevant = np.bincount(query_of_item, weights=judgements.grades >= judgements.threshold,
                             minlength=judgements.n_queries)
    precision_hits = np.cumsum(hits, axis=1) / np.arange(1, depth + 1, dtype=np.float64) * hits
    scores = {}
    for name, (kind, k) in zip(names, parsed, strict=True):
        if kind == "mAP":
            with np.errstate(invalid="ignore", divide="ignore"):
                scores[name] = np.where(n_relevant > 0, precision_hits[:, :k].sum(axis=1) / np.maximum(n_relevant, 1),
                                        0.0)
        elif kind == "R":
            scores[name] = hits[:, :k].any(axis=1).astype(np.float64)
        else:
            scores[name] = _ndcg(gains[:, :k], judgements, k)
    return scores


def _ndcg(gains: np.ndarray, judgements: Judgements, k: int) -> np.ndarray:
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (gains * discounts).sum(axis=1)
    ideal = np.zeros((judgements.n_queries, k))
    counts = np.diff(judgements.indptr)
    # Sort each query's grades descending: by (query, -grade) in one lexsort.
    query_of_item = np.repeat(np.arange(judgements.n_queries), counts)
    order = np.lexsort((-judgements.grades, query_of_item))
    position = np.arange(len(order)) - np.repeat(judgements.indptr[:-1], counts)
    keep = position < k
    ideal[query_of_item[order][keep], position[keep]] = judgements.grades[order][keep]
    idcg = (ideal * discounts).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / idcg, 0.0)


def mean_scores(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(values.mean()) for name, values in per_query.items()}
