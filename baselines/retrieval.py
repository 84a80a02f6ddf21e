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

# One score tile of 4,096 queries x 4,096 files (64 MiB): at a dim of 512 a GEMM of this shape ran at
# 0.91-0.99 of a square 4,096 GEMM here, a 1,024-query tile at 0.81-0.88 (scripts/bench_retrieval.py).
DEFAULT_BLOCK_BYTES = 64 << 20
CORPUS_BLOCK = 4096  # columns per tile
CHUNK = 64  # columns per maximum in `_merge_tile`
DENSE_SHARE = 8  # a sparse merge that would touch over 1/8 of a tile merges it the plain way


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


def _merge_tile(tile: torch.Tensor, best_s: torch.Tensor, best_i: torch.Tensor, offset: int, k: int) -> None:
    """Merge one score tile into the running top k of its rows (in place).

    A top-k of every row of every tile costs about half as much as the GEMM that made the tile.
    Instead, one pass takes the maximum of each run of CHUNK columns; only chunks whose maximum
    beats the row's current k-th best can hold new entries. Once a few tiles are merged such
    chunks are rare, so only their scores above the k-th best are gathered and merged (most of
    the cost of a top-k per row, measured by scripts/bench_retrieval.py, was in gathering whole
    chunks for rows that gain nothing). Where many chunks qualify (a query block's first tile), a
    plain top-k per row is cheaper. A score equal to the current k-th best does not displace it;
    ties within a tile are broken as torch.topk breaks them. NaN scores never enter the top k.
    """
    n_rows, width = tile.shape
    threshold = best_s[:, -1]
    if width % CHUNK:  # the corpus's last, narrower tile: the plain way
        hot_rows = (tile.amax(dim=1).nan_to_num(nan=torch.inf) > threshold).nonzero().squeeze(1)
        _merge_dense(tile, hot_rows, best_s, best_i, offset, k)
        return
    # a NaN maximum would hide its chunk's other scores: look at such chunks too
    chunked = tile.view(n_rows, width // CHUNK, CHUNK)
    maxima = chunked.amax(dim=2).nan_to_num(nan=torch.inf)
    pair_rows, pair_chunks = (maxima > threshold[:, None]).nonzero(as_tuple=True)
    if len(pair_rows) == 0:
        return
    if len(pair_rows) * CHUNK * DENSE_SHARE > tile.numel():
        _merge_dense(tile, pair_rows.unique_consecutive(), best_s, best_i, offset, k)
        return
    values = chunked[pair_rows, pair_chunks]  # whole chunks: cheap copies
    cols = pair_chunks[:, None] * CHUNK + torch.arange(CHUNK)
    above = values > threshold[pair_rows, None]
    cand_rows, cand_values, cand_cols = pair_rows[:, None].expand_as(values)[above], values[above], cols[above]
    if len(cand_rows) == 0:  # the chunks qualified by a NaN alone
        return
    # candidates come in (row, column) order: number them within their row to lay them out per row
    rows, group, per_row = cand_rows.unique_consecutive(return_inverse=True, return_counts=True)
    widest = int(per_row.max())
    if widest * len(rows) * DENSE_SHARE > tile.numel():  # one row gains much: padding would outgrow the tile
        _merge_dense(tile, rows, best_s, best_i, offset, k)
        return
    rank = torch.arange(len(cand_rows)) - (per_row.cumsum(0) - per_row)[group]
    new_s = torch.full((len(rows), widest), -torch.inf)
    new_i = torch.zeros(new_s.shape, dtype=torch.int64)
    new_s[group, rank] = cand_values
    new_i[group, rank] = cand_cols + offset
    _keep_best(rows, new_s, new_i, best_s, best_i, k)


def _merge_dense(tile: torch.Tensor, rows: torch.Tensor, best_s: torch.Tensor, best_i: torch.Tensor,
                 offset: int, k: int) -> None:
    """Merge the top k of whole tile rows `rows` (the plain way)."""
    if len(rows) == 0:
        return
    # torch.topk ranks NaN first: a NaN would take the place of a real score
    scores = (tile if len(rows) * 2 > tile.shape[0] else tile[rows]).nan_to_num(nan=-torch.inf)
    values, cols = scores.topk(min(k, tile.shape[1]), dim=1, sorted=False)
    if scores.shape[0] != len(rows):
        values, cols = values[rows], cols[rows]
    values = torch.where(values > best_s[rows, -1:], values, -torch.inf)
    _keep_best(rows, values, cols + offset, best_s, best_i, k)


def _keep_best(rows: torch.Tensor, new_s: torch.Tensor, new_i: torch.Tensor, best_s: torch.Tensor,
               best_i: torch.Tensor, k: int) -> None:
    """The k best of each row's current and new entries."""
    merged, pos = torch.cat([best_s[rows], new_s], dim=1).topk(k, dim=1)
    best_i[rows] = torch.cat([best_i[rows], new_i], dim=1).gather(1, pos)
    best_s[rows] = merged


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
                _merge_tile(tile, best_s, best_i, cs, k)
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


# Approximate search, for corpora where even the chunked exact search is too slow. Settings are
# FAISS's usual operating points; scripts/bench_retrieval.py reports their recall@10 against exact.
HNSW_NEIGHBOURS, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
IVF_PROBES = 32


def faiss_hnsw_top_k(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor,
                     k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top k through a FAISS HNSW graph (inner product); no training, slow to build."""
    import faiss

    c = np.ascontiguousarray(_as_tensor(corpus).numpy())
    q = np.ascontiguousarray(_as_tensor(queries).numpy())
    index = faiss.IndexHNSWFlat(c.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(c)
    index.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
    scores, indices = index.search(q, min(k, c.shape[0]))
    return _fill_short_rows(q, c, scores, indices.astype(np.int64))


def _fill_short_rows(q: np.ndarray, c: np.ndarray, scores: np.ndarray, indices: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Rows where an approximate index found fewer than k results (FAISS pads them with -1) are
    searched exactly instead: a -1 would otherwise name the corpus's last file."""
    short = (indices < 0).any(axis=1)
    if short.any():
        scores[short], indices[short] = top_k(q[short], c, indices.shape[1])
    return scores, indices


def faiss_ivf_top_k(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor,
                    k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top k through a FAISS inverted file: about 4 sqrt(n) k-means cells, trained on at
    most 64 points per cell (seeded), and the `IVF_PROBES` nearest cells searched."""
    import faiss

    c = np.ascontiguousarray(_as_tensor(corpus).numpy())
    q = np.ascontiguousarray(_as_tensor(queries).numpy())
    cells = max(1, min(len(c) // 39, int(4 * np.sqrt(len(c)))))  # FAISS warns below 39 points per cell
    quantizer = faiss.IndexFlatIP(c.shape[1])
    index = faiss.IndexIVFFlat(quantizer, c.shape[1], cells, faiss.METRIC_INNER_PRODUCT)
    sample = c[np.random.default_rng(seed).permutation(len(c))[:64 * cells]]
    index.cp.seed = seed
    index.train(sample)
    index.add(c)
    index.nprobe = min(IVF_PROBES, cells)
    scores, indices = index.search(q, min(k, c.shape[0]))
    return _fill_short_rows(q, c, scores, indices.astype(np.int64))


BACKENDS = {"chunked": top_k, "faiss": faiss_top_k, "faiss-hnsw": faiss_hnsw_top_k, "faiss-ivf": faiss_ivf_top_k}


def search(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor, k: int = 10,
           backend: str = "chunked") -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the configured backend: "chunked" (exact, the default), "faiss" (exact),
    "faiss-hnsw" or "faiss-ivf" (approximate)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown retrieval backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return BACKENDS[backend](queries, corpus, k)
