"""Frozen-encoder outputs cached on disk, so a second run extracts nothing.

A cache *namespace* is one (encoder, checkpoint checksum, preprocessing) triple; inside it each
vector is keyed by the sha256 of its input's content (audio file bytes, caption text), so a
renamed file is still found and an edited one is recomputed. Vectors are written in shards,
one per extraction batch, each atomically: an interrupted extraction keeps every finished
batch and the next run resumes after it.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from benchmark.assets import cache_dir
from benchmark.atomic import atomic_write_bytes, atomic_write_text

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
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        if not manifest.exists():
            atomic_write_text(manifest, json.dumps(identity, indent=1) + "\n")
        self._vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            with np.load(shard) as data:
                self._vectors.update(zip(data["keys"].tolist(), data["vectors"]))

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def get(self, key: str) -> np.ndarray:
        return self._vectors[key]

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store a batch as one new shard (atomic), and keep it in memory."""
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.asarray(keys), vectors=np.asarray(vectors, dtype=np.float32))
        atomic_write_bytes(self.folder / f"shard-{uuid.uuid4().hex}.npz", buffer.getvalue())
        self._vectors.update(zip(keys, np.asarray(vectors, dtype=np.float32)))


def cached_extract(cache: EmbeddingCache, items: Sequence[Item], keys: Sequence[str],
                   compute: Callable[[list[Item]], np.ndarray], batch_size: int, description: str,
                   progress: bool = True) -> tuple[np.ndarray, int]:
    """Vectors for `items` in order, computing only the ones whose key is not cached.

    Returns (vectors, number computed). Each batch is saved as soon as it is done.
    """
    from tqdm.auto import tqdm

    first_of: dict[str, int] = {}
    for position, key in enumerate(keys):
        first_of.setdefault(key, position)
    todo = [key for key in first_of if key not in cache]
    with tqdm(total=len(todo), desc=description, unit="item", disable=not progress or not todo,
              leave=False) as bar:
        for start in range(0, len(todo), batch_size):
            batch_keys = todo[start:start + batch_size]
            vectors = compute([items[first_of[key]] for key in batch_keys])
            cache.add(batch_keys, vectors)
            bar.update(len(batch_keys))
    return np.stack([cache.get(key) for key in keys]) if keys else np.empty((0, 0), np.float32), len(todo)
