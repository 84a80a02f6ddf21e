"""Any model through one protocol: an object that embeds waveforms and texts into one space.

    class MyModel:
        name = "my-model-v1"        # the embedding cache key: change it when weights or code change
        sample_rate = 32_000        # the rate `encode_audio` expects
        def encode_audio(self, waveforms: list[np.ndarray]) -> np.ndarray: ...   # n x d
        def encode_text(self, texts: list[str]) -> np.ndarray: ...               # n x d

Waveforms are mono float32 arrays at `sample_rate`, one per file and of their own lengths (read
and resampled as `baselines.audio.io.load_mono` does: channel mean, soxr HQ). LARB l2-normalises
both outputs, so the similarity is the cosine, and caches every vector by content hash under the
model's `name`, so a second run embeds nothing. This module needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from baselines.audio.io import load_mono
from baselines.embedding_cache import EmbeddingCache, cached_extract, file_sha256, text_sha256
from benchmark.errors import LarbError
from benchmark.tasks import Task

PROTOCOL_PREPROCESSING = "larb-model-protocol/1;mono mean;soxr HQ"


@runtime_checkable
class EncoderModel(Protocol):
    name: str
    sample_rate: int

    def encode_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray: ...

    def encode_text(self, texts: Sequence[str]) -> np.ndarray: ...


def check_model(model: Any, source: str = "the model") -> EncoderModel:
    """`model` if it follows the protocol, else one error naming what is missing."""
    missing = [attr for attr in ("name", "sample_rate", "encode_audio", "encode_text") if not hasattr(model, attr)]
    if missing:
        raise LarbError(f"{source} ({type(model).__name__}) lacks {', '.join(missing)}.",
                        fix="give it name, sample_rate, encode_audio(waveforms) and encode_text(texts) "
                            "(see 'Evaluate your model' in the README).")
    if not isinstance(model.name, str) or not model.name.strip():
        raise LarbError(f"{source}: name must be a non-empty string (it keys the embedding cache).",
                        fix="set name, e.g. 'my-model-v1'.")
    if not isinstance(model.sample_rate, int) or isinstance(model.sample_rate, bool) or model.sample_rate <= 0:
        raise LarbError(f"{source}: sample_rate must be a positive int, not {model.sample_rate!r}.",
                        fix="set sample_rate, e.g. 32000.")
    return model


def _vectors(output: Any, expected: int, what: str, model: EncoderModel) -> np.ndarray:
    """A model's output checked: n x d finite numbers, n the number of inputs."""
    if hasattr(output, "detach"):  # a torch tensor, without importing torch here
        output = output.detach().float().cpu().numpy()
    vectors = np.asarray(output, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != expected:
        raise LarbError(f"{model.name}.{what} returned shape {vectors.shape} for {expected} inputs.",
                        fix=f"return one row per input: an array of shape ({expected}, d).")
    if not np.isfinite(vectors).all():
        raise LarbError(f"{model.name}.{what} returned NaN or infinite values.", fix="check the model's inputs.")
    return vectors


def _same_width(vectors: np.ndarray, cache: EmbeddingCache, model: EncoderModel) -> np.ndarray:
    if cache.width is not None and vectors.shape[1] != cache.width:
        raise LarbError(f"{model.name} now gives {vectors.shape[1]}-d vectors; its cache holds {cache.width}-d ones "
                        "from an earlier version.", path=cache.folder,
                        fix="give a changed model a new name (the name keys the cache).")
    return vectors


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ProtocolEmbeddings:
    """A model's audio and text vectors through the embedding cache, checked and l2-normalised."""

    def __init__(self, model: EncoderModel, batch_size: int = 16, progress: bool = True) -> None:
        self.model = check_model(model)
        self.batch_size = batch_size
        self.progress = progress
        self.audio_cache = EmbeddingCache(f"model-{model.name}-audio", "", f"{PROTOCOL_PREPROCESSING};"
                                          f"sr={model.sample_rate}")
        self.text_cache = EmbeddingCache(f"model-{model.name}-text", "", PROTOCOL_PREPROCESSING)

    def audio(self, paths: Sequence[Any]) -> np.ndarray:
        def compute(batch: list[Any]) -> np.ndarray:
            waves = [load_mono(path, self.model.sample_rate) for path in batch]
            vectors = _vectors(self.model.encode_audio(waves), len(batch), "encode_audio", self.model)
            return _same_width(vectors, self.audio_cache, self.model)

        vectors, _ = cached_extract(self.audio_cache, list(paths), [file_sha256(p) for p in paths], compute,
                                    self.batch_size, f"{self.model.name} audio", self.progress)
        return _normalised(vectors)

    def text(self, texts: Sequence[str]) -> np.ndarray:
        def compute(batch: list[str]) -> np.ndarray:
            vectors = _vectors(self.model.encode_text(list(batch)), len(batch), "encode_text", self.model)
            return _same_width(vectors, self.text_cache, self.model)

        vectors, _ = cached_extract(self.text_cache, list(texts), [text_sha256(t) for t in texts], compute,
                                    self.batch_size * 4, f"{self.model.name} text", self.progress)
        return _normalised(vectors)

    def similarity(self, task: Task) -> np.ndarray:
        """Queries x corpus cosine similarities of `task`, in its query and corpus order."""
        gt = task.ground_truth
        t2a = gt.direction == "t2a"
        audio = self.audio([task.audio_path(name) for name in (gt.corpus if t2a else gt.query_texts)])
        text = self.text(gt.query_texts if t2a else gt.corpus)
        if audio.shape[1] != text.shape[1]:
            raise LarbError(f"{self.model.name}: audio vectors have {audio.shape[1]} dimensions, text vectors "
                            f"{text.shape[1]}.", fix="embed both into one space.")
        return text @ audio.T if t2a else audio @ text.T
