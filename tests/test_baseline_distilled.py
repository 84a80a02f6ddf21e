"""Distilled PaSST (Primus et al. 2024): declaration, schedule, tiling, checkpoint loading, contract
check, and on the demo task: stage 1, correspondence estimation, stage-2 self-distillation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import MIRROR, chance_map, harness_scores, require_shared

from baselines import checkpoint
from baselines.audio.tiles import tile_mean
from baselines.check import contract_check
from baselines.config import apply_overrides
from baselines.encoders.passt import Passt
from baselines.inference import Member
from baselines.losses import distillation
from baselines.models.passt_distilled import DEFAULTS, PASST_TEST, SPEC, PasstDistilled, PasstTiles
from baselines.runner import run_models
from baselines.runner import train_baseline as train_model
from baselines.train.schedules import warmup_cosine_factor
from benchmark.errors import LarbError

TINY_CHECK = ["size=tiny", "text_encoder=tiny-roberta"]


def test_full_configuration_declares_exact_parameter_counts():
    counts = SPEC.parameter_counts(DEFAULTS)
    passt = 86_122_270 - (768 * 527 + 527) - (2 * 768 + 768 * 527 + 527)  # without the two AudioSet heads
    roberta_large = 354_310_144  # no pooler
    projections = (768 * 1024 + 1024) + (1024 * 1024 + 1024)
    assert passt == 85_310_208
    assert counts.trainable == passt + roberta_large + projections == 441_457_408 and counts.frozen == {}
    assert SPEC.required_assets(DEFAULTS) == []  # nothing pinned: the files are passed by path


def test_defaults_are_salsas_settings():
    d = DEFAULTS
    assert (d["optimizer"], d["lr"], d["weight_decay"], d["schedule"], d["min_lr"]) == ("adamw", 2e-5, 0.0,
                                                                                      "warmup-cosine", 1e-7)
    assert (d["warmup_epochs"], d["rampdown_start"], d["rampdown_stop"], d["epochs"], d["batch_size"]) == (
        1.0, 1.0, 15.0, 20, 64)
    assert (d["temperature"], d["embed_dim"], d["max_text_tokens"], d["tile_seconds"], d["clip_seconds"]) == (
        0.05, 1024, 32, 10.0, 30.0)
    assert (d["s_patchout_t"], d["s_patchout_f"], d["text_encoder"], d["stage"]) == (15, 2, "roberta-large", 1)


def test_schedule_is_salsas_update_lr():
    config = apply_overrides(DEFAULTS, [])
    base = 2e-5

    def salsa(epoch: float) -> float:  # ex_dcase24.py update_lr, linear warm-up, cosine
        if epoch < 1:
            return base * epoch
        if epoch < 15:
            return 1e-7 + (base - 1e-7) * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / 14))
        return 1e-7

    for epoch in (0.0, 0.25, 1.0, 3.5, 14.9, 15.0, 19.0):
        assert warmup_cosine_factor(epoch, base, config) * base == pytest.approx(salsa(epoch), rel=1e-9, abs=1e-15)


def test_tiles_are_averaged_over_the_real_audio_only():
    def encode(tiles: torch.Tensor) -> torch.Tensor:
        return tiles[:, :1] * torch.ones(1, 3)

    waves = torch.arange(12.0).reshape(2, 6)  # two clips of three 2-sample tiles
    out = tile_mean(encode, waves, 2, torch.tensor([1.0, 0.4]))
    assert torch.allclose(out[0], torch.full((3,), (0 + 2 + 4) / 3))
    assert torch.allclose(out[1], torch.full((3,), (6 + 8) / 2))  # ceil(0.4 * 3) = 2 tiles hold audio
    assert torch.allclose(tile_mean(encode, waves, 2, None)[1], torch.full((3,), (6 + 8 + 10) / 3))


@pytest.mark.parametrize("stage", [1, 2])
def test_contract_check_passes(stage):
    extra = ["stage=2", "distill_from=a.pt;b.pt"] if stage == 2 else []
    results = contract_check(SPEC, apply_overrides(DEFAULTS, [*TINY_CHECK, *extra]))
    assert not [r.line() for r in results if r.status == "FAIL"]


def test_stage_two_needs_members_and_the_end_to_end_trainer():
    with pytest.raises(LarbError, match="stage 2 needs the stage-1 models"):
        SPEC.parameter_counts(apply_overrides(DEFAULTS, ["stage=2"]))
    synthetic = SPEC.synthetic_system(apply_overrides(DEFAULTS, [*TINY_CHECK, "stage=2", "distill_from=a.pt"]))
    system = synthetic.system
    system.batch_teacher = None
    audio = text = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    with pytest.raises(LarbError, match="only the end-to-end trainer supplies"):
        system.loss(audio, text, torch.arange(4))


def test_a_checkpoint_in_the_published_layout_initialises_passt(tmp_path):
    torch.manual_seed(0)
    published = Passt(PASST_TEST).state_dict()  # with the AudioSet heads, as the release files
    path = tmp_path / "passt-tiny.pt"
    torch.save(published, path)
    system = SPEC.build(apply_overrides(DEFAULTS, [*TINY_CHECK, f"audio_checkpoint={path}"]), "cpu", False)
    loaded = system.head.passt.passt.state_dict()
    assert {k.split(".")[0] for k in set(published) - set(loaded)} == {"head", "head_dist"}
    assert all(torch.equal(loaded[k], published[k]) for k in loaded)
    assert isinstance(system.head.passt, PasstTiles)


# -- the demo task --------------------------------------------------------------------------------

DEMO = ["size=tiny", "text_encoder=all-MiniLM-L6-v2", "text_pooling=mean", "clip_seconds=3", "tile_seconds=1",
        "s_patchout_t=2", "s_patchout_f=1", "lr=1e-3", "text_lr=1e-5", "batch_size=16", "epochs=2",
        "epoch_unit=clips", "warmup_epochs=0.5", "num_workers=0", "device=cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require_shared(MIRROR / "all-MiniLM-L6-v2" / "model.safetensors")
    work = tmp_path_factory.mktemp("distilled")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
        stage1 = train_model(SPEC, "demo-train", None, work / "stage1", DEMO, progress=False)
        stage2 = train_model(SPEC, "demo-train", None, work / "stage2",
                             [*DEMO, "stage=2", f"distill_from={stage1.best_checkpoint}", "epochs=1", "lr=3e-4"],
                             progress=False)
        yield {"stage1": stage1, "stage2": stage2, "work": work}


def test_stage_one_learns_the_demo_task(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    history = runs["stage1"].history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    folder = run_models([Member(runs["stage1"].best_checkpoint, SPEC)], "demo", tmp_path / "distilled-s1",
                        progress=False)
    scores = harness_scores(folder, "demo")
    print(f"\npasst-distilled tiny, stage 1, on demo: {scores} (chance {chance_map(60):.4f}); {history}")
    assert scores["mAP@10"] > 2 * chance_map(60)


def test_stage_two_self_distillation_starts_from_stage_one_and_scores(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    stage2 = checkpoint.load(runs["stage2"].best_checkpoint, SPEC.name)
    assert stage2["config"]["stage"] == 2 and stage2["config"]["distill_from"] == str(runs["stage1"].best_checkpoint)
    folder = run_models([Member(runs["stage2"].best_checkpoint, SPEC)], "demo", tmp_path / "distilled-s2",
                        progress=False)
    scores = harness_scores(folder, "demo")
    print(f"\npasst-distilled tiny, stage 2 (self-distilled), on demo: {scores}; {runs['stage2'].history}")
    assert scores["mAP@10"] > 2 * chance_map(60)
    import yaml

    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    assert "stage 2, self-distilled" in metadata["system"]
    counts = SPEC.parameter_counts(stage2["config"])  # the student only: teachers train, never rank
    assert metadata["parameters"] == {"total": counts.total, "trainable": counts.trainable}


def test_estimated_correspondences_are_the_members_mean_cosine(runs, monkeypatch):
    """Ensemble variant: two members (stage 1 and stage 2); targets = softmax(mean cosine / tau)."""
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    one, two = runs["stage1"].best_checkpoint, runs["stage2"].best_checkpoint
    config = apply_overrides(DEFAULTS, [*DEMO, "stage=2", f"distill_from={one};{two}"])
    system = SPEC.build(config, "cpu", False)
    assert isinstance(system, PasstDistilled)
    from benchmark.tasks import get_task

    features = system.task_features(get_task("demo-train"))
    train = features.subset(np.arange(40))
    system.estimate_correspondences(train, progress=False)
    assert len(system.teacher_audio) == 2 and system.teacher_audio[0].shape[0] == len(train.ground_truth.corpus)
    queries, clips = train.pairs()
    q, a = queries[:8], clips[:8]
    teacher = torch.stack([ta[a] @ tt[q].T for ta, tt in zip(system.teacher_audio, system.teacher_text, strict=True)])
    for member in (system.teacher_audio + system.teacher_text):
        assert torch.allclose(member.norm(dim=1), torch.ones(len(member)), atol=1e-4)  # cosine similarities
    student = torch.nn.functional.normalize(torch.randn(8, 8), dim=-1)
    expected = distillation(student @ student.T, teacher_similarities=teacher, temperature=0.05)
    got = system.batch_loss(student, student, a, q, None)
    assert torch.allclose(got, expected)
    assert "distilled from 2 models" in SPEC.system_name(config)
