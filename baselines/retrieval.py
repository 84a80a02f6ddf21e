"""Top-k retrieval of every query against a corpus, in blocks, with bounded memory.

The similarity matrix is never materialised: queries and corpus are cut into blocks whose
score tile fits `block_bytes`, and each tile is merged into a running top k per query through the
maxima of its column chunks (see `_merge_tile`). Memory is O(block + queries x k) whatever the
corpus size. The tiles are multiplied by torch's or numpy's BLAS, whichever is faster here.

Score-level ensembling (mean of the members' similarities) needs no special path:
concat_m(q_m / M) . concat_m(c_m) = mean_m(q_m . c_m), so the members' embeddings are
concatenated once and searched like one model (see `ensemble_embeddings`).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

# One score tile of 4,096 queries x 8,192 files (128 MiB). At a dim of 512 numpy's OpenBLAS ran this
# shape at a median 0.97 of a square 4,096 GEMM's rate, a 4,096 x 4,096 tile at 0.94-0.95 (each
# interleaved with the square 20 times); smaller tiles merged no faster (reading a tile once is
# bound by memory, not by cache).
DEFAULT_BLOCK_BYTES = 128 << 20
CORPUS_BLOCK = 8192  # columns per tile
CHUNK = 64  # columns per maximum in `_merge_tile`
DENSE_SHARE = 8  # a sparse merge that would touch over 1/8 of a tile merges it the plain way
# A search of fewer scores (256 tiles of 4,096 x 8,192) multiplies with torch: timing both libraries
# (`choose_gemm`, 12 tiles' work) would cost more than it can save.
TIME_GEMMS_FROM_SCORES = 1 << 33


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, np.ndarray) and min(x.strides, default=0) < 0:  # torch takes no negative strides
        x = np.ascontiguousarray(x)
    return torch.as_tensor(x, dtype=torch.float32).detach()


def _torch_gemm(queries: torch.Tensor, corpus: torch.Tensor, out: torch.Tensor) -> None:
    torch.mm(queries, corpus.T, out=out)


def _numpy_gemm(queries: torch.Tensor, corpus: torch.Tensor, out: torch.Tensor) -> None:
    np.matmul(queries.numpy(), corpus.numpy().T, out=out.numpy())


# The libraries that can multiply a score tile. Which is faster depends on the machine: on this AMD
# EPYC numpy's bundled OpenBLAS ran a 4,096 x 512 x 4,096 tile at 184-196 GFLOP/s and torch's MKL,
# which does not use its best kernels on non-Intel CPUs, at 141-173; on other machines of this kind
# numpy's OpenBLAS has been seen to pick an old kernel and run about 6x slower than torch. So a
# large search times both.
GEMMS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]] = {
    "torch": _torch_gemm, "numpy": _numpy_gemm}
# the faster library per (query block, dim, corpus block, torch threads), timed once per process
_FASTER_GEMM: dict[tuple[int, int, int, int], str] = {}
_TORCH_THREADS = threading.Lock()  # torch's thread count is one setting for the whole process


@contextmanager
def _torch_threads_beside(gemm: str) -> Iterator[None]:
    """Around the multiplications and merges of a search: beside numpy's GEMM torch runs on one
    thread. OpenBLAS's idle workers spin for a while after each product, and torch's second thread
    then fought them for the cores (a search ran at 166 GFLOP/s with two merge threads, 177 with
    one, its GEMM alone at 191). Searches through numpy in several Python threads take turns."""
    if gemm != "numpy":
        yield
        return
    with _TORCH_THREADS:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def tile_shape(n_q: int, n_c: int, block_bytes: int = DEFAULT_BLOCK_BYTES) -> tuple[int, int]:
    """(queries, files) per score tile of a search of `n_q` queries against `n_c` files."""
    corpus_block = min(n_c, CORPUS_BLOCK)
    return max(1, min(n_q, block_bytes // (4 * corpus_block))), corpus_block


def choose_gemm(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor,
                block_bytes: int = DEFAULT_BLOCK_BYTES) -> str:
    """The library `top_k(gemm="auto")` multiplies this search's tiles with: the faster here, timed
    once per process and tile shape; "torch" for a search too small to be worth timing."""
    q, c = _as_tensor(queries), _as_tensor(corpus)
    if q.shape[0] * c.shape[0] < TIME_GEMMS_FROM_SCORES:
        return "torch"
    query_block, corpus_block = tile_shape(q.shape[0], c.shape[0], block_bytes)
    key = (query_block, q.shape[1], corpus_block, torch.get_num_threads())
    if key not in _FASTER_GEMM:
        _FASTER_GEMM[key] = _time_gemms(q[:query_block].contiguous(), c[:corpus_block].contiguous())
    return _FASTER_GEMM[key]


def _time_gemms(q_blk: torch.Tensor, c_blk: torch.Tensor) -> str:
    """Time a search's usual step through each library: multiply a tile, then read it once, as the
    merge of a tile that gains nothing does. (Whole merges would time the first tiles' plain top-k,
    rare in a search large enough to be timed.) Each library runs one step to warm up (the other
    library's threads still spin for a while after it stops), then two timed; in the order A B B A,
    so that a machine's drift in rate favours neither; the median step of each decides, so that one
    preempted step does not."""
    tile = torch.empty(q_blk.shape[0], c_blk.shape[0])
    steps: dict[str, list[float]] = {name: [] for name in GEMMS}
    with torch.inference_mode():
        for name in [*GEMMS, *reversed(GEMMS)]:
            with _torch_threads_beside(name):
                for step in range(3):
                    start = time.perf_counter()
                    GEMMS[name](q_blk, c_blk, tile)
                    tile.amax(dim=1)
                    if step:
                        steps[name].append(time.perf_counter() - start)
    return min(steps, key=lambda name: statistics.median(steps[name]))


def _merge_tile(tile: torch.Tensor, best_s: torch.Tensor, best_i: torch.Tensor, offset: int, k: int) -> None:
    """Merge one score tile into the running top k of its rows (in place).

    A top-k of every row of every tile costs about half as much as the GEMM that made the tile.
    Instead, one pass takes the maximum of each run of CHUNK columns; only chunks whose maximum
    beats the row's current k-th best can hold new entries. Once a few tiles are merged such
    chunks are rare, so only their scores above the k-th best are gathered and merged (most of
    the cost of a top-k per row, measured by scripts/bench_retrieval.py, was in gathering whole
    chunks for rows that gain nothing). Where many chunks qualify (a query block's first tile), a
    row's top k comes from its k chunks of largest maxima (on a 4,096 x 4,096 tile, one thread:
    30 ms, a plain top-k of its rows 100 ms; that is kept for tiles with NaN scores or fewer
    chunks than k). Equal scores rank in corpus order (README's tie rule): tiles come in corpus
    order, so a score equal to the current k-th best names a later file and does not displace it;
    within a tile, see `_tie_exact` and `_keep_best`. NaN scores never enter the top k.
    """
    n_rows, width = tile.shape
    threshold = best_s[:, -1]
    if width % CHUNK:  # the corpus's last, narrower tile: the plain way
        hot_rows = (tile.amax(dim=1).nan_to_num(nan=torch.inf) > threshold).nonzero().squeeze(1)
        _merge_dense(tile, hot_rows, best_s, best_i, offset, k)
        return
    chunked = tile.view(n_rows, width // CHUNK, CHUNK)
    maxima = chunked.amax(dim=2)
    # A NaN maximum would hide its chunk's other scores: "not <=" looks at such chunks too. Rows
    # first: late in a search few rows gain anything, and comparing only theirs saves most of the
    # merge's work beside the pass that takes the maxima.
    rows = (~(maxima.amax(dim=1) <= threshold)).nonzero().squeeze(1)
    if len(rows) == 0:
        return
    row_maxima = maxima if len(rows) == n_rows else maxima[rows]
    pair_of, pair_chunks = (~(row_maxima <= threshold[rows, None])).nonzero(as_tuple=True)
    pair_rows = rows[pair_of]
    if len(pair_rows) * CHUNK * DENSE_SHARE > tile.numel():
        if k <= maxima.shape[1] and not maxima.isnan().any():
            _merge_best_chunks(chunked, maxima, rows, best_s, best_i, offset, k)
        else:
            _merge_dense(tile, rows, best_s, best_i, offset, k)
        return
    values = chunked[pair_rows, pair_chunks]  # whole chunks: cheap copies
    pair, within = (values > threshold[pair_rows, None]).nonzero(as_tuple=True)  # one nonzero, not a mask each
    if len(pair) == 0:  # the chunks qualified by a NaN alone
        return
    cand_rows, cand_values = pair_rows[pair], values[pair, within]
    cand_cols = pair_chunks[pair] * CHUNK + within
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


def _merge_best_chunks(chunked: torch.Tensor, maxima: torch.Tensor, rows: torch.Tensor, best_s: torch.Tensor,
                       best_i: torch.Tensor, offset: int, k: int) -> None:
    """Merge the top k of tile rows `rows` from their k chunks of largest maxima (no NaN among them):
    k chunks reach the k-th largest maximum, so the row's k-th best score does too, and any score
    that beats it lies in one of those chunks. A score equal to the k-th best may lie in another
    chunk, or be left out among the chosen: such rows are redone by `_tie_exact`."""
    row_maxima = maxima[rows]
    chunks = row_maxima.topk(k, dim=1, sorted=False).indices
    chosen = chunked[rows[:, None], chunks].view(len(rows), -1)
    values, pos = chosen.topk(k, dim=1, sorted=False)
    cols = chunks.gather(1, pos // CHUNK) * CHUNK + pos % CHUNK
    # Another score equal to the k-th best lies among the chosen chunks' other scores, or in a chunk
    # whose maximum equals it (any other chunk's maximum is below it).
    kth = values.amin(dim=1, keepdim=True)
    tied = ((chosen >= kth).sum(dim=1) > k) | ((row_maxima >= kth).sum(dim=1) > k)
    values, cols = _tie_exact(chunked.view(chunked.shape[0], -1), rows, tied, values, cols)
    values = torch.where(values > best_s[rows, -1:], values, -torch.inf)
    _keep_best(rows, values, cols + offset, best_s, best_i, k)


def _merge_dense(tile: torch.Tensor, rows: torch.Tensor, best_s: torch.Tensor, best_i: torch.Tensor,
                 offset: int, k: int) -> None:
    """Merge the top k of whole tile rows `rows` (the plain way)."""
    if len(rows) == 0:
        return
    # torch.topk ranks NaN first: a NaN would take the place of a real score
    scores = tile[rows].nan_to_num_(nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)  # infinities stay themselves
    values, cols = scores.topk(min(k, tile.shape[1]), dim=1, sorted=False)
    tied = (scores >= values.amin(dim=1, keepdim=True)).sum(dim=1) > values.shape[1]
    values, cols = _tie_exact(scores, torch.arange(len(rows)), tied, values, cols)
    values = torch.where(values > best_s[rows, -1:], values, -torch.inf)
    _keep_best(rows, values, cols + offset, best_s, best_i, k)


def _tie_exact(scores: torch.Tensor, rows: torch.Tensor, tied: torch.Tensor, values: torch.Tensor,
               cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A tile's top k (`values`, `cols`) of rows `rows` of `scores`, with equal scores in column order.

    torch.topk breaks ties arbitrarily; where a row's k-th best is tied with a score it left out
    (`tied`), the row's top k is taken again by a stable sort of the whole row (rare: exact ties).
    The entries come back in column order, as `_keep_best` needs them."""
    redo = tied.nonzero().squeeze(1)
    if len(redo):
        values, cols = values.clone(), cols.clone()
        values[redo], cols[redo] = (
            part[:, :values.shape[1]] for part in scores[rows[redo]].sort(dim=1, descending=True, stable=True))
    cols, order = cols.sort(dim=1)
    return values.gather(1, order), cols


def _keep_best(rows: torch.Tensor, new_s: torch.Tensor, new_i: torch.Tensor, best_s: torch.Tensor,
               best_i: torch.Tensor, k: int) -> None:
    """The k best of each row's current and new entries, equal scores in corpus order.

    The current entries are in that order already and name earlier files than the new ones (tiles
    come in corpus order), and each row's new entries come in column order, then padding: side by
    side, a stable sort puts equal scores in corpus order."""
    merged, pos = torch.cat([best_s[rows], new_s], dim=1).sort(dim=1, descending=True, stable=True)
    best_i[rows] = torch.cat([best_i[rows], new_i], dim=1).gather(1, pos[:, :k])
    best_s[rows] = merged[:, :k]


def top_k(queries: np.ndarray | torch.Tensor, corpus: np.ndarray | torch.Tensor, k: int = 10,
          block_bytes: int = DEFAULT_BLOCK_BYTES, gemm: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices), each (n_queries, k), best first, by inner product.

    `k` is capped at the corpus size. One score tile of at most `block_bytes` is allocated
    once and reused (fresh large allocations cost page faults on every tile). `gemm` names the
    library that multiplies ("torch" or "numpy"); "auto" takes the faster one here for a large
    search (`choose_gemm`; the two round differently in the last bits, so near-ties may order
    differently). numpy multiplies contiguous blocks only: it copies a non-contiguous input whole.
    """
    if gemm != "auto" and gemm not in GEMMS:
        raise ValueError(f"unknown gemm {gemm!r}; use auto or one of {', '.join(GEMMS)}")
    q, c = _as_tensor(queries), _as_tensor(corpus)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"queries {tuple(q.shape)} and corpus {tuple(c.shape)} must be 2-D with one dim")
    n_q, n_c = q.shape[0], c.shape[0]
    k = min(k, n_c)
    scores = np.empty((n_q, k), dtype=np.float32)
    indices = np.empty((n_q, k), dtype=np.int64)
    if n_q == 0 or k == 0:
        return scores, indices
    if gemm == "auto":
        gemm = choose_gemm(q, c, block_bytes)
    if gemm == "numpy":  # numpy hands only contiguous blocks to BLAS (others go through a slow loop)
        q, c = q.contiguous(), c.contiguous()
    query_block, corpus_block = tile_shape(n_q, n_c, block_bytes)
    tile_buffer = torch.empty(query_block * corpus_block)
    multiply = GEMMS[gemm]
    with torch.inference_mode(), _torch_threads_beside(gemm):
        for qs in range(0, n_q, query_block):
            q_blk = q[qs:qs + query_block]
            best_s = torch.full((q_blk.shape[0], k), -torch.inf)
            best_i = torch.zeros((q_blk.shape[0], k), dtype=torch.int64)
            for cs in range(0, n_c, corpus_block):
                c_blk = c[cs:cs + corpus_block]
                # a contiguous tile, also for the last, narrower blocks (numpy's BLAS path needs it)
                tile = tile_buffer[:q_blk.shape[0] * c_blk.shape[0]].view(q_blk.shape[0], c_blk.shape[0])
                multiply(q_blk, c_blk, tile)
                _merge_tile(tile, best_s, best_i, cs, k)
            scores[qs:qs + q_blk.shape[0]] = best_s.numpy()
            indices[qs:qs + q_blk.shape[0]] = best_i.numpy()
    _fill_empty_places(scores, indices)
    return scores, indices


def _fill_empty_places(scores: np.ndarray, indices: np.ndarray) -> None:
    """Places that no score above -inf reached (NaN and -inf scores never enter a top k) name no file
    yet, or one twice: they get the first files in corpus order that their row does not list, the
    order in which such scores tie, and keep the score -inf (in place)."""
    for row in np.flatnonzero(np.isneginf(scores[:, -1])):
        listed = int(np.count_nonzero(scores[row] > -np.inf))  # best first: the real places lead
        taken = set(indices[row, :listed].tolist())
        unlisted = [i for i in range(listed + scores.shape[1]) if i not in taken]
        indices[row, listed:] = unlisted[:scores.shape[1] - listed]


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
