"""The PaSST-MPNet-tags head (Pellegrini, DCASE 2022), as in the paper's logits model.

Audio: AudioSet logits (527) -> LayerNorm (affine) -> Linear(527 -> D) -> l2, mixed with the
tag vector (sigmoid(logits)-weighted sum of the sentence embeddings of the 527 AudioSet class
names, l2) as l2(lambda * audio + (1 - lambda) * tags). Text: frozen sentence embedding ->
LayerNorm without affine -> l2. Scores are dot products. With lambda = 0 the output is the
tag vector alone, which needs no training (a zero-shot system).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import normalize

N_TAGS = 527


class TagsHead(nn.Module):
    """Maps frozen tagger logits and frozen sentence vectors into one D-dimensional space."""

    def __init__(self, tag_embeddings: torch.Tensor, mix: float = 0.8) -> None:
        super().__init__()
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"lambda must lie in [0, 1], got {mix}")
        n_tags, dim = tag_embeddings.shape
        self.mix = mix
        # lambda = 0 uses the tag vector alone: the learned branch would be dead weight.
        self.logit_norm = nn.LayerNorm(n_tags, elementwise_affine=True) if mix > 0 else None
        self.projection = nn.Linear(n_tags, dim) if mix > 0 else None
        if self.projection is not None:
            nn.init.kaiming_uniform_(self.projection.weight)
            nn.init.zeros_(self.projection.bias)
        self.text_norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.register_buffer("tag_embeddings", normalize(tag_embeddings.float(), dim=-1))

    @property
    def dim(self) -> int:
        return self.tag_embeddings.shape[1]

    @property
    def needs_training(self) -> bool:
        return self.mix > 0.0

    def tag_vector(self, logits: torch.Tensor) -> torch.Tensor:
        """l2(sigmoid(logits) @ E): the clip as its tags' names, in the text space."""
        probabilities = torch.sigmoid(logits.float())
        return normalize(probabilities @ self.tag_embeddings, dim=-1)

    def embed_audio(self, logits: torch.Tensor) -> torch.Tensor:
        tags = self.tag_vector(logits)
        if self.projection is None:
            return tags
        learned = normalize(self.projection(self.logit_norm(logits)).float(), dim=-1)
        return normalize(self.mix * learned + (1.0 - self.mix) * tags, dim=-1)

    def embed_text(self, sentences: torch.Tensor) -> torch.Tensor:
        return normalize(self.text_norm(sentences.float()), dim=-1)

    def forward(self, logits: torch.Tensor, sentences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio embeddings, text embeddings); training goes through here so DDP syncs gradients."""
        return self.embed_audio(logits), self.embed_text(sentences)

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def head_parameter_count(dim: int, mix: float, n_tags: int = N_TAGS) -> int:
    """Trainable parameters of a head with D = `dim`, counted by building it on the meta device."""
    with torch.device("meta"):
        return TagsHead(torch.empty(n_tags, dim), mix).trainable_parameter_count()
