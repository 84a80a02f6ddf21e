"""Losses: hand-computed values on tiny matrices, invariants, and one optimisation step each."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from baselines import losses
from baselines.losses import LOSSES, same_audio_mask

# Rows are audios, columns captions, (i, i) the positives; margin 0.2 (Park et al.).
S = torch.tensor([[0.9, 0.3, 0.1],
                  [0.5, 0.6, 0.55],
                  [0.0, 0.7, 0.4]], dtype=torch.float64)
ONE_AND_TWO_SHARE_AUDIO = same_audio_mask(["a", "b", "b"])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_same_audio_mask_marks_items_of_one_recording():
    mask = same_audio_mask(["x.wav", "y.wav", "x.wav"])
    assert mask.tolist() == [[True, False, True], [False, True, False], [True, False, True]]


def test_triplet_sum_by_hand():
    # audio anchors: row 1: 0.2+0.5-0.6=0.1, 0.2+0.55-0.6=0.15; row 2: 0.2+0.7-0.4=0.5  -> 0.75
    # caption anchors: col 1: 0.2+0.7-0.6=0.3; col 2: 0.2+0.55-0.4=0.35             -> 0.65
    assert losses.triplet_sum(S).item() == pytest.approx((0.75 + 0.65) / 3)


def test_triplet_max_takes_only_the_hardest_negative():
    # rows: max(0.1, 0.15) + 0.5; columns: 0.3 + 0.35
    assert losses.triplet_max(S).item() == pytest.approx((0.65 + 0.65) / 3)


def test_same_audio_pairs_are_not_negatives_for_hinge_losses():
    # Without (1, 2) and (2, 1) only row 1 against caption 0 violates the margin: 0.1.
    assert losses.triplet_sum(S, same_audio=ONE_AND_TWO_SHARE_AUDIO).item() == pytest.approx(0.1 / 3)
    assert losses.triplet_max(S, same_audio=ONE_AND_TWO_SHARE_AUDIO).item() == pytest.approx(0.1 / 3)


def test_triplet_weighted_by_hand():
    def pos(p):
        return 0.2 * p * p - 0.7 * p + 0.5

    def neg(n):
        return 0.9 * n * n - 0.4 * n + 0.03

    # row 0 and column 0 have no negative within the margin (0.3 + 0.2 < 0.9; 0.5 + 0.2 < 0.9)
    rows = (pos(0.6) + neg(0.55)) + (pos(0.4) + neg(0.7))
    columns = (pos(0.6) + neg(0.7)) + (pos(0.4) + neg(0.55))
    assert rows + columns == pytest.approx(0.23425 + 0.443 + 0.343 + 0.33425)
    assert losses.triplet_weighted(S).item() == pytest.approx((rows + columns) / 3)


def test_triplet_weighted_skips_anchors_whose_positive_is_already_one():
    sim = torch.tensor([[1.0, 0.9], [0.9, 1.0]])
    assert losses.triplet_weighted(sim).item() == 0.0
    assert losses.triplet_sum(sim).item() == pytest.approx(4 * 0.1 / 2)  # the hinge losses do not


def test_ntxent_and_infonce_by_hand():
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert losses.ntxent(sim, temperature=1.0).item() == pytest.approx(softplus(-1))
    assert losses.ntxent(sim, temperature=0.5).item() == pytest.approx(softplus(-2))
    lopsided = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # over captions: row 0 softplus(-1), row 1 softplus(1); over audios: both columns log 2
    audio_to_text = (softplus(-1) + softplus(1)) / 2
    assert losses.infonce(lopsided, temperature=1.0).item() == pytest.approx(audio_to_text)
    assert losses.ntxent(lopsided, temperature=1.0).item() == pytest.approx((audio_to_text + math.log(2)) / 2)


def test_infonce_exp_similarity_reproduces_park_et_al():
    lopsided = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    e = math.e  # logits exp(sim): [[e, 1], [e, 1]]
    expected = (softplus(1 - e) + softplus(e - 1)) / 2
    assert losses.infonce(lopsided, temperature=1.0, exp_similarity=True).item() == pytest.approx(expected)


def test_contrastive_losses_count_same_audio_captions_as_targets():
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    everything_shared = torch.ones(2, 2, dtype=torch.bool)
    # every entry is a target: mean of all log-softmax values, (-softplus(-1) - softplus(1)) / 2
    expected = (softplus(-1) + softplus(1)) / 2
    assert losses.ntxent(sim, same_audio=everything_shared, temperature=1.0).item() == pytest.approx(expected)
    assert losses.infonce(sim, same_audio=everything_shared, temperature=1.0).item() == pytest.approx(expected)


def test_vicreg_by_hand():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    zb = 0.5 * za
    # invariance: mean((0.5 za)^2) = 0.25 * 4 / 6; variance: za has std ~1 (no cost), zb std
    # sqrt(0.25 + 1e-4) in both dims; covariance of za [[1, .5], [.5, 1]] -> 2 * 0.25 / 2, of zb a quarter.
    expected = 1 / 6 + (1 - math.sqrt(0.2501)) + 0.04 * (0.25 + 2 * 0.125**2 / 2)
    assert losses.vicreg(za, zb).item() == pytest.approx(expected)
    assert losses.vicreg(za, za).item() == pytest.approx(0.04 * 0.5, abs=1e-6)


def test_infonce_vicreg_adds_0_4_vicreg():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zb = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    sim = za @ zb.T
    total = losses.infonce_vicreg(sim, audio_embeddings=za, text_embeddings=zb)
    assert total.item() == pytest.approx(losses.infonce(sim).item() + 0.4 * losses.vicreg(za, zb).item())


def test_triplet_random_by_hand_when_the_impostor_is_forced():
    sim = torch.tensor([[0.5, 0.4], [0.1, 0.3]])
    # pair 0: 0.4+0.4-0.5 = 0.3 and 0.4+0.1-0.5 = 0; pair 1: 0.4+0.1-0.3 = 0.2 and 0.4+0.4-0.3 = 0.5
    assert losses.triplet_random(sim, generator=torch.Generator().manual_seed(0)).item() == pytest.approx(0.5)


def test_triplet_random_draws_uniformly_among_other_recordings():
    sim = torch.tensor([[0.9, 0.8, 0.1], [0.8, 0.9, 0.2], [0.3, 0.6, 0.5]])
    shared = same_audio_mask(["a", "a", "b"])
    # Items 0 and 1 may only draw item 2 (drawing each other would add 0.3 each way); the pair
    # (1, audio 2) costs 0.1; item 2 draws caption 0 or 1 (0.2 or 0.5) and audio 0 or 1 (0 or 0.1).
    allowed = {round((0.1 + c + a) / 3, 6) for c in (0.2, 0.5) for a in (0.0, 0.1)}
    values = [losses.triplet_random(sim, same_audio=shared, generator=torch.Generator().manual_seed(seed)).item()
              for seed in range(400)]
    assert {round(v, 6) for v in values} == allowed
    assert sum(values) / len(values) == pytest.approx((0.1 + 0.35 + 0.05) / 3, abs=0.01)
    again = losses.triplet_random(sim, same_audio=shared, generator=torch.Generator().manual_seed(7))
    assert again.item() == values[7]


def test_triplet_random_ignores_anchors_without_any_impostor():
    sim = torch.tensor([[0.1, 0.9], [0.9, 0.1]])
    assert losses.triplet_random(sim, same_audio=torch.ones(2, 2, dtype=torch.bool)).item() == 0.0


def test_clap_cross_entropy_uses_exp_of_the_learned_scale():
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scale = torch.tensor(math.log(2.0), requires_grad=True)
    loss = losses.clap_cross_entropy(sim, logit_scale=scale)
    assert loss.item() == pytest.approx(softplus(-2))
    loss.backward()
    assert scale.grad < 0  # sharper logits help when the positives are the largest


def test_distillation_by_hand():
    student = torch.tensor([[0.5, 0.0], [0.0, 0.5]], requires_grad=True)
    members = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    # mean 0.5 * I, / 0.5 -> targets softmax([1, 0]); the student predicts the same, so the loss
    # is the targets' entropy and its gradient vanishes.
    p = 1 / (1 + math.exp(-1))
    loss = losses.distillation(student, teacher_similarities=members, temperature=0.5)
    assert loss.item() == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)))
    loss.backward()
    assert student.grad.abs().max() < 1e-6
    flat = losses.distillation(torch.zeros(2, 2), teacher_similarities=members, temperature=0.5)
    assert flat.item() == pytest.approx(math.log(2))  # uniform predictions: cross-entropy log 2


def test_distillation_ignores_ground_truth_and_does_not_train_the_teachers():
    student = torch.tensor([[0.2, 0.1], [0.3, 0.4]])
    members = torch.rand(3, 2, 2, requires_grad=True)
    plain = losses.distillation(student, teacher_similarities=members)
    masked = losses.distillation(student, teacher_similarities=members, same_audio=torch.ones(2, 2, dtype=torch.bool))
    assert plain.item() == masked.item()
    assert not plain.requires_grad


@pytest.mark.parametrize("name", ["triplet-sum", "triplet-max", "triplet-weighted", "triplet-random"])
def test_hinge_losses_vanish_under_perfect_separation(name):
    sim = 0.9 * torch.eye(4) + 0.05
    assert LOSSES[name](sim, same_audio=same_audio_mask([0, 1, 1, 2])).item() == 0.0


@pytest.mark.parametrize("name", ["ntxent", "infonce", "clap-ce"])
def test_contrastive_losses_vanish_as_separation_sharpens(name):
    sim = torch.eye(4)
    extra = {"logit_scale": torch.tensor(math.log(100.0))} if name == "clap-ce" else {"temperature": 0.01}
    assert LOSSES[name](sim, **extra).item() < 1e-20


def test_losses_check_their_inputs():
    with pytest.raises(ValueError, match="square"):
        losses.ntxent(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="bool"):
        losses.triplet_sum(torch.zeros(2, 2), same_audio=torch.ones(2, 2))
    with pytest.raises(ValueError, match="members"):
        losses.distillation(torch.zeros(2, 2), teacher_similarities=torch.zeros(2, 2))


def test_registry_names_every_loss_of_the_baselines():
    assert set(LOSSES) == {"triplet-sum", "triplet-max", "triplet-weighted", "ntxent", "infonce",
                           "infonce-vicreg", "triplet-random", "clap-ce", "distillation"}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_one_gradient_step_lowers_every_loss(name):
    torch.manual_seed(0)
    n, dim = 8, 6
    audio = torch.randn(n, dim, requires_grad=True)
    text = torch.randn(n, dim, requires_grad=True)
    scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    teachers = F.normalize(torch.randn(2, n, dim), dim=-1) @ F.normalize(torch.randn(2, n, dim), dim=-1).transpose(1, 2)
    shared = same_audio_mask([0, 0, 1, 2, 3, 4, 5, 6])

    def value() -> torch.Tensor:
        a, t = F.normalize(audio, dim=-1), F.normalize(text, dim=-1)
        extra = {"infonce-vicreg": {"audio_embeddings": a, "text_embeddings": t},
                 "triplet-random": {"generator": torch.Generator().manual_seed(3)},
                 "clap-ce": {"logit_scale": scale},
                 "distillation": {"teacher_similarities": teachers}}.get(name, {})
        return LOSSES[name](a @ t.T, same_audio=shared, **extra)

    before = value()
    assert before.item() > 0
    before.backward()
    with torch.no_grad():
        for p in (audio, text, scale):
            if p.grad is not None:
                p -= 0.05 * p.grad
    assert value().item() < before.item()
