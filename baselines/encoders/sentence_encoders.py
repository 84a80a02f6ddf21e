"""Frozen sentence encoders (sentence-transformers models) run with plain `transformers`.

A sentence-transformers folder is a Hugging Face model plus `modules.json` (pooling, optional
L2 normalisation) and `sentence_bert_config.json` (max length). Reading those files and
pooling here gives the same vectors as `SentenceTransformer(folder).encode(...)` without
importing sentence-transformers, whose import pulls `datasets` and `pyarrow` (which in this
environment require numpy 2, while laion-clap pins numpy < 2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from baselines import assets
from baselines.embedding_cache import EmbeddingCache, cached_extract, text_sha256
from benchmark.assets import get as get_asset
from benchmark.errors import LarbError


@dataclass(frozen=True)
class TextEncoderSpec:
    """A registered sentence encoder: its asset and the architecture its config declares."""

    name: str
    asset: str
    dim: int
    model_type: str
    architecture: dict = field(hash=False)
    reference: str = ""

    def parameter_count(self) -> int:
        """Parameters of the encoder, counted on the meta device from the declared architecture."""
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.for_model(self.model_type, **self.architecture)
        with torch.device("meta"):
            model = AutoModel.from_config(config)
        return sum(p.numel() for p in model.parameters())


TEXT_ENCODERS: dict[str, TextEncoderSpec] = {spec.name: spec for spec in (
    TextEncoderSpec("all-mpnet-base-v2", assets.MPNET, 768, "mpnet", {
        "vocab_size": 30527, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "max_position_embeddings": 514, "relative_attention_num_buckets": 32,
        "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2},
        "Reimers & Gurevych, sentence-transformers; the MPNet of Pellegrini (DCASE 2022)"),
    TextEncoderSpec("all-MiniLM-L6-v2", assets.MINILM, 384, "bert", {
        "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
        "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "pad_token_id": 0},
        "Reimers & Gurevych, sentence-transformers"),
)}


def text_encoder_spec(name: str) -> TextEncoderSpec:
    try:
        return TEXT_ENCODERS[name]
    except KeyError:
        raise LarbError(f"unknown text encoder {name!r}.",
                        fix=f"use one of {sorted(TEXT_ENCODERS)} (--set text_encoder=NAME).") from None


class SentenceEncoder:
    """Captions -> mean-pooled (and, when the model says so, L2-normalised) float32 vectors."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        modules = json.loads((folder / "modules.json").read_text("utf-8"))
        pooling_path = next((folder / m["path"] for m in modules if m["type"].endswith(".Pooling")), None)
        if pooling_path is None:
            raise LarbError("this sentence-transformers folder declares no pooling module.",
                            path=folder / "modules.json", fix="use a sentence-transformers model folder.")
        pooling = json.loads((pooling_path / "config.json").read_text("utf-8"))
        if not pooling.get("pooling_mode_mean_tokens"):
            raise LarbError("only mean-pooling sentence encoders are supported (the registered ones are).",
                            path=pooling_path / "config.json", fix="use a mean-pooling model.")
        self.normalise = any(m["type"].endswith(".Normalize") for m in modules)
        settings_path = folder / "sentence_bert_config.json"
        settings = json.loads(settings_path.read_text("utf-8")) if settings_path.exists() else {}
        self.max_length = int(settings.get("max_seq_length", 512))
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).to(device).eval()
        self.device = device
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            tokens = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                    return_tensors="pt").to(self.device)
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.normalise:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[start:start + len(batch)] = pooled.float().cpu().numpy()
        return out


class TextFeatures:
    """Sentence vectors of captions through one registered encoder, cached by text."""

    def __init__(self, spec: TextEncoderSpec, device: str = "cpu", batch_size: int = 64,
                 progress: bool = True) -> None:
        self.spec = spec
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        self.cache = EmbeddingCache(f"text-{spec.name}", get_asset(spec.asset).checksum,
                                    "mean pooling over the attention mask; l2 if the model has Normalize")
        self._encoder: SentenceEncoder | None = None
        self.last_computed = 0

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = SentenceEncoder(assets.fetch(self.spec.asset), self.device)
            if self._encoder.dim != self.spec.dim:
                raise LarbError(f"text encoder {self.spec.name} gives {self._encoder.dim}-d vectors, "
                                f"its declaration says {self.spec.dim}.", path=assets.fetch(self.spec.asset),
                                fix="the mirror holds a different model under this name; replace it.")
        return self._encoder

    def encode(self, texts: Sequence[str], what: str = "captions") -> np.ndarray:
        """Vectors for `texts`; `what` names them in the progress bar ("AudioSet tag names")."""
        vectors, self.last_computed = cached_extract(
            self.cache, list(texts), [text_sha256(t) for t in texts],
            lambda batch: self.encoder.encode(batch, self.batch_size), self.batch_size * 4,
            f"{self.spec.name}: {what}", self.progress)
        return vectors if len(texts) else np.empty((0, self.spec.dim), np.float32)
