"""Embedding-space diagnostics against the CS224N report's reference rows (Table 3) and their known
readings, Wang and Isola's measures, the modality gap, effective rank, and hubness of rankings."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.embedding_space import (
    alignment,
    effective_rank,
    hubness,
    modality_gap,
    point_uniformity,
    uniformity,
    voxel_uniformity,
)


def uniform_set(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 512))


def gaussian_mixture(n: int, seed: int = 0) -> np.ndarray:
    """10 Gaussians of variance 1/10, centroids drawn uniformly in [-1, 1]^512 (the report's recipe
    leaves where the centroids lie open)."""
    rng = np.random.default_rng(seed)
    centroids = rng.uniform(-1.0, 1.0, (10, 512))
    return centroids[rng.integers(0, 10, n)] + rng.normal(0.0, np.sqrt(0.1), (n, 512))


def test_the_uniform_reference_row_is_reproduced_on_eight_random_dimensions():
    # report, Table 3: uniform sigma 0.19, h 4.13 (batch of 64; h grows with the set size)
    assert point_uniformity(uniform_set(64)) == pytest.approx(0.19, abs=0.02)
    assert voxel_uniformity(uniform_set(64)) == pytest.approx(3.99, abs=0.05)
    assert voxel_uniformity(uniform_set(96)) == pytest.approx(4.33, abs=0.05)
    assert voxel_uniformity(uniform_set(76)) == pytest.approx(4.13, abs=0.1)
    # on all 512 dimensions nearest-neighbour distances concentrate: not the report's reading
    assert point_uniformity(uniform_set(64), dims=512, repeats=1) < 0.05


def test_a_gaussian_mixture_is_less_uniform_than_the_uniform_set():
    # report: sigma 0.35, h about 2.8; measured with uniformly drawn centroids: sigma 0.23-0.24, h 3.4-3.5
    for seed in range(3):
        mixture = gaussian_mixture(64, seed)
        assert 0.21 < point_uniformity(mixture) < 0.26
        assert voxel_uniformity(mixture) < voxel_uniformity(uniform_set(64, seed)) - 0.3


def test_collapsed_and_spread_sets_order_every_measure():
    rng = np.random.default_rng(1)
    spread = rng.normal(size=(200, 32))
    collapsed = np.tile(rng.normal(size=(1, 32)), (200, 1)) + 0.01 * rng.normal(size=(200, 32))
    assert uniformity(spread) < uniformity(collapsed)  # lower is more uniform
    assert voxel_uniformity(spread) > voxel_uniformity(collapsed)
    assert effective_rank(spread) > 20 and effective_rank(collapsed) < 2
    assert alignment(spread, spread) == pytest.approx(0.0, abs=1e-12)
    assert alignment(spread, -spread) == pytest.approx(4.0)
    assert modality_gap(spread, spread) == pytest.approx(0.0, abs=1e-12)
    shifted = spread + 10.0 * np.eye(32)[0]  # every text vector pushed towards one direction
    assert modality_gap(spread, shifted) > 0.5


def test_hubness_counts_how_often_each_file_crowds_the_top_k():
    n_queries, n_corpus = 100, 50
    rotating = np.array([[(q + r) % n_corpus for r in range(10)] for q in range(n_queries)])
    even = hubness(rotating, n_corpus)
    assert even["skewness"] == pytest.approx(0.0, abs=1e-12) and even["never_retrieved"] == 0.0
    assert even["max_occurrence"] == 20 and even["max_share"] == pytest.approx(20 / 1000)
    hub = rotating.copy()
    hub[:, 0] = 49  # one file in every query's top 10
    hub[:, 1:] = np.array([[r for r in range(9)] for _ in range(n_queries)])
    crowded = hubness(hub, n_corpus)
    assert crowded["max_occurrence"] == n_queries and crowded["skewness"] > 1.0
    assert crowded["never_retrieved"] == pytest.approx(40 / 50)
