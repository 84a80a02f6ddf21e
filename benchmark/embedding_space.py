"""How a system uses its embedding space, and how its rankings crowd: one module of diagnostics.

Embedding metrics (numpy arrays, one row per item; rows are l2-normalised first where noted):

- `point_uniformity` (Tourbabin and Ben-Hur, CS224N, "sigma"): lambda_i = the distance from item i
  to its nearest other item, sigma = std(lambda) / mean(lambda) (population std); lower is more
  uniform, 0 when all lambda_i are equal (the report says 1: it is 0). The reading used here:
  computed on `dims` = 8 dimensions drawn at random (as the voxel metric is), averaged over
  `repeats` draws. On all 512 dimensions of a uniform set sigma is about 0.01-0.03, since
  nearest-neighbour distances concentrate in high dimension; on 8 it is the report's 0.19.
- `voxel_uniformity` (the report's "h"): the signs of `dims` = 8 random dimensions put each item in
  one of 256 voxels; h = the entropy (nats) of the voxel histogram, averaged over `repeats` draws;
  higher is more uniform, at most log 256 = 5.55. It depends on the set size (64 uniform points
  give about 3.99, 96 about 4.33): the set size is the caller's, and is reported with the figure.
- `alignment`, `uniformity`: Wang and Isola (ICML 2020), on l2-normalised rows: the mean
  ||a_i - t_i||^2 over matching pairs, and log mean exp(-2 ||x_i - x_j||^2) over distinct pairs.
- `modality_gap`: the distance between the centroids of the two modalities' normalised rows
  (Liang et al., NeurIPS 2022).
- `effective_rank`: exp of the entropy of the normalised singular values (Roy and Vetterli 2007).

Ranking metric, from any submission (no embeddings needed):

- `hubness`: N_k(f) = how many queries have file f in their top k; the skewness of N_k
  (Radovanovic et al., JMLR 2010: the population third standardised moment), the share of the
  corpus never retrieved, and the largest N_k with the share of all top-k slots it takes.
"""

from __future__ import annotations

import numpy as np

DIMS = 8
REPEATS = 100


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _random_dims(n_dims: int, dims: int, repeats: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.choice(n_dims, size=min(dims, n_dims), replace=False) for _ in range(repeats)]


def point_uniformity(x: np.ndarray, dims: int = DIMS, repeats: int = REPEATS, seed: int = 0) -> float:
    """The report's sigma on `dims` random dimensions, averaged over `repeats` draws."""
    x = np.asarray(x, dtype=np.float64)
    values = []
    for chosen in _random_dims(x.shape[1], dims, repeats, seed):
        part = x[:, chosen]
        squared = (part ** 2).sum(axis=1)
        distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * part @ part.T, 0.0))
        np.fill_diagonal(distances, np.inf)
        nearest = distances.min(axis=1)
        values.append(nearest.std() / nearest.mean())
    return float(np.mean(values))


def voxel_uniformity(x: np.ndarray, dims: int = DIMS, repeats: int = REPEATS, seed: int = 0) -> float:
    """The report's h: entropy (nats) of the sign-voxel histogram of `dims` random dimensions."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean([voxel_entropy(x, chosen) for chosen in _random_dims(x.shape[1], dims, repeats, seed)]))


def voxel_entropy(x: np.ndarray, chosen: np.ndarray) -> float:
    """h on given dimensions: the entropy (nats) of the histogram of the rows' sign voxels."""
    voxels = (np.asarray(x)[:, chosen] > 0).astype(np.int64) @ (1 << np.arange(len(chosen)))
    p = np.bincount(voxels, minlength=1 << len(chosen)) / len(x)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def alignment(audio: np.ndarray, text: np.ndarray) -> float:
    """Mean squared distance between matching (audio, text) rows, normalised; lower is better."""
    return float(((_normalised(audio) - _normalised(text)) ** 2).sum(axis=1).mean())


def uniformity(x: np.ndarray, t: float = 2.0) -> float:
    """log mean exp(-t ||x_i - x_j||^2) over distinct pairs of normalised rows; lower is more uniform."""
    x = _normalised(x)
    squared = np.maximum(2.0 - 2.0 * x @ x.T, 0.0)
    upper = squared[np.triu_indices(len(x), k=1)]
    return float(np.log(np.exp(-t * upper).mean()))


def modality_gap(audio: np.ndarray, text: np.ndarray) -> float:
    """Distance between the centroids of the normalised audio and text rows."""
    return float(np.linalg.norm(_normalised(audio).mean(axis=0) - _normalised(text).mean(axis=0)))


def effective_rank(x: np.ndarray) -> float:
    """exp(entropy of the singular values as a distribution): how many directions the set uses."""
    singular = np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False)
    p = singular / singular.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def hubness(indices: np.ndarray, n_corpus: int, k: int = 10) -> dict[str, float | int]:
    """k-occurrence statistics of a ranking (queries x >= k corpus indices)."""
    counts = np.bincount(np.asarray(indices)[:, :k].ravel(), minlength=n_corpus).astype(np.float64)
    spread = counts.std()
    skewness = float(((counts - counts.mean()) ** 3).mean() / spread ** 3) if spread > 0 else 0.0
    return {"k": k, "skewness": skewness, "never_retrieved": float((counts == 0).mean()),
            "max_occurrence": int(counts.max()), "max_share": float(counts.max() / counts.sum())}
