"""PANNs + SBERT (Park et al., DCASE 2023): declarations, head, losses, checkpoint loading, contract
check, and a tiny fine-tuned model trained on `demo-train` and scored on `demo` by the harness."""

from __future__ import annotations

import pytest
import torch
from conftest import MIRROR, PANNS_DEMO_SETTINGS, PANNS_TINY, chance_map, harness_scores

from baselines.check import contract_check
from baselines.config import apply_overrides
from baselines.encoders import panns
from baselines.encoders.augment import SpecAugment
from baselines.inference import Member
from baselines.losses import LOSSES, same_audio_mask
from baselines.models.panns_sbert import (
    DEFAULTS,
    ENCODERS,
    PARK_LOSSES,
    SPEC,
    SPECS,
    PannsBackbone,
    PannsSbert,
    park_loss,
)
from baselines.runner import run_models
from benchmark.errors import LarbError

TINY = PANNS_TINY
SPEC_RATE = 32_000
MPNET = 109_486_464  # all-mpnet-base-v2, counted by the framework from its architecture


# -- declarations -------------------------------------------------------------------------------

def test_full_configurations_declare_exact_parameter_counts():
    # Backbone without fc1/fc_audioset (Park's encoder) + MLP 2048*600+600 + 600*300+300 + text 768*300+300.
    head = 2048 * 600 + 600 + 600 * 300 + 300 + 768 * 300 + 300
    fc = 2048 * 2048 + 2048 + 527 * 2048 + 527  # PANNs' fc1 and classifier, not used
    expected = {"panns-sbert-cnn14": 80_753_615 - fc, "panns-sbert-resnet38": 73_783_247 - fc,
                "panns-sbert-wavegram-logmel-cnn14": 81_065_487 - fc}
    for spec in SPECS:
        counts = spec.parameter_counts(apply_overrides(spec.defaults, ["freeze_audio=false"]))
        assert counts.trainable == expected[spec.name] + head == {
            "panns-sbert-cnn14": 77_117_840, "panns-sbert-resnet38": 70_147_472,
            "panns-sbert-wavegram-logmel-cnn14": 77_429_712}[spec.name]
        assert counts.frozen == {"text:all-mpnet-base-v2": MPNET}
        declaration = spec.declaration(spec.defaults)
        assert declaration["assets"] == [ENCODERS[spec.name.removeprefix("panns-sbert-")].asset.name,
                                         "sentence-transformers/all-mpnet-base-v2"]
    for frozen_settings in ([], ["cache_frozen_audio=true", "spec_augment=false"]):  # the paper's: frozen audio
        frozen = SPEC.parameter_counts(apply_overrides(DEFAULTS, frozen_settings))
        assert frozen.trainable == head and frozen.frozen["audio:cnn14-full"] == 80_753_615 - fc


def test_defaults_are_the_papers_settings():
    assert (DEFAULTS["lr"], DEFAULTS["schedule"], DEFAULTS["lr_factor"], DEFAULTS["lr_patience"]) == (
        1e-4, "plateau", 0.5, 5)
    assert (DEFAULTS["optimizer"], DEFAULTS["grad_clip"], DEFAULTS["margin"], DEFAULTS["joint_dim"]) == (
        "adam", 2.0, 0.2, 300)
    assert (DEFAULTS["epochs"], DEFAULTS["batch_size"]) == (20, 96)  # the paper (the code's CLI: 50, 24)
    assert DEFAULTS["spec_augment"] and DEFAULTS["freeze_audio"] and not DEFAULTS["cache_frozen_audio"]
    assert DEFAULTS["clip_seconds"] == 30.0
    assert not DEFAULTS["same_audio_positives"] and DEFAULTS["infonce_exp_similarity"]  # the authors' losses


def _authors_ntxent(audio, text, tau=0.07):
    """tools/loss.py NTXent as written: log-softmax of each row, then the diagonal (its same-clip mask
    is applied off the diagonal after the softmax, so it changes nothing that is read)."""
    a2t = torch.log_softmax(audio @ text.T / tau, dim=1).diag().mean()
    t2a = torch.log_softmax(text @ audio.T / tau, dim=1).diag().mean()
    return -(0.5 * a2t + 0.5 * t2a)


def _authors_infonce(audio, text, tau=0.07):
    """tools/loss.py InfoNCE as written: audio to text only, softmax of exp(cosine) / tau."""
    return -torch.log_softmax((audio @ text.T).exp() / tau, dim=-1).diag().sum() / len(audio)


def test_the_softmax_losses_are_the_authors_and_same_clip_positives_are_a_setting():
    torch.manual_seed(2)
    audio = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    ids = torch.tensor([0, 0, 1, 2, 3, 3])  # two clips with two captions each in the batch
    ntxent = apply_overrides(DEFAULTS, ["loss=ntxent"])
    torch.testing.assert_close(park_loss(ntxent, audio, text, ids), _authors_ntxent(audio, text))
    torch.testing.assert_close(park_loss(apply_overrides(DEFAULTS, ["loss=infonce"]), audio, text, ids),
                               _authors_infonce(audio, text))
    positives = park_loss(apply_overrides(ntxent, ["same_audio_positives=true"]), audio, text, ids)
    torch.testing.assert_close(positives, LOSSES["ntxent"](audio @ text.T, same_audio=same_audio_mask(ids.tolist())))
    assert not torch.isclose(positives, park_loss(ntxent, audio, text, ids))


def test_a_frozen_backbone_stays_in_the_loop_as_the_authors_freeze_it():
    """requires_grad off, training mode on: SpecAugment acts, batch-norm statistics move, no gradient."""
    system = SPEC.build(apply_overrides(DEFAULTS, [*TINY, "clip_seconds=1"]), "cpu", False)
    backbone = system.head.backbone
    assert backbone is not None and not any(p.requires_grad for p in backbone.parameters())
    weights = {k: v.clone() for k, v in backbone.state_dict().items()}
    system.head.train()
    waves = 0.1 * torch.randn(4, SPEC_RATE)
    audio = system.head.embed_audio(waves)
    text = system.head.embed_text(torch.randn(4, 384))
    park_loss(system.config, audio, text, torch.arange(4)).backward()
    after = backbone.state_dict()
    assert all(torch.equal(after[k], v) for k, v in weights.items() if "running" not in k and "num_batches" not in k)
    assert not torch.equal(after["tagger.bn0.running_mean"], weights["tagger.bn0.running_mean"])
    assert all(p.grad is None for p in backbone.parameters())
    assert system.head.audio_linear[0].weight.grad is not None


@pytest.mark.parametrize("settings, message", [
    (["cache_frozen_audio=true"], "SpecAugment cannot act"),
    (["cache_frozen_audio=true", "spec_augment=false", "freeze_audio=false"], "needs freeze_audio=true"),
])
def test_cached_frozen_embeddings_refuse_what_they_cannot_do(settings, message):
    with pytest.raises(LarbError, match=message):
        SPEC.parameter_counts(apply_overrides(DEFAULTS, settings))


# -- model pieces ---------------------------------------------------------------------------------

def test_backbone_is_pannss_pooled_trunk_without_classifier():
    torch.manual_seed(0)
    tagger = panns.Cnn14(**ENCODERS["cnn14"].tiny).eval()
    waves = 0.1 * torch.randn(2, 16_000)
    with torch.no_grad():
        logmel = tagger.logmel_extractor(tagger.spectrogram_extractor(waves))
        x = tagger._trunk(tagger.bn0(logmel.transpose(1, 3)).transpose(1, 3), waves).mean(3)
        expected = x.amax(2) + x.mean(2)
    backbone = PannsBackbone(tagger).eval()
    assert not hasattr(tagger, "fc1") and not hasattr(tagger, "fc_audioset")
    with torch.no_grad():
        torch.testing.assert_close(backbone(waves), expected)


def test_spec_augment_zeroes_stripes_only_while_training():
    torch.manual_seed(0)
    augment = SpecAugment(time_width=10, freq_width=4)
    x = torch.ones(16, 1, 100, 64)
    out = augment(x)
    dropped = out == 0
    assert dropped.any() and not dropped.all()
    per_example = dropped.flatten(1).float().mean(1)
    assert float(per_example.max()) < (2 * 10 * 64 + 2 * 4 * 100) / (100 * 64) + 1e-6
    assert torch.equal(augment.eval()(x), x)


@pytest.mark.parametrize("name", PARK_LOSSES)
def test_each_loss_is_selectable_and_is_the_zoos_function(name):
    torch.manual_seed(1)
    audio = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    ids = torch.tensor([0, 0, 1, 2, 3, 3])
    config = apply_overrides(DEFAULTS, [f"loss={name}"])
    sim, same = audio @ text.T, same_audio_mask(ids.tolist())
    if name.startswith("triplet"):
        extra = {"same_audio": same, "margin": 0.2}
    else:  # the authors' softmax losses: diagonal positives; InfoNCE on exp(cosine)
        extra = {"same_audio": None, "temperature": 0.07} | ({} if name == "ntxent" else {"exp_similarity": True})
    if name == "infonce-vicreg":
        extra |= {"audio_embeddings": audio, "text_embeddings": text}
    assert torch.allclose(park_loss(config, audio, text, ids), LOSSES[name](sim, **extra))


@pytest.mark.parametrize("name", PARK_LOSSES)
def test_contract_check_passes_for_every_loss(name):
    config = apply_overrides(DEFAULTS, ["size=tiny", "cache_frozen_audio=true", "spec_augment=false", f"loss={name}"])
    results = contract_check(SPEC, config)
    assert not [r.line() for r in results if r.status == "FAIL"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize("mode", ["freeze_audio=false", "freeze_audio=true"])
def test_contract_check_passes_with_the_audio_encoder_fine_tuned_or_frozen_in_the_loop(spec, mode):
    results = contract_check(spec, apply_overrides(spec.defaults, ["size=tiny", mode]))
    assert not [r.line() for r in results if r.status == "FAIL"]
    assert any("gradients reach every trainable parameter" in r.what for r in results)


def test_a_checkpoint_in_the_published_layout_initialises_the_backbone(tmp_path):
    """The loading path of the Zenodo files, on a file written here with their keys (tiny shapes)."""
    torch.manual_seed(3)
    published = panns.Cnn14(**ENCODERS["cnn14"].tiny).state_dict()
    path = tmp_path / "Cnn14_tiny.pth"
    torch.save({"iteration": 1, "model": published}, path)
    system = SPEC.build(apply_overrides(DEFAULTS, [*TINY[:1], f"audio_checkpoint={path}"]), "cpu", False)
    assert isinstance(system, PannsSbert)
    loaded = system.head.backbone.tagger.state_dict()
    assert set(published) - set(loaded) == {"fc1.weight", "fc1.bias", "fc_audioset.weight", "fc_audioset.bias"}
    assert all(torch.equal(loaded[k], published[k]) for k in loaded)


# -- a tiny fine-tuned model on the demo task -------------------------------------------------------

@pytest.fixture
def demo_run(tiny_panns_run):
    return tiny_panns_run


def test_tiny_fine_tuned_model_learns_the_demo_task(demo_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    history = demo_run.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    folder = run_models([Member(demo_run.best_checkpoint, SPEC)], "demo", tmp_path / "panns-sbert-tiny",
                        progress=False)
    scores = harness_scores(folder, "demo")
    print(f"\npanns-sbert tiny on demo: {scores} (chance mAP@10 {chance_map(60):.4f}); history {history}")
    # Measured: mAP@10 0.54 after 2 epochs (chance 0.049).
    assert scores["mAP@10"] > 3 * chance_map(60)
    import yaml

    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    counts = SPEC.parameter_counts(apply_overrides(DEFAULTS, PANNS_DEMO_SETTINGS))
    assert metadata["parameters"] == {"total": counts.total, "trainable": counts.trainable}
    assert metadata["training_data"] == [{"dataset": "demo", "split": "train"}] and not metadata["ensemble"]
    # the run's per-epoch log travels with the submission, for the site's training curves
    from benchmark.submission_folders import load_submission, training_history

    assert metadata["training_log"] == "training_log.jsonl"
    assert training_history(load_submission(folder)) == [
        {k: r[k] for k in ("epoch", "train_loss", "val_loss", "val_mAP@10")} for r in history]


def test_a_checkpoint_from_before_cache_frozen_audio_loads_as_the_cached_run_it_was(tmp_path, monkeypatch):
    """Then freeze_audio=true meant cached embeddings and same-clip captions were NT-Xent positives."""
    from baselines import checkpoint
    from baselines.inference import load_member

    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    config = apply_overrides(DEFAULTS, [*TINY, "cache_frozen_audio=true", "spec_augment=false", "loss=ntxent"])
    system = SPEC.build(config, "cpu", False)
    old = {k: v for k, v in dict(config).items() if k not in ("cache_frozen_audio", "same_audio_positives")}
    old["spec_augment"] = True  # the old default, which had no effect on cached embeddings
    path = tmp_path / "best.pt"
    checkpoint.save(path, {"baseline": SPEC.name, "config": old, "head": system.head.state_dict(),
                           "training_data": [{"dataset": "demo", "split": "train"}], "epoch": 1, "validation": {}})
    loaded = load_member(Member(path, SPEC), progress=False)
    assert loaded.system.frozen_backbone is not None and loaded.system.head.backbone is None
    assert loaded.system.config["same_audio_positives"] and not loaded.system.config["spec_augment"]
