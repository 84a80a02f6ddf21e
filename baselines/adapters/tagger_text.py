"""Zero-shot "tagger + sentence encoder" through the model protocol: a clip is the sentence vector
of its AudioSet tags' names, weighted by the tagger's probabilities; a caption is its sentence
vector. This is PaSST-MPNet-tags at lambda = 0 (`baselines.models.tags_head`), so the same tagger and
text encoder give the same ranking as `larb baseline run passt-mpnet-tags --set lambda=0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from baselines import assets
from baselines.encoders.sentence_encoders import TEXT_ENCODERS, SentenceEncoder, TextFeatures, text_encoder_spec
from baselines.encoders.taggers import tagger_spec
from baselines.models.passt_mpnet_tags import audioset_labels
from baselines.models.tags_head import TagsHead
from benchmark.assets import get as get_asset
from benchmark.errors import LarbError


def _short(checksum: str) -> str:
    """The first 12 hex digits of a pinned "sha256:..." checksum, for the cache key."""
    return checksum.rpartition(":")[2][:12]


class TaggerTextModel:
    """`tagger`: mn04, cnn14 (PANNs) or passt; `text_encoder`: a registered sentence encoder or the
    path of a local sentence-transformers folder (mean pooling)."""

    training_data: list[dict[str, str]] = []  # pretrained only: nothing trained on retrieval data

    def __init__(self, tagger: str = "mn04", text_encoder: str = "all-MiniLM-L6-v2", device: str = "cpu") -> None:
        self.tagger = tagger_spec(tagger)
        self.device = device
        self.sample_rate = self.tagger.sample_rate
        if text_encoder in TEXT_ENCODERS:
            self._text = TextFeatures(text_encoder_spec(text_encoder), device, progress=False)
            text_identity = f"{text_encoder}@{_short(get_asset(self._text.spec.asset).checksum)}"
            self._encode = self._text.encode
        elif Path(text_encoder).is_dir():
            encoder = SentenceEncoder(Path(text_encoder), device)
            text_identity = f"{Path(text_encoder).resolve().name}@folder"
            self._encode = encoder.encode
        else:
            raise LarbError(f"text_encoder {text_encoder!r} is neither a registered encoder nor a folder.",
                            fix=f"use one of {sorted(TEXT_ENCODERS)} or a sentence-transformers folder.")
        self.name = f"tagger-text-{self.tagger.name}@{_short(get_asset(self.tagger.asset).checksum)}+{text_identity}"
        self._model = self.tagger.load(assets.fetch(self.tagger.asset)).to(device).eval()
        labels = torch.from_numpy(self._encode(audioset_labels()))
        self._head = TagsHead(labels, 0.0)
        text_parameters = (text_encoder_spec(text_encoder).parameter_count() if text_encoder in TEXT_ENCODERS
                           else sum(p.numel() for p in encoder.model.parameters()))
        self.parameters = {"total": self.tagger.parameter_count() + text_parameters, "trainable": 0}
        self.description = (f"Zero-shot: AudioSet tagger {self.tagger.name} ({self.tagger.reference}); a clip is "
                            f"the probability-weighted sentence vector of its tags' names, a caption its sentence "
                            f"vector ({text_encoder}).")

    @torch.no_grad()
    def encode_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        logits = np.empty((len(waveforms), len(self._head.tag_embeddings)), dtype=np.float32)
        by_length: dict[int, list[int]] = {}  # equal lengths share a pass; padding would change the pooling
        for i, wave in enumerate(waveforms):
            by_length.setdefault(len(wave), []).append(i)
        for indices in by_length.values():
            batch = torch.from_numpy(np.stack([waveforms[i] for i in indices]).astype(np.float32)).to(self.device)
            logits[indices] = self._model(batch)["logits"].float().cpu().numpy()
        return self._head.tag_vector(torch.from_numpy(logits)).numpy()

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return self._head.embed_text(torch.from_numpy(self._encode(list(texts)))).numpy()

