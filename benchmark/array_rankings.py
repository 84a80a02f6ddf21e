"""Rankings given in memory: top-k arrays, similarity matrices and data frames, validated like CSVs.

The tie rule, for every ranking LARB derives from scores: a higher score ranks first, and equal
scores rank in the task's corpus order (`task.corpus`, lower position first). It is what a stable
descending sort gives, so `numpy.argsort(-scores, kind="stable")` reproduces it; LARB computes it in
linear time per query (a partition at the k-th score, then a sort of the k selected).

Inputs, by type (queries always in the task's query order, `task.query_ids`):

- an integer array (queries x m, m >= 10): corpus indices, best first;
- a string array (queries x m): corpus names (file names; captions for audio-to-text);
- a floating array (queries x corpus): a similarity matrix, higher is more similar;
- a data frame (anything with `index`, `columns` and `to_numpy()`, e.g. pandas): a similarity
  matrix whose rows are labelled by query id or by query text and whose columns are the corpus names,
  in any order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth
from benchmark.metrics import K
from benchmark.rankings import Ranking, normalise_caption, ranking_csv_text

# Rows ranked at a time: a 5225 x 1045 float64 matrix is ranked in a few blocks of ~8 MB each.
ROW_BLOCK = 1024


def top_k_from_scores(scores: np.ndarray, k: int = K) -> np.ndarray:
    """Corpus indices (rows x k) of the k highest scores per row, ties in column order."""
    n_rows, n_columns = scores.shape
    out = np.empty((n_rows, k), dtype=np.int32)
    for start in range(0, n_rows, ROW_BLOCK):
        block = scores[start:start + ROW_BLOCK]
        kth = -np.partition(-block, k - 1, axis=1)[:, k - 1:k]  # the k-th highest score of each row
        above = block > kth
        tied = block == kth
        room = k - above.sum(axis=1, keepdims=True)  # how many of the tied scores fit, lowest index first
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
        columns = np.nonzero(chosen)[1].reshape(len(block), k)  # ascending index within each row
        values = np.take_along_axis(block, columns, axis=1)
        order = np.lexsort((columns, -values))  # by score, descending; equal scores by index
        out[start:start + ROW_BLOCK] = np.take_along_axis(columns, order, axis=1)
    return out


def _hashed(indices: np.ndarray, ground_truth: GroundTruth, description: str) -> Ranking:
    """A `Ranking` whose hash is that of the CSV `larb` would write for it (so the record of an array
    and of that CSV name the same content)."""
    digest = hashlib.sha256(ranking_csv_text(ground_truth, indices).encode("utf-8")).hexdigest()
    return Ranking(indices, digest, Path(description))


def _check_shape(array: np.ndarray, ground_truth: GroundTruth, columns: str, minimum: int) -> None:
    n = ground_truth.n_queries
    if array.ndim != 2 or array.shape[0] != n:
        raise LarbError(f"the array has shape {array.shape}; this task needs ({n}, {columns}): one row per query "
                        "in the task's query order.", fix="give one row per query of task.query_ids.")
    if array.shape[1] < minimum:
        raise LarbError(f"the array has {array.shape[1]} columns; this task ranks {minimum} candidates per query "
                        f"(its depth) and needs ({n}, {columns}).",
                        fix=f"give at least {minimum} candidates per query.")


def _check_indices(indices: np.ndarray, ground_truth: GroundTruth) -> np.ndarray:
    top = indices
    n_corpus = len(ground_truth.corpus)
    bad = np.argwhere((top < 0) | (top >= n_corpus))
    if len(bad):
        row, column = bad[0]
        raise LarbError(f"query {ground_truth.query_ids[row]!r} (row {row}), candidate {column + 1}: index "
                        f"{top[row, column]} is outside the corpus (0 to {n_corpus - 1}).",
                        fix="rank positions of task.corpus.")
    ordered = np.sort(top, axis=1)
    repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    if len(repeated):
        row = repeated[0]
        raise LarbError(f"query {ground_truth.query_ids[row]!r} (row {row}) ranks a candidate more than once "
                        "(the official scorer would count it twice).", fix="rank different candidates.")
    return top.astype(np.int32)


def _names_to_indices(names: np.ndarray, ground_truth: GroundTruth) -> np.ndarray:
    t2a = ground_truth.direction == "t2a"
    index = {name: i for i, name in enumerate(ground_truth.corpus)} if t2a else {
        normalise_caption(name): i for i, name in enumerate(ground_truth.corpus)}
    out = np.empty(names.shape, dtype=np.int64)
    for row, cells in enumerate(names):
        for column, cell in enumerate(cells):
            key = str(cell) if t2a else normalise_caption(str(cell))
            if key not in index:
                raise LarbError(f"query {ground_truth.query_ids[row]!r} (row {row}), candidate {column + 1}: "
                                f"{str(cell)[:120]!r} is not in this task's corpus.",
                                fix="rank only names of task.corpus.")
            out[row, column] = index[key]
    return out


def _check_finite(scores: np.ndarray, ground_truth: GroundTruth) -> None:
    for start in range(0, len(scores), ROW_BLOCK):
        bad = np.argwhere(~np.isfinite(scores[start:start + ROW_BLOCK]))
        if len(bad):
            row, column = bad[0]
            row += start
            raise LarbError(f"the score of query {ground_truth.query_ids[row]!r} (row {row}) for "
                            f"{ground_truth.corpus[column]!r} (column {column}) is {scores[row, column]}.",
                            fix="give finite numbers only (no NaN or infinity).")


def ranking_from_array(array: Any, ground_truth: GroundTruth, depth: int = K) -> Ranking:
    """A top-k array (indices or names, at least `depth` per query, all kept) or a similarity matrix
    (ranked to `depth`), in the task's query order."""
    values = np.asarray(array)
    if values.dtype.kind in "iu":
        _check_shape(values, ground_truth, f"{depth} or more corpus indices", depth)
        return _hashed(_check_indices(values, ground_truth), ground_truth, "<top-k indices>")
    if values.dtype.kind in "UO" or values.dtype.kind == "S":
        _check_shape(values, ground_truth, f"{depth} or more corpus names", depth)
        return _hashed(_check_indices(_names_to_indices(values, ground_truth), ground_truth), ground_truth,
                       "<top-k names>")
    if values.dtype.kind == "f":
        n_corpus = len(ground_truth.corpus)
        _check_shape(values, ground_truth, f"{n_corpus} scores", n_corpus)
        if values.shape[1] != n_corpus:
            raise LarbError(f"the similarity matrix has {values.shape[1]} columns; this task's corpus has "
                            f"{n_corpus}.", fix="give one column per item of task.corpus, in that order.")
        _check_finite(values, ground_truth)
        return _hashed(top_k_from_scores(values, depth), ground_truth, "<similarity matrix>")
    raise LarbError(f"an array of {values.dtype} is neither corpus indices (integers), corpus names (strings) nor "
                    "scores (floats).", fix="see 'Python API' in the README.")


def row_positions(labels: Sequence[Any], ground_truth: GroundTruth) -> list[int]:
    """For each query (task order), the frame row that holds it: by query id when every id labels a
    row, else by query text. A text that several queries share (Clotho, AudioCaps) may label one
    row, which then serves all of them, or as many rows as there are such queries, matched in the
    task's query order (the DCASE 2025 form repeats a caption once per query)."""
    labels = [str(label) for label in labels]
    by_id = {label: row for row, label in enumerate(labels)}
    if len(by_id) == len(labels) and all(qid in by_id for qid in ground_truth.query_ids):
        if len(labels) != ground_truth.n_queries:
            extra = next(label for label in labels if label not in set(ground_truth.query_ids))
            raise LarbError(f"the row {extra[:120]!r} is not a query of this task.",
                            fix="keep only the task's queries (task.query_ids or their texts).")
        return [by_id[qid] for qid in ground_truth.query_ids]
    t2a = ground_truth.direction == "t2a"
    by_text: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        by_text.setdefault(normalise_caption(label) if t2a else label, []).append(row)
    queries: dict[str, list[int]] = {}
    for position, text in enumerate(ground_truth.query_texts):
        queries.setdefault(normalise_caption(text) if t2a else text, []).append(position)
    unknown = [text for text in by_text if text not in queries]
    if unknown:
        raise LarbError(f"the row {unknown[0][:120]!r} is not a query of this task.",
                        fix="label the rows by query id (task.query_ids) or by query text.")
    rows = [-1] * ground_truth.n_queries
    for text, positions in queries.items():
        found = by_text.get(text)
        if found is None:
            raise LarbError(f"no row for query {ground_truth.query_ids[positions[0]]!r} ({text[:120]!r}).",
                            fix="label one row per query, by query id or by query text.")
        if len(found) not in (1, len(positions)):
            raise LarbError(f"the text {text[:120]!r} belongs to {len(positions)} queries and labels {len(found)} "
                            "rows.", fix="label the rows by query id (task.query_ids), which are unique.")
        for i, position in enumerate(positions):
            rows[position] = found[i if len(found) > 1 else 0]
    return rows


def ranking_from_frame(frame: Any, ground_truth: GroundTruth, depth: int = K) -> Ranking:
    """A similarity matrix as a labelled frame: rows by query id or text, columns by corpus name."""
    columns = [str(c) for c in frame.columns]
    position = {name: i for i, name in enumerate(columns)}
    if len(position) != len(columns):
        duplicate = next(name for name in columns if columns.count(name) > 1)
        raise LarbError(f"the column {duplicate[:120]!r} appears twice.", fix="one column per corpus item.")
    missing = [name for name in ground_truth.corpus if name not in position]
    if missing:
        raise LarbError(f"{len(missing)} corpus items have no column, e.g. {missing[0][:120]!r}.",
                        fix="give one column per item of task.corpus.")
    if len(columns) != len(ground_truth.corpus):
        extra = next(name for name in columns if name not in set(ground_truth.corpus))
        raise LarbError(f"the column {extra[:120]!r} is not in this task's corpus.",
                        fix="keep only the items of task.corpus.")
    rows = row_positions(list(frame.index), ground_truth)
    values = np.asarray(frame.to_numpy())
    if values.dtype.kind not in "fiu":
        raise LarbError(f"the frame holds {values.dtype} values, not scores.", fix="give numbers only.")
    scores = values[np.asarray(rows)][:, [position[name] for name in ground_truth.corpus]].astype(np.float64)
    _check_finite(scores, ground_truth)
    return _hashed(top_k_from_scores(scores, depth), ground_truth, "<similarity data frame>")
