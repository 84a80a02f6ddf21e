"""Top-k retrieval of every query against a corpus, in blocks, with bounded memory.

The similarity matrix is never materialised: queries and corpus are cut into blocks whose
score tile fits `block_bytes`, each tile is reduced to its own top k, and a running top k per
query is merged tile by tile. Memory is O(block + queries x k) whatever the corpus size.

Score-level ensembling (mean of the members' similarities) needs no special path:
concat_m(q_m / M) . concat_m(c_m) = mean_m(q_m . c_m), so the members' embeddings are
concatenated once and searched like one model (see `ensemble_embeddings`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DEFAULT_BLOCK_BYTES = 128 << 20
CORPUS_BLOCK = 4096  # columns per tile: short enough for cache-friendly top-k, long enough for GEMM


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


def top_k(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor, k: int = 10,
          block_bytes: int = DEFAULT_BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices), each (n_queries, k), best first, by inner product.

    `k` is capped at the corpus size. One score tile of at most `block_bytes` is allocated
    once and reused (fresh large allocations cost page faults on every tile).
    """
    q, c = _as_tensor(queries), _as_tensor(corpus)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"queries {tuple(q.shape)} and corpus {tuple(c.shape)} must be 2-D with one dim")
    n_q, n_c = q.shape[0], c.shape[0]
    k = min(k, n_c)
    scores = np.empty((n_q, k), dtype=np.float32)
    indices = np.empty((n_q, k), dtype=np.int64)
    if n_q == 0 or k == 0:
        return scores, indices
    corpus_block = min(n_c, CORPUS_BLOCK)
    query_block = max(1, min(n_q, block_bytes // (4 * corpus_block)))
    tile_buffer = torch.empty(query_block, corpus_block)
    with torch.inference_mode():
        for qs in range(0, n_q, query_block):
            q_blk = q[qs:qs + query_block]
            best_s = torch.full((q_blk.shape[0], k), -torch.inf)
            best_i = torch.zeros((q_blk.shape[0], k), dtype=torch.int64)
            for cs in range(0, n_c, corpus_block):
                c_blk = c[cs:cs + corpus_block]
                tile = tile_buffer[:q_blk.shape[0], :c_blk.shape[0]]
                torch.mm(q_blk, c_blk.T, out=tile)
                s, i = tile.topk(min(k, tile.shape[1]), dim=1)
                best_s, pos = torch.cat([best_s, s], dim=1).topk(k, dim=1)
                best_i = torch.cat([best_i, i + cs], dim=1).gather(1, pos)
            scores[qs:qs + q_blk.shape[0]] = best_s.numpy()
            indices[qs:qs + q_blk.shape[0]] = best_i.numpy()
    return scores, indices


def faiss_top_k(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor,
                k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The same search through FAISS `IndexFlatIP` (exact), for very large corpora."""
    import faiss

    c = np.ascontiguousarray(_as_tensor(corpus).numpy())
    q = np.ascontiguousarray(_as_tensor(queries).numpy())
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    scores, indices = index.search(q, min(k, c.shape[0]))
    return scores, indices.astype(np.int64)


def ensemble_embeddings(members: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(queries, corpus) whose inner products are the mean of the members' similarities."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    weight = 1.0 / len(members)
    queries = np.concatenate([np.asarray(q, np.float32) * weight for q, _ in members], axis=1)
    corpus = np.concatenate([np.asarray(c, np.float32) for _, c in members], axis=1)
    return queries, corpus


def search(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor, k: int = 10,
           backend: str = "chunked") -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the configured backend: "chunked" (default) or "faiss"."""
    if backend == "chunked":
        return top_k(queries, corpus, k)
    if backend == "faiss":
        return faiss_top_k(queries, corpus, k)
    raise ValueError(f"unknown retrieval backend {backend!r}; use 'chunked' or 'faiss'")
