"""Rankings from one or several trained baselines, written as submissions (text-to-audio and audio-to-text).

An ensemble combines any registered models (different baselines, losses, seeds), each given by
its checkpoint (which names its baseline and configuration) or, for a zero-shot system, by
name. Two ways, declared in the submission's metadata (`ensemble: true`, `ensemble_method`,
`members`):

- `score-mean` (default): the mean of the members' cosine similarities. Computed exactly by
  searching the concatenation of the members' embeddings (`retrieval.ensemble_embeddings`).
- `embedding-mean`: the mean of the members' (l2-normalised) embeddings, re-normalised, then
  cosine similarity -- what Park et al.'s `pickle_ensemble.py` did. Needs members of one dimension.

Audio-to-text tasks (e.g. `clotho-v2.1/evaluation-a2t`) are ranked through a text-to-audio view
of the same files and captions: every member embeds the task's audio and its captions, and
each audio file gets its 10 most similar captions.

Command: `larb baseline ensemble CHECKPOINT_OR_NAME ... --task TASK --output submissions/ID [--method M]`
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from baselines.retrieval import ensemble_embeddings
from benchmark.errors import LarbError

METHODS = ("score-mean", "embedding-mean")


def combine(embeddings: Sequence[tuple[np.ndarray, np.ndarray]], method: str) -> tuple[np.ndarray, np.ndarray]:
    """One (queries, candidates) pair whose inner products implement `method`."""
    if method not in METHODS:
        raise LarbError(f"unknown ensemble method {method!r}.", fix=f"use one of {', '.join(METHODS)}.")
    if len(embeddings) == 1:
        return embeddings[0]
    if method == "score-mean":
        return ensemble_embeddings(embeddings)
    dims = sorted({q.shape[1] for q, _ in embeddings})
    if len(dims) > 1:
        raise LarbError(f"embedding-mean needs members of one embedding size; these have {dims}.",
                        fix="use --method score-mean, which combines any members.")

    def mean(arrays: list[np.ndarray]) -> np.ndarray:
        stacked = np.mean(np.stack([np.asarray(a, np.float32) for a in arrays]), axis=0)
        return stacked / np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)

    return mean([q for q, _ in embeddings]), mean([c for _, c in embeddings])


# -- command line -----------------------------------------------------------------------------

