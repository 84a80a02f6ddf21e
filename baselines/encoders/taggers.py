"""AudioSet taggers (527 logits per clip) behind one interface, with cached extraction.

Any tagger whose outputs follow the AudioSet label order fits the tag-based baselines: the
registry maps a name (`--set tagger=NAME`) to its checkpoint asset, sample rate, a loader and
the untrained architecture (for exact parameter counts without loading weights).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from baselines import assets
from baselines.audio.io import load_mono
from baselines.embedding_cache import EmbeddingCache, cached_extract, file_sha256
from benchmark.assets import get as get_asset
from benchmark.errors import LarbError

N_AUDIOSET_CLASSES = 527


@dataclass(frozen=True)
class TaggerSpec:
    """A registered AudioSet tagger: `load(checkpoint)` returns a module in eval mode mapping
    waveforms (batch, samples) at `sample_rate` to {"logits": (batch, 527), ...}."""

    name: str
    asset: str
    sample_rate: int
    preprocessing: str
    reference: str
    load: Callable[[Path], nn.Module]
    architecture: Callable[[], nn.Module]

    def parameter_count(self) -> int:
        """Parameters of the tagger, counted on the meta device (no weights loaded)."""
        with torch.device("meta"):
            return sum(p.numel() for p in self.architecture().parameters())


def _mn04() -> TaggerSpec:
    from baselines.encoders.mn04 import SAMPLE_RATE, Mn04, load_mn04

    return TaggerSpec(
        "mn04", assets.MN04, SAMPLE_RATE,
        "efficientat-logmel(128,sr=32000,win=800,hop=320,n_fft=1024,fmax=15000);whole clip;mono mean;soxr HQ",
        "Schmid, Koutini & Widmer, ICASSP 2023 (EfficientAT mn04_as, AudioSet mAP .432)",
        load_mn04, Mn04)


def _passt() -> TaggerSpec:
    from baselines.encoders.passt import ASSETS, DEFAULT_VARIANT, SAMPLE_RATE, Passt, load_passt

    return TaggerSpec(
        "passt", ASSETS[DEFAULT_VARIANT].name, SAMPLE_RATE,
        "efficientat-logmel(128,sr=32000,win=800,hop=320,n_fft=1024,fmax=15000);10 s windows, 2.5 s hop, "
        "reflect pad, mean of logits;mono mean;soxr HQ",
        "Koutini et al., Interspeech 2022 (PaSST-S SWA, stride 10, AudioSet mAP .476)",
        load_passt, Passt)


def _cnn14() -> TaggerSpec:
    from baselines.encoders.panns import CNN14_ASSET, SAMPLE_RATE, Cnn14, load_cnn14

    return TaggerSpec(
        "cnn14", CNN14_ASSET.name, SAMPLE_RATE,
        "panns-logmel(64,sr=32000,n_fft=1024,hop=320,50-14000 Hz);whole clip;pre-sigmoid logits;mono mean;soxr HQ",
        "Kong et al., IEEE/ACM TASLP 2020 (PANNs Cnn14, AudioSet mAP .431)",
        load_cnn14, Cnn14)


# Builders, so that listing names imports no model code.
Tagger = Literal["passt", "cnn14", "mn04"]
TAGGERS: dict[str, Callable[[], TaggerSpec]] = {"passt": _passt, "cnn14": _cnn14, "mn04": _mn04}


def tagger_spec(name: str) -> TaggerSpec:
    try:
        return TAGGERS[name]()
    except KeyError:
        raise LarbError(f"unknown tagger {name!r}.",
                        fix=f"use one of {sorted(TAGGERS)} (--set tagger=NAME).") from None


class TaggerFeatures:
    """AudioSet logits of audio files through one tagger, cached by file content."""

    def __init__(self, spec: TaggerSpec, device: str = "cpu", batch_size: int = 16,
                 progress: bool = True) -> None:
        self.spec = spec
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        self.cache = EmbeddingCache(f"tagger-{spec.name}", get_asset(spec.asset).checksum, spec.preprocessing)
        self._model: nn.Module | None = None
        self.last_computed = 0

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model = self.spec.load(assets.fetch(self.spec.asset)).to(self.device).eval()
        return self._model

    def logits(self, paths: Sequence[Path]) -> np.ndarray:
        """(len(paths), 527) float32 logits; only uncached files are decoded and run."""
        keys = [file_sha256(Path(p)) for p in paths]
        vectors, self.last_computed = cached_extract(
            self.cache, list(paths), keys, self._compute, self.batch_size,
            f"{self.spec.name} logits", self.progress)
        return vectors

    @torch.no_grad()
    def _compute(self, paths: list[Path]) -> np.ndarray:
        waves = [load_mono(p, self.spec.sample_rate) for p in paths]
        out = np.empty((len(waves), N_AUDIOSET_CLASSES), dtype=np.float32)
        # Equal-length clips share a forward pass; padding would change the pooled outputs.
        by_length: dict[int, list[int]] = {}
        for i, wave in enumerate(waves):
            by_length.setdefault(len(wave), []).append(i)
        for indices in by_length.values():
            batch = torch.from_numpy(np.stack([waves[i] for i in indices])).to(self.device)
            out[indices] = self.model(batch)["logits"].float().cpu().numpy()
        return out
