"""Audio files by id, decoded and resampled once into the cache (int16 .npy), then memory-mapped;
fixed-length random crops; synthetic tones for the contract check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from baselines.audio.io import load_mono
from baselines.embedding_cache import file_sha256
from benchmark.assets import cache_dir
from benchmark.atomic import atomic_write_bytes

_INT16 = 32767.0


class ClipStore:
    """Audio files by integer id, read as mono float32 at `sample_rate` (decoded once, then cached).

    Picklable (paths and hashes only), so data-loader workers can read from it.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.paths: list[Path] = []
        self.keys: list[str] = []
        self._ids: dict[str, int] = {}
        self._folder: Path | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = cache_dir() / "waveforms" / str(self.sample_rate)
        return self._folder

    def register(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Ids of `paths` (int64), adding the new ones; a file's cache key is its content hash."""
        ids = []
        for path in paths:
            where = str(Path(path).resolve())
            if where not in self._ids:
                self._ids[where] = len(self.paths)
                self.paths.append(Path(path))
                self.keys.append(file_sha256(Path(path)))
            ids.append(self._ids[where])
        _ = self.folder  # fixed when the first files are registered
        return torch.tensor(ids, dtype=torch.long)

    def _cached(self, clip: int) -> Path:
        return self.folder / f"{self.keys[clip]}.npy"

    def waveform(self, clip: int) -> np.ndarray:
        """The clip's samples (int16 scale, memory-mapped when cached)."""
        cached = self._cached(clip)
        if cached.exists():
            return np.load(cached, mmap_mode="r")
        samples = load_mono(self.paths[clip], self.sample_rate)
        pcm = np.round(np.clip(samples, -1.0, 1.0) * _INT16).astype(np.int16)
        import io

        buffer = io.BytesIO()
        np.save(buffer, pcm)
        atomic_write_bytes(cached, buffer.getvalue())
        return pcm

    def prepare(self, ids: Sequence[int], progress: bool = True) -> None:
        """Decode and cache every clip of `ids` now (before data-loader workers start)."""
        from tqdm.auto import tqdm

        todo = sorted({int(i) for i in ids if not self._cached(int(i)).exists()})
        for clip in tqdm(todo, desc=f"audio at {self.sample_rate} Hz", unit="file",
                         disable=None if progress and todo else True, leave=False):
            self.waveform(clip)

    def fixed(self, clip: int, samples: int, rng: np.random.Generator | None) -> tuple[np.ndarray, float]:
        """`samples` samples of the clip: a random crop (with `rng`) or its start; zero-padded when
        shorter. Returns (float32 samples, share of them that is real audio)."""
        wave = self.waveform(clip)
        if len(wave) > samples:
            start = int(rng.integers(0, len(wave) - samples + 1)) if rng is not None else 0
            return np.asarray(wave[start:start + samples], dtype=np.float32) / _INT16, 1.0
        out = np.zeros(samples, dtype=np.float32)
        out[:len(wave)] = np.asarray(wave, dtype=np.float32) / _INT16
        return out, len(wave) / samples

    def batch(self, ids: Sequence[int], samples: int, rng: np.random.Generator | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(waveforms (batch, samples), real-audio fractions (batch,))."""
        pairs = [self.fixed(int(i), samples, rng) for i in ids]
        waves = torch.from_numpy(np.stack([w for w, _ in pairs])) if pairs else torch.empty(0, samples)
        return waves, torch.tensor([f for _, f in pairs], dtype=torch.float32)


def synthetic_tones(audio_ids: torch.Tensor, samples: int, sample_rate: int, generator: torch.Generator
                    ) -> torch.Tensor:
    """Contract-check input: one clip per audio id, a tone (log-spaced 200 Hz - 4 kHz) with a little
    noise, so that clips differ in a way SpecAugment and dropout cannot erase."""
    n = int(audio_ids.max()) + 1
    frequencies = torch.logspace(math.log10(200.0), math.log10(4000.0), max(n, 2))[:n]
    t = torch.arange(samples) / sample_rate
    clips = 0.3 * torch.sin(2 * math.pi * frequencies[:, None] * t[None, :])
    clips = clips + 0.01 * torch.randn(clips.shape, generator=generator)
    return clips[audio_ids]
