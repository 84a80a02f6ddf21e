"""Frozen-encoder outputs cached on disk, so a second run extracts nothing.

A cache *namespace* is one (encoder, checkpoint checksum, preprocessing) triple; inside it each
vector is keyed by the sha256 of its input's content (audio file bytes, caption text), so a
renamed file is still found and an edited one is recomputed. Vectors are written in shards,
one per extraction batch, each atomically and named by the sha256 of its bytes: an interrupted
extraction keeps every finished batch and the next run resumes after it. A shard that does not
hash to its name, or holds the wrong shape, dtype or non-finite values, is set aside (`*.bad`,
named in a warning) and its vectors computed again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from baselines import distributed
from benchmark.assets import cache_dir
from benchmark.atomic import atomic_write_bytes, atomic_write_text, os_faults
from benchmark.errors import LarbError

log = logging.getLogger("larb.baselines")

Item = TypeVar("Item")
_READ_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors of one encoder configuration, keyed by content hash."""

    def __init__(self, encoder: str, checkpoint: str, preprocessing: str, root: Path | None = None) -> None:
        identity = {"encoder": encoder, "checkpoint": checkpoint, "preprocessing": preprocessing}
        namespace = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder)
        self.folder = (root or cache_dir() / "embeddings") / f"{safe}-{namespace}"
        with os_faults(self.folder, doing="preparing the embedding cache"):
            self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        if not manifest.exists():
            atomic_write_text(manifest, json.dumps(identity, indent=1) + "\n")
        self._vectors: dict[str, np.ndarray] = {}
        self._read: set[str] = set()
        self.width: int | None = None
        self.refresh()

    def refresh(self) -> None:
        """Read the shards written since this cache was opened (by other processes, too)."""
        for shard in sorted(self.folder.glob("shard-*.npz")):
            if shard.name in self._read:
                continue
            loaded = self._read_shard(shard)
            if loaded is None:
                set_aside(shard)
                continue
            self._read.add(shard.name)
            self._vectors.update(zip(*loaded, strict=True))

    def _read_shard(self, shard: Path) -> tuple[list[str], np.ndarray] | None:
        """A shard's (keys, vectors) when it is whole and sane, else None (it is then recomputed)."""
        try:
            data = shard.read_bytes()
            if shard.stem != f"shard-{hashlib.sha256(data).hexdigest()}":
                return None
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                keys, vectors = arrays["keys"], arrays["vectors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        if (vectors.dtype != np.float32 or vectors.ndim != 2 or keys.ndim != 1 or len(keys) != len(vectors)
                or (self.width is not None and vectors.shape[1] != self.width)
                or not np.isfinite(vectors).all()):
            return None
        self.width = vectors.shape[1]
        return keys.tolist(), vectors

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def get(self, key: str) -> np.ndarray:
        return self._vectors[key]

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store a batch as one new shard (atomic), named by its sha256, and keep it in memory.

        Vectors that are not finite, or not as wide as the cached ones, are refused: a cache of
        NaNs would silently give a worse submission on every later run."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"expected {len(keys)} vectors in a 2-D array, got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise LarbError(f"the encoder gave non-finite values (NaN or inf) for {len(keys)} inputs; nothing "
                            "was cached.", path=self.folder,
                            fix="check the model weights and inputs (a corrupt checkpoint or silent audio "
                                "with a log of zero), then run again.")
        if self.width is not None and vectors.shape[1] != self.width:
            raise ValueError(f"vectors of width {vectors.shape[1]} in a cache of width {self.width}")
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.asarray(keys), vectors=vectors)
        data = buffer.getvalue()
        name = f"shard-{hashlib.sha256(data).hexdigest()}.npz"
        atomic_write_bytes(self.folder / name, data)
        self._read.add(name)
        self.width = vectors.shape[1]
        self._vectors.update(zip(keys, vectors, strict=True))


def set_aside(shard: Path) -> None:
    """Rename a bad shard to `*.bad` (kept for inspection, never read again) and say so."""
    bad = shard.with_suffix(".npz.bad")
    log.warning("%s is truncated, corrupt or inconsistent with its cache; set aside as %s, its vectors are "
                "computed again", shard, bad.name)
    with os_faults(shard, doing="setting a bad cache shard aside"):
        try:
            os.replace(shard, bad)
        except FileNotFoundError:  # another process of the same launch set it aside first
            pass


def cached_extract(cache: EmbeddingCache, items: Sequence[Item], keys: Sequence[str],
                   compute: Callable[[list[Item]], np.ndarray], batch_size: int, description: str,
                   progress: bool = True) -> tuple[np.ndarray, int]:
    """Vectors for `items` in order, computing only the ones whose key is not cached.

    Returns (vectors, number computed). Each batch is saved as soon as it is done. Under a
    launcher that started several processes, the batches are dealt round-robin (batch b to rank
    b mod N), so each batch is computed once, by one process, with exactly the inputs a single
    process would give it: the shards are the same files. Every process then reads the others'
    shards. An interrupted run keeps its finished batches; the next one computes the rest.
    """
    from tqdm.auto import tqdm

    world = distributed.world_size()
    if world > 1:  # everyone sees the same cache before deciding what is left to do
        distributed.wait_for_everyone()
        cache.refresh()
        distributed.wait_for_everyone()
    first_of: dict[str, int] = {}
    for position, key in enumerate(keys):
        first_of.setdefault(key, position)
    todo = [key for key in first_of if key not in cache]
    batches = [todo[start:start + batch_size] for start in range(0, len(todo), batch_size)]
    mine = batches[distributed.rank()::world] if world > 1 else batches
    # disable=None: tqdm itself stays quiet when stderr is not a terminal (logs, CI, pipes).
    with tqdm(total=sum(map(len, mine)), desc=description, unit="item", disable=None if progress and mine else True,
              leave=False) as bar:
        for batch_keys in mine:
            vectors = compute([items[first_of[key]] for key in batch_keys])
            cache.add(batch_keys, vectors)
            bar.update(len(batch_keys))
    if world > 1:
        distributed.wait_for_everyone()
        cache.refresh()
        missing = sum(key not in cache for key in first_of)
        if missing:
            raise LarbError(f"{missing} vectors computed by other processes are not in this process's cache "
                            "folder.", path=cache.folder,
                            fix="on several machines, point LARB_CACHE_DIR at a folder all of them share "
                                "(and the run's --output too).")
    return np.stack([cache.get(key) for key in keys]) if keys else np.empty((0, 0), np.float32), len(todo)
