"""ResNet38 + BERT NT-Xent (Mei et al. 2022; Tourbabin and Ben-Hur's CS224N report): exact
parameter counts, the report's loss (Eq. 2) and pooling, frozen and fine-tuned contract checks,
selection by the sum of recalls, and a tiny model trained on `demo-train` and scored on `demo`."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import MIRROR, chance_map, harness_scores, require_shared

from baselines.check import contract_check
from baselines.config import apply_overrides
from baselines.encoders import panns
from baselines.inference import Member
from baselines.models.panns_sbert import PannsBackbone
from baselines.models.resnet38_bert_ntxent import DEFAULTS, ENCODER, SPEC, eq2_ntxent
from baselines.runner import run_models, train_baseline

TINY = ["size=tiny", "text_encoder=all-MiniLM-L6-v2", "clip_seconds=2", "num_workers=0", "device=cpu"]


def test_full_configuration_declares_exact_parameter_counts():
    resnet38 = 73_783_247 - (2048 * 2048 + 2048) - (527 * 2048 + 527)  # PANNs ResNet38 without fc1 and classifier
    bert = 109_482_240 - (768 * 768 + 768)  # BERT base uncased without its pooler
    d = 1024
    heads = (2048 * 2 * d + 2 * d + 2 * d * d + d) + (768 * 2 * d + 2 * d + 2 * d * d + d)
    frozen = SPEC.parameter_counts(DEFAULTS)  # Exp 1.a: both encoders frozen
    assert frozen.trainable == heads == 9_967_616
    assert frozen.frozen == {"audio:resnet38-full": resnet38, "text:bert-base-uncased": bert}
    tuned = SPEC.parameter_counts(apply_overrides(DEFAULTS, ["freeze_encoders=false"]))
    assert tuned.trainable == resnet38 + bert + heads == 187_366_336 and tuned.frozen == {}
    assert SPEC.required_assets(DEFAULTS) == [ENCODER.asset.name]  # BERT comes from the Hub, unpinned


def test_the_loss_is_the_reports_equation_2():
    torch.manual_seed(0)
    audio = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    sim = audio @ text.T
    rows = torch.log_softmax(sim / 0.07, dim=1).diag().sum()
    columns = torch.log_softmax(sim.T / 0.07, dim=1).diag().sum()
    torch.testing.assert_close(eq2_ntxent(sim, 0.07), -(rows + columns) / 5)


def test_audio_is_max_pooled_over_time_as_the_report_says():
    torch.manual_seed(1)
    tagger = panns.ResNet38(**ENCODER.tiny).eval()
    waves = 0.1 * torch.randn(2, 16_000)
    with torch.no_grad():
        logmel = tagger.logmel_extractor(tagger.spectrogram_extractor(waves))
        trunk = tagger._trunk(tagger.bn0(logmel.transpose(1, 3)).transpose(1, 3), waves).mean(3)
        backbone = PannsBackbone(tagger, spec_augment=False, pooling="max").eval()
        torch.testing.assert_close(backbone(waves), trunk.amax(2))
    assert DEFAULTS["pooling"] == "max" and DEFAULTS["selection"] == "recall-sum"


@pytest.mark.parametrize("mode", ["freeze_encoders=true", "freeze_encoders=false"])
def test_contract_check_passes_frozen_and_fine_tuned(mode):
    results = contract_check(SPEC, apply_overrides(DEFAULTS, ["size=tiny", "text_encoder=all-MiniLM-L6-v2", mode]))
    assert not [r.line() for r in results if r.status == "FAIL"]
    assert any("gradients reach every trainable parameter" in r.what for r in results)


def test_a_tiny_frozen_model_learns_demo_and_best_pt_is_chosen_by_the_recall_sum(tmp_path, monkeypatch):
    """Exp 1.a on demo: the encoders frozen (a random tiny ResNet38, MiniLM), the two MLPs trained."""
    require_shared(MIRROR / "all-MiniLM-L6-v2" / "model.safetensors")
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    result = train_baseline(SPEC, "demo-train", "holdout", tmp_path / "run",
                            [*TINY, "lr=1e-3", "epochs=3", "joint_dim=64"], progress=False)
    sums = [r["val_recall_sum"] for r in result.history]
    assert all(r["val_recall_sum"] == pytest.approx(r["val_R@1"] + r["val_R@5"] + r["val_R@10"])
               for r in result.history)
    best = torch.load(result.best_checkpoint, weights_only=True)
    assert best["epoch"] == 1 + sums.index(max(sums)) and result.best["epoch"] == best["epoch"]
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert logged == result.history
    scores = harness_scores(run_models([Member(result.best_checkpoint, SPEC)], "demo", tmp_path / "sub",
                                       progress=False), "demo")
    print(f"\nresnet38-bert tiny on demo: {scores} (chance mAP@10 {chance_map(60):.4f}); {result.history}")
    assert scores["mAP@10"] > 2 * chance_map(60)
