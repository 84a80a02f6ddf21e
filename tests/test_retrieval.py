"""Chunked top-k retrieval: exact against brute force at every tiling, FAISS agrees, ensembles
average similarities."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines import retrieval
from baselines.retrieval import ensemble_embeddings, faiss_top_k, search, top_k


def _brute_force(q: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sim = q.astype(np.float64) @ c.astype(np.float64).T
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, order, axis=1), order


@settings(max_examples=80, deadline=None)
@given(n_q=st.integers(1, 40), n_c=st.integers(1, 300), dim=st.integers(1, 9), k=st.integers(1, 12),
       block_bytes=st.sampled_from([1, 64, 1000, 1 << 20]), corpus_block=st.sampled_from([1, 3, 16, 32, 4096]),
       chunk=st.sampled_from([1, 2, 4, 64]), gemm=st.sampled_from(["torch", "numpy"]), seed=st.integers(0, 2**31))
def test_top_k_equals_brute_force_at_any_tiling(n_q, n_c, dim, k, block_bytes, corpus_block, chunk, gemm, seed):
    rng = np.random.default_rng(seed)
    # Integer-valued vectors: exact scores, so any tie is a true tie, whatever the library or tiling.
    q = rng.integers(-3, 4, (n_q, dim)).astype(np.float32)
    c = rng.integers(-3, 4, (n_c, dim)).astype(np.float32)
    original = retrieval.CORPUS_BLOCK, retrieval.CHUNK
    retrieval.CORPUS_BLOCK, retrieval.CHUNK = corpus_block, chunk
    try:
        scores, indices = top_k(q, c, k, block_bytes=block_bytes, gemm=gemm)
    finally:
        retrieval.CORPUS_BLOCK, retrieval.CHUNK = original
    want_scores, want = _brute_force(q, c, k)
    assert indices.shape == scores.shape == (n_q, min(k, n_c))
    np.testing.assert_array_equal(scores, want_scores)
    # The README's tie rule: equal scores (frequent with these vectors) rank in corpus order.
    np.testing.assert_array_equal(indices, want)


def test_tiles_after_the_first_merge_only_the_chunks_that_beat_the_kth_best(monkeypatch):
    """Random vectors, many tiles: the sparse merge carries most tiles and stays exact."""
    rng = np.random.default_rng(3)
    q = rng.standard_normal((32, 16)).astype(np.float32)
    c = rng.standard_normal((20 * 4096, 16)).astype(np.float32)
    whole_row_merges = []
    for name in ("_merge_dense", "_merge_best_chunks"):
        merge = getattr(retrieval, name)
        monkeypatch.setattr(retrieval, name, lambda *a, n=name, m=merge: whole_row_merges.append(n) or m(*a))
    scores, indices = top_k(q, c, 10)
    want_scores, want = _brute_force(q, c, 10)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(indices, want)
    # the first tile or two, of 20, through each row's 10 best chunks (no NaN here: no plain top-k)
    assert 1 <= len(whole_row_merges) <= 2 and set(whole_row_merges) == {"_merge_best_chunks"}


def _slowed(multiply, seconds):
    def slow(*args):
        time.sleep(seconds)
        multiply(*args)
    return slow


@pytest.mark.parametrize("slow", ["torch", "numpy"])
def test_a_large_search_times_both_libraries_once_and_multiplies_with_the_faster(monkeypatch, slow):
    monkeypatch.setattr(retrieval, "TIME_GEMMS_FROM_SCORES", 1)
    monkeypatch.setattr(retrieval, "CORPUS_BLOCK", 100)
    monkeypatch.setattr(retrieval, "_FASTER_GEMM", {})
    monkeypatch.setitem(retrieval.GEMMS, slow, _slowed(retrieval.GEMMS[slow], 0.02))
    calls = dict.fromkeys(retrieval.GEMMS, 0)

    def counted(name, multiply):
        def count(*args):
            calls[name] += 1
            multiply(*args)
        return count

    for name, multiply in list(retrieval.GEMMS.items()):
        monkeypatch.setitem(retrieval.GEMMS, name, counted(name, multiply))
    rng = np.random.default_rng(4)
    q = rng.integers(-3, 4, (50, 8)).astype(np.float32)
    c = rng.integers(-3, 4, (700, 8)).astype(np.float32)
    scores, _ = top_k(q, c, 5, block_bytes=16 * 100 * 4)
    faster = "numpy" if slow == "torch" else "torch"
    assert retrieval._FASTER_GEMM == {(16, 8, 100, torch.get_num_threads()): faster}
    assert calls[slow] == 6  # twice one step to warm up and two timed, never in the search
    timed = dict(calls)
    top_k(q, c, 5, block_bytes=16 * 100 * 4)  # the same tile shape: not timed again
    assert calls[slow] == timed[slow] and calls[faster] == timed[faster] + 4 * 7  # 4 query blocks x 7 tiles
    np.testing.assert_array_equal(scores, _brute_force(q, c, 5)[0])


def test_merges_beside_numpy_run_on_one_thread_and_the_setting_comes_back(monkeypatch):
    seen = []
    merge = retrieval._merge_tile
    monkeypatch.setattr(retrieval, "_merge_tile", lambda *a: seen.append(torch.get_num_threads()) or merge(*a))
    rng = np.random.default_rng(5)
    q, c = rng.standard_normal((2, 40, 8)).astype(np.float32)
    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        top_k(q, c, 3, gemm="numpy")
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        top_k(q, c, 3, gemm="torch")
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(original)
    with pytest.raises(ValueError, match="auto or one of torch, numpy"):
        top_k(q, c, 3, gemm="mkl")


def test_faiss_path_returns_the_same_ranking():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((300, 32)).astype(np.float32)
    c = rng.standard_normal((2000, 32)).astype(np.float32)
    chunked_scores, chunked = top_k(q, c, 10, block_bytes=4096 * 4 * 7)
    faiss_scores, via_faiss = faiss_top_k(q, c, 10)
    np.testing.assert_array_equal(chunked, via_faiss)
    np.testing.assert_allclose(chunked_scores, faiss_scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(search(q, c, 10, "faiss")[1], chunked)


@pytest.mark.parametrize("backend", ["faiss-hnsw", "faiss-ivf"])
def test_approximate_backends_find_most_of_the_exact_top_10(backend):
    """Clustered unit vectors, as embeddings are; recall@10 = share of the exact top 10 found."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 64)).astype(np.float32)
    c = centres[rng.integers(0, 50, 20_000)] + 0.5 * rng.standard_normal((20_000, 64)).astype(np.float32)
    q = c[rng.integers(0, 20_000, 500)] + 0.3 * rng.standard_normal((500, 64)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = top_k(q, c, 10)[1]
    scores, approx = search(q, c, 10, backend)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9, recall
    assert approx.shape == (500, 10) and approx.dtype == np.int64 and (approx >= 0).all()
    np.testing.assert_allclose(np.take_along_axis(q @ c.T, approx, axis=1), scores, rtol=1e-4, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_a_nan_score_does_not_hide_the_other_files_of_its_chunk():
    rng = np.random.default_rng(1)
    c = rng.uniform(-1, 0, (9000, 4)).astype(np.float32)
    c[1] = np.nan
    best = [5, 70, 4100, 8000]
    c[best] = 2.0
    _, indices = top_k(np.ones((1, 4), np.float32), c, 4)
    assert sorted(indices[0].tolist()) == best


def test_nan_scores_neither_take_a_place_nor_break_a_later_tile():
    q = np.ones((1, 2), np.float32)
    c = np.array([[np.nan, 0], [3, 0], [2, 0], [1, 0]], np.float32)
    scores, indices = top_k(q, c, 3)
    assert indices[0].tolist() == [1, 2, 3] and scores[0].tolist() == [3, 2, 1]
    c = np.zeros((8192, 2), np.float32)
    c[:4096] = 1
    c[5000] = np.nan  # qualifies its chunk of the second tile, holds no candidate
    scores, indices = top_k(q, c, 1)
    assert (scores[0, 0], indices[0, 0]) == (2.0, 0)


def test_places_no_score_reaches_name_the_first_files_not_yet_listed(monkeypatch):
    """NaN and -inf scores tie below every other score: they fill a row in corpus order, each file once."""
    q = np.ones((2, 2), np.float32)
    q[1] = np.nan  # a query whose every score is NaN
    c = np.array([[np.nan, 0], [3, 0], [-np.inf, 0], [1, 0], [2, 0]], np.float32)
    scores, indices = top_k(torch.from_numpy(q).requires_grad_(), c, 5)  # a tensor that needs grad, too
    assert indices.tolist() == [[1, 4, 3, 0, 2], [0, 1, 2, 3, 4]]
    assert scores[0].tolist() == [3, 2, 1, -np.inf, -np.inf] and (scores[1] == -np.inf).all()
    monkeypatch.setattr(retrieval, "CORPUS_BLOCK", 2)
    wide = np.full((3, 1), -np.inf, np.float32)  # -inf scores across several tiles
    _, indices = top_k(np.ones((1, 1), np.float32), np.concatenate([wide, np.ones((1, 1), np.float32), wide]), 4)
    assert indices.tolist() == [[3, 0, 1, 2]]


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="chunked"):
        search(np.ones((1, 2)), np.ones((3, 2)), 1, "annoy")


def test_ensemble_ranks_by_the_mean_of_the_members_similarities():
    rng = np.random.default_rng(1)
    members = [(rng.standard_normal((20, d)), rng.standard_normal((50, d))) for d in (8, 8, 5)]
    queries, corpus = ensemble_embeddings(members)
    mean_similarity = np.mean([q @ c.T for q, c in members], axis=0)
    np.testing.assert_allclose(queries @ corpus.T, mean_similarity, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(top_k(queries, corpus, 10)[1], _brute_force(queries, corpus, 10)[1])
