"""The non-uniformity penalty (Tourbabin and Ben-Hur): LARB's voxel network reaches the report's
accuracy, its soft histogram tracks the counted one, raising it spreads a batch over the voxels,
and the resnet38-bert-ntxent loss adds alpha times the penalty."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from baselines import voxel_penalty
from baselines.config import apply_overrides
from baselines.models.resnet38_bert_ntxent import DEFAULTS, SPEC, eq2_ntxent


@pytest.fixture(scope="module")
def net():
    return voxel_penalty.load_network()  # trained on first use, then read from the LARB cache


def test_the_network_predicts_the_voxel_of_held_out_vectors_as_well_as_the_report(net):
    record = json.loads((voxel_penalty._folder() / f"{voxel_penalty.VERSION}.json").read_text())
    fresh = torch.rand(10_000, 8, generator=torch.Generator().manual_seed(123)) * 2 - 1
    with torch.no_grad():
        accuracy = float((net(fresh).argmax(1) == voxel_penalty.voxel_index(fresh)).float().mean())
    print(f"\nvoxel network: {record} ; on 10,000 fresh vectors {accuracy:.4f} (the report: 0.970)")
    assert accuracy >= 0.95 and record["test_accuracy"] >= 0.95


def test_the_soft_histogram_tracks_the_counted_one_on_random_batches(net):
    generator = torch.Generator().manual_seed(4)
    distances, gaps = [], []
    for _ in range(20):
        batch = torch.nn.functional.normalize(torch.randn(64, 512, generator=generator), dim=1)
        dims = torch.randperm(512, generator=generator)[:8]
        chosen = batch[:, dims]
        with torch.no_grad():
            soft = torch.softmax(net(chosen / chosen.abs().amax(1, keepdim=True)), dim=1).mean(0).double()
            gaps.append(float(voxel_penalty.soft_voxel_entropy(batch, dims, net))
                        - voxel_penalty.hard_voxel_entropy(batch, dims))
        hard = torch.bincount(voxel_penalty.voxel_index(chosen), minlength=256).double() / len(batch)
        distances.append(0.5 * float((soft - hard).abs().sum()))  # total variation
    print(f"\nsoft vs counted histogram of 64 items: total variation <= {max(distances):.3f}, "
          f"entropy gap {min(gaps):.3f} to {max(gaps):.3f} nats")
    assert max(distances) < 0.15 and max(abs(g) for g in gaps) < 0.3  # measured: <= 0.106, 0.10-0.22


def _train_embeddings(net, alpha: float) -> float:
    """Free audio and text embeddings (64 x 32, starting as one tight cluster each) trained 100 Adam
    steps on NT-Xent - alpha (h_audio + h_text); the counted h of the audio side afterwards."""
    generator = torch.Generator().manual_seed(5)

    def cluster() -> torch.nn.Parameter:
        return torch.nn.Parameter(torch.randn(1, 32, generator=generator) + 0.05 * torch.randn(64, 32,
                                                                                              generator=generator))

    audio, text = cluster(), cluster()
    optimizer = torch.optim.Adam([audio, text], lr=0.02)
    draws = torch.Generator().manual_seed(6)
    for _ in range(100):
        a, t = torch.nn.functional.normalize(audio, dim=1), torch.nn.functional.normalize(text, dim=1)
        loss = eq2_ntxent(a @ t.T, 0.07)
        if alpha:
            loss = loss + alpha * voxel_penalty.penalty(a, t, net, draws)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(np.mean([voxel_penalty.hard_voxel_entropy(audio.detach(), torch.randperm(32, generator=draws)[:8])
                          for _ in range(50)]))


def test_training_with_alpha_above_zero_raises_the_batch_h(net):
    plain, penalised = _train_embeddings(net, 0.0), _train_embeddings(net, 1.0)
    print(f"\naudio h after 100 steps: NT-Xent {plain:.3f}, NT-Xent - 1.0 (h_a + h_t) {penalised:.3f}")
    assert penalised > plain + 0.1  # measured: 3.26 -> 3.43


def test_the_baseline_adds_alpha_times_the_penalty(net, monkeypatch):
    monkeypatch.setattr(voxel_penalty, "load_network", lambda: net)
    config = apply_overrides(DEFAULTS, ["size=tiny", "text_encoder=tiny-roberta", "alpha=0.33"])
    system = SPEC.synthetic_system(config).system
    audio = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    text = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    loss = system.loss(audio, text, torch.arange(8), torch.Generator().manual_seed(9))
    expected = eq2_ntxent(audio @ text.T, 0.07) + 0.33 * voxel_penalty.penalty(
        audio, text, net, torch.Generator().manual_seed(9))
    torch.testing.assert_close(loss, expected)


def test_a_cached_network_that_does_not_match_its_record_is_trained_again(net, monkeypatch, tmp_path):
    monkeypatch.setenv("LARB_CACHE_DIR", str(tmp_path))
    trained = []
    monkeypatch.setattr(voxel_penalty, "train_network", lambda: trained.append(1) or (net, {"test_accuracy": 1.0}))
    voxel_penalty.load_network()
    weights = tmp_path / "voxel-network" / f"{voxel_penalty.VERSION}.pt"
    voxel_penalty.load_network()  # read back: not trained again
    weights.write_bytes(weights.read_bytes()[:-1] + b"x")  # a corrupted file
    voxel_penalty.load_network()
    assert len(trained) == 2
