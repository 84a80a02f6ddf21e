"""Training losses of the registered baselines, over one batch's audio-caption similarity matrix.

Every loss takes `sim` (n x n; row i is audio i, column j caption j, and the pair (i, i) is a
positive) and an optional boolean `same_audio` (n x n): True where audio i and caption j belong to
the same recording, so several captions of one audio in a batch count as positives, never as
negatives. Extra inputs are keyword arguments; `LOSSES` maps the names the baselines use to them.
Defaults are the ones of the code each loss comes from (cited per function).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def same_audio_mask(audio_ids: Sequence[Hashable]) -> Tensor:
    """(n, n) bool: True where items i and j of the batch share their audio."""
    index: dict[Hashable, int] = {}
    codes = torch.tensor([index.setdefault(a, len(index)) for a in audio_ids])
    return codes.unsqueeze(0) == codes.unsqueeze(1)


def _check_square(sim: Tensor) -> None:
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"the similarity matrix must be square (audio i pairs with caption i), got {tuple(sim.shape)}")


def _positives(sim: Tensor, same_audio: Tensor | None) -> Tensor:
    """(n, n) bool: the diagonal plus the same-audio pairs."""
    _check_square(sim)
    eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    if same_audio is None:
        return eye
    if same_audio.shape != sim.shape or same_audio.dtype != torch.bool:
        raise ValueError(f"same_audio must be a bool tensor of shape {tuple(sim.shape)}")
    return same_audio.to(sim.device) | eye


def _hinge_costs(sim: Tensor, same_audio: Tensor | None, margin: float) -> tuple[Tensor, Tensor]:
    """Margin violations of every negative, against the row's (audio) and the column's (caption) positive."""
    positive = sim.diagonal()
    mask = _positives(sim, same_audio)
    audio_anchor = F.relu(margin + sim - positive.unsqueeze(1)).masked_fill(mask, 0.0)
    caption_anchor = F.relu(margin + sim - positive.unsqueeze(0)).masked_fill(mask, 0.0)
    return audio_anchor, caption_anchor


def triplet_sum(sim: Tensor, *, same_audio: Tensor | None = None, margin: float = 0.2) -> Tensor:
    """Bidirectional hinge loss summed over all negatives, divided by n (Park et al. 2023 'bidirect')."""
    audio_anchor, caption_anchor = _hinge_costs(sim, same_audio, margin)
    return (audio_anchor.sum() + caption_anchor.sum()) / sim.shape[0]


def triplet_max(sim: Tensor, *, same_audio: Tensor | None = None, margin: float = 0.2) -> Tensor:
    """VSE++: only the hardest negative per anchor, both directions, divided by n (Park et al. 'triplet')."""
    audio_anchor, caption_anchor = _hinge_costs(sim, same_audio, margin)
    return (audio_anchor.amax(dim=1).sum() + caption_anchor.amax(dim=0).sum()) / sim.shape[0]


def _polynomial_terms(sim: Tensor, negatives: Tensor, margin: float, eps: float) -> Tensor:
    """Per row: 0.2p^2 - 0.7p + 0.5 on the positive plus 0.9n^2 - 0.4n + 0.03 on the hardest negative,
    both clamped at 0; a row counts only if its positive is below 1 - eps and a negative lies within
    the margin of it."""
    positive = sim.diagonal()
    hardest = sim.masked_fill(~negatives, float("-inf")).amax(dim=1)
    active = (positive < 1 - eps) & (hardest + margin > positive)
    pos_loss = torch.clamp(0.2 * positive**2 - 0.7 * positive + 0.5, min=0.0)
    hardest = torch.where(active, hardest, torch.zeros_like(hardest))
    neg_loss = torch.clamp(0.9 * hardest**2 - 0.4 * hardest + 0.03, min=0.0)
    return torch.where(active, pos_loss + neg_loss, torch.zeros_like(pos_loss))


def triplet_weighted(sim: Tensor, *, same_audio: Tensor | None = None, margin: float = 0.2,
                     eps: float = 1e-5) -> Tensor:
    """Polynomial-weighted triplet loss (Mei et al.; Park et al. 'weight'), both directions, divided by n."""
    negatives = ~_positives(sim, same_audio)
    rows = _polynomial_terms(sim, negatives, margin, eps)
    columns = _polynomial_terms(sim.T, negatives.T, margin, eps)
    return (rows.sum() + columns.sum()) / sim.shape[0]


def _positive_log_likelihood(logits: Tensor, positives: Tensor, dim: int) -> Tensor:
    """Mean log-softmax (over `dim`) of all positive entries, as salsa's stage-1 loss pools them."""
    return torch.log_softmax(logits, dim=dim)[positives].mean()


def ntxent(sim: Tensor, *, same_audio: Tensor | None = None, temperature: float = 0.07) -> Tensor:
    """Symmetric InfoNCE: cross-entropy over captions per audio and over audios per caption, averaged.

    τ 0.07 as Park et al.; Primus et al. use 0.05. With `same_audio`, all same-audio entries are
    targets (salsa's stage 1).
    """
    logits = sim / temperature
    positives = _positives(sim, same_audio)
    return -0.5 * (_positive_log_likelihood(logits, positives, 0) + _positive_log_likelihood(logits, positives, 1))


def infonce(sim: Tensor, *, same_audio: Tensor | None = None, temperature: float = 0.07,
            exp_similarity: bool = False) -> Tensor:
    """One-directional InfoNCE: cross-entropy over captions for each audio.

    `exp_similarity=True` reproduces Park et al.'s released code, which feeds exp(sim) / τ to the
    softmax instead of sim / τ.
    """
    logits = (sim.exp() if exp_similarity else sim) / temperature
    return -_positive_log_likelihood(logits, _positives(sim, same_audio), 1)


def vicreg(audio_embeddings: Tensor, text_embeddings: Tensor, *, inv_weight: float = 1.0,
           var_weight: float = 1.0, cov_weight: float = 0.04) -> Tensor:
    """VICReg (Bardes et al. 2022) between paired embeddings (n, d), as in Park et al.'s code:
    invariance = MSE, variance = hinge on each dimension's std at 1, covariance = squared
    off-diagonal covariances / d."""
    n, d = audio_embeddings.shape
    invariance = F.mse_loss(audio_embeddings, text_embeddings)
    variance = audio_embeddings.new_zeros(())
    covariance = audio_embeddings.new_zeros(())
    off_diagonal = ~torch.eye(d, dtype=torch.bool, device=audio_embeddings.device)
    for z in (audio_embeddings, text_embeddings):
        variance = variance + F.relu(1 - torch.sqrt(z.var(dim=0) + 1e-4)).mean()
        centred = z - z.mean(dim=0)
        cov = centred.T @ centred / (n - 1)
        covariance = covariance + cov[off_diagonal].pow(2).sum() / d
    return inv_weight * invariance + var_weight * variance + cov_weight * covariance


def infonce_vicreg(sim: Tensor, *, audio_embeddings: Tensor, text_embeddings: Tensor,
                   same_audio: Tensor | None = None, temperature: float = 0.07,
                   vicreg_weight: float = 0.4, exp_similarity: bool = False) -> Tensor:
    """InfoNCE + 0.4 VICReg on the embeddings (Park et al., trainer.py: InfoNCE_VICReg(1, 0.4))."""
    return (infonce(sim, same_audio=same_audio, temperature=temperature, exp_similarity=exp_similarity)
            + vicreg_weight * vicreg(audio_embeddings, text_embeddings))


def triplet_random(sim: Tensor, *, same_audio: Tensor | None = None, margin: float = 0.4,
                   generator: torch.Generator | None = None) -> Tensor:
    """PaSST-MPNet-tags (Pellegrini 2022): per pair one random in-batch impostor caption and one
    random impostor audio (from other recordings), hinge with margin 0.4, summed, divided by n."""
    n = sim.shape[0]
    negatives = ~_positives(sim, same_audio)
    positive = sim.diagonal()

    def draw() -> tuple[Tensor, Tensor]:
        scores = torch.rand(n, n, generator=generator, device=generator.device if generator else "cpu")
        scores = scores.to(sim.device).masked_fill(~negatives, -1.0)
        best = scores.max(dim=1)
        return best.indices, best.values >= 0  # uniform over each row's negatives; False if none

    rows = torch.arange(n, device=sim.device)
    caption, has_caption = draw()
    audio, has_audio = draw()
    audio_anchor = F.relu(margin + sim[rows, caption] - positive) * has_caption
    caption_anchor = F.relu(margin + sim[audio, rows] - positive) * has_audio
    return (audio_anchor.sum() + caption_anchor.sum()) / n


def clap_cross_entropy(sim: Tensor, *, logit_scale: Tensor, same_audio: Tensor | None = None) -> Tensor:
    """CLIP/CLAP symmetric cross-entropy with a learned temperature: logits = exp(logit_scale) * sim.

    `logit_scale` is the model's trainable log inverse temperature (CLAP initialises it at
    log(1 / 0.07)); as in CLIP, the trainer clamps it to at most log(100) after each step.
    """
    logits = sim * logit_scale.exp()
    positives = _positives(sim, same_audio)
    return -0.5 * (_positive_log_likelihood(logits, positives, 0) + _positive_log_likelihood(logits, positives, 1))


def distillation(sim: Tensor, *, teacher_similarities: Tensor, temperature: float = 0.05,
                 same_audio: Tensor | None = None) -> Tensor:
    """Primus et al. 2024 (salsa stage 2): cross-entropy of the student against estimated correspondences.

    `teacher_similarities` (members, n, n) are the ensemble members' cosine similarity matrices;
    their mean / τ, softmaxed over captions (per audio) and over audios (per caption), are the soft
    targets of the student's sim / τ. `same_audio` is accepted for a uniform call and not used: the
    soft targets replace the ground truth.
    """
    _check_square(sim)
    if teacher_similarities.dim() != 3 or teacher_similarities.shape[1:] != sim.shape:
        raise ValueError(f"teacher_similarities must be (members, {sim.shape[0]}, {sim.shape[1]})")
    targets = teacher_similarities.detach().mean(dim=0) / temperature
    logits = sim / temperature
    return 0.5 * (F.cross_entropy(logits, torch.softmax(targets, dim=1))
                  + F.cross_entropy(logits.T, torch.softmax(targets.T, dim=1)))


LOSSES: dict[str, Callable[..., Tensor]] = {
    "triplet-sum": triplet_sum,
    "triplet-max": triplet_max,
    "triplet-weighted": triplet_weighted,
    "ntxent": ntxent,
    "infonce": infonce,
    "infonce-vicreg": infonce_vicreg,
    "triplet-random": triplet_random,
    "clap-ce": clap_cross_entropy,
    "distillation": distillation,
}
