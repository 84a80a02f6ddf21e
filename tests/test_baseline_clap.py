"""CNN14 + HTSAT CLAP (Deshmukh et al. 2022): laion-clap's HTSAT without its package __init__, the
LAION-CLAP checkpoint layout, the paper's front end and temperature, the contract check, and a tiny
model trained on `demo-train` (as two tasks joined) ranked text-to-audio and audio-to-text, scored by the harness."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MIRROR, chance_map, harness_scores, require_shared, split_task

from baselines.check import contract_check
from baselines.config import apply_overrides
from baselines.encoders.audio_frontend import slaney_mel_filters
from baselines.encoders.htsat import HTSAT_TEST, HTSAT_TINY, HtsatEncoder, htsat_module, load_htsat
from baselines.inference import Member
from baselines.models.clap_cnn14_htsat import DEFAULTS, SPEC, _cnn14
from baselines.runner import run_models
from baselines.runner import train_baseline as train_model
from baselines.submission_writer import ranking_file_name
from benchmark.errors import LarbError
from benchmark.groundtruth import captions_a2t
from benchmark.rankings import Ranking, read_ranking
from benchmark.scoring import score
from benchmark.tasks import get_task

TINY_CHECK = ["size=tiny", "text_encoder=tiny-roberta"]


def _laion_htsat(config=HTSAT_TINY) -> torch.nn.Module:
    """laion-clap's own HTSAT as its CLAP model builds it (audio_cfg of model_configs/HTSAT-tiny.json)."""
    audio_cfg = types.SimpleNamespace(sample_rate=48_000, window_size=1024, hop_size=480, mel_bins=64, fmin=50,
                                      fmax=14_000, class_num=527, model_name="tiny")
    module = htsat_module()
    if config == HTSAT_TINY:
        return module.create_htsat_model(audio_cfg)
    return module.HTSAT_Swin_Transformer(spec_size=config.spec_size, embed_dim=config.embed_dim,
                                         depths=list(config.depths), num_heads=list(config.num_heads),
                                         config=audio_cfg)


def test_htsat_comes_from_laion_clap_without_its_package_init():
    module = htsat_module()
    assert Path(module.__file__).parts[-3:] == ("laion_clap", "clap_module", "htsat.py")
    assert "laion_clap" not in sys.modules and "torchvision" not in sys.modules


def test_htsat_tiny_keeps_laion_clap_audio_branch_layout_and_embedding():
    torch.manual_seed(0)
    laion = _laion_htsat().eval()
    encoder = HtsatEncoder(HTSAT_TINY).eval()
    dropped = ("spectrogram_extractor.", "logmel_extractor.", "tscam_conv.", "head.")
    expected = {k: tuple(v.shape) for k, v in laion.state_dict().items() if not k.startswith(dropped)}
    assert {k: tuple(v.shape) for k, v in encoder.swin.state_dict().items()} == expected
    assert sum(p.numel() for p in encoder.parameters()) == 27_534_488
    encoder.swin.load_state_dict({k: laion.state_dict()[k] for k in expected})
    logmel = torch.randn(2, 1, 1024, 64)
    with torch.no_grad():
        image = laion.reshape_wav2img(laion.bn0(logmel.transpose(1, 3)).transpose(1, 3))
        torch.testing.assert_close(encoder(logmel), laion.forward_features(image)["embedding"])


def _laion_pann_module() -> types.ModuleType:
    """laion-clap's `clap_module/pann_model.py` (its PANN-14), executed like HTSAT under the
    synthetic parent package (`pad_framewise_output` is imported there but unused by Cnn14)."""
    from baselines.encoders.htsat import _PACKAGE, _laion_file

    htsat_module()
    sys.modules[f"{_PACKAGE}.utils"].pad_framewise_output = None
    spec = importlib.util.spec_from_file_location(f"{_PACKAGE}.pann_model", _laion_file("pann_model.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_cnn14_branch_is_laion_clap_pann14_at_the_paper_front_end():
    """The issue asks for laion-clap's PANN-14: ours has its layout (minus the classifier) and, with
    its weights and BatchNorm statistics, gives its `embedding` at 44.1 kHz, hop 320, 64 bands, 50-8000 Hz."""
    torch.manual_seed(0)
    laion = _laion_pann_module().Cnn14(44_100, 1024, 320, 64, 50, 8_000, 527).eval()
    for module in laion.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    ours = _cnn14(apply_overrides(DEFAULTS, ["spec_augment=False"]), pretrained=False).eval()
    theirs = {k: v for k, v in laion.state_dict().items() if not k.startswith("fc_audioset.")}
    assert {k.removeprefix("tagger.") for k in ours.state_dict()} == set(theirs)
    ours.load_state_dict({f"tagger.{k}": v for k, v in theirs.items()})
    waves = 0.1 * torch.randn(2, 3 * 44_100)
    with torch.no_grad():
        torch.testing.assert_close(ours(waves), laion({"waveform": waves})["embedding"], atol=1e-6, rtol=1e-4)


def test_a_laion_clap_checkpoint_file_loads_the_audio_branch(tmp_path):
    torch.manual_seed(1)
    laion = _laion_htsat(HTSAT_TEST)
    state = {f"module.audio_branch.{k}": v for k, v in laion.state_dict().items()}
    state |= {"module.text_branch.embeddings.position_ids": torch.arange(8)[None],
              "module.audio_projection.0.weight": torch.randn(4, 4), "module.logit_scale_a": torch.tensor(2.0)}
    path = tmp_path / "630k-audioset-best.pt"
    torch.save({"epoch": 45, "state_dict": state}, path)  # the layout of laion-clap's release files
    encoder = load_htsat(path, HTSAT_TEST, release="laion-clap")
    for key, value in encoder.swin.state_dict().items():
        assert torch.equal(value, laion.state_dict()[key]), key
    with pytest.raises(LarbError, match="laion-clap release: add --set htsat_weights=laion-clap"):
        load_htsat(path, HTSAT_TEST)  # the default is the AudioSet HTS-AT: a LAION file is named, not taken
    torch.save({"state_dict": {"module.text_branch.x": torch.zeros(1)}}, path)
    with pytest.raises(LarbError, match="no audio_branch"):
        load_htsat(path, HTSAT_TEST, release="laion-clap")


def test_an_official_hts_at_audioset_checkpoint_loads_by_default(tmp_path):
    """The layout of HTS-AT's release files: a Lightning checkpoint whose model is `sed_model`."""
    torch.manual_seed(2)
    hts_at = _laion_htsat(HTSAT_TEST)
    state = {f"sed_model.{k}": v for k, v in hts_at.state_dict().items()}
    path = tmp_path / "HTSAT_AudioSet_Saved_1.ckpt"
    torch.save({"epoch": 30, "global_step": 1, "state_dict": state}, path)
    encoder = load_htsat(path, HTSAT_TEST)
    for key, value in encoder.swin.state_dict().items():
        assert torch.equal(value, hts_at.state_dict()[key]), key
    with pytest.raises(LarbError, match="audioset release: add --set htsat_weights=audioset"):
        load_htsat(path, HTSAT_TEST, release="laion-clap")
    # a LAION tower brings LAION-630k (AudioCaps and Clotho training data) into the run's declaration
    assert SPEC.inherited_training_data(DEFAULTS) == []
    assert SPEC.inherited_training_data(apply_overrides(DEFAULTS, ["htsat_weights=laion-clap"])) == [
        {"dataset": "laion-630k", "split": "train"}]


def test_full_configuration_declares_exact_parameter_counts():
    cnn14 = 80_753_615 - (527 * 2048 + 527)  # PANNs Cnn14 without its classifier (fc1 is kept)
    htsat, roberta = 27_534_488, 124_055_040  # HTSAT-tiny without classifier; roberta-base without pooler
    projections = (2048 + 768) * 1024 + 1024 + 768 * 1024 + 1024
    counts = SPEC.parameter_counts(DEFAULTS)
    assert counts.trainable == cnn14 + htsat + roberta + projections + 1 == 234_935_385 and counts.frozen == {}
    assert SPEC.required_assets(DEFAULTS) == ["panns/cnn14"]


def test_paper_settings_front_end_and_temperature():
    d = DEFAULTS
    assert (d["lr"], d["optimizer"], d["schedule"], d["lr_step_epochs"], d["lr_factor"], d["epochs"],
            d["batch_size"]) == (1e-4, "adam", "step", 20, 0.1, 45, 128)
    assert (d["cnn14_seconds"], d["htsat_seconds"], d["embed_dim"], d["text_encoder"]) == (20.0, 10.0, 1024,
                                                                                         "roberta-base")
    # every (audio, caption) pair once an epoch, no augmentation, the AudioSet HTS-AT: as the paper
    assert (d["epoch_unit"], d["spec_augment"], d["htsat_weights"]) == ("pairs", False, "audioset")
    synthetic = SPEC.synthetic_system(apply_overrides(DEFAULTS, TINY_CHECK))
    head = synthetic.system.head
    mel = slaney_mel_filters(44_100, 1024, 64, 50.0, 8_000.0)
    assert torch.equal(head.logmel.mel.melW, mel) and torch.equal(head.cnn14.tagger.logmel_extractor.melW, mel)
    assert head.logmel.spectrogram.hop_length == 320 and head.logmel.spectrogram.n_fft == 1024
    assert head.logit_scale.item() == pytest.approx(math.log(1 / 0.007))
    with torch.no_grad():
        head.logit_scale.fill_(9.0)
    synthetic.system.after_step(head)
    assert head.logit_scale.item() == pytest.approx(math.log(1 / 0.007))  # clamped, never sharper than at start
    # a higher cap, as a setting, lets the scale rise past its start
    raised = SPEC.synthetic_system(apply_overrides(DEFAULTS, [*TINY_CHECK, "max_logit_scale=1000"])).system
    with torch.no_grad():
        raised.head.logit_scale.fill_(6.0)
    raised.after_step(raised.head)
    assert raised.head.logit_scale.item() == pytest.approx(6.0)
    with torch.no_grad():
        raised.head.logit_scale.fill_(9.0)
    raised.after_step(raised.head)
    assert raised.head.logit_scale.item() == pytest.approx(math.log(1000))


def test_contract_check_passes():
    results = contract_check(SPEC, apply_overrides(DEFAULTS, TINY_CHECK))
    assert not [r.line() for r in results if r.status == "FAIL"]


def test_htsat_sees_a_random_crop_of_real_audio_while_training():
    head = SPEC.synthetic_system(apply_overrides(DEFAULTS, TINY_CHECK)).system.head
    head.htsat_samples = 4
    waves = torch.arange(20.0).repeat(2, 1)
    crops = head._htsat_crop(waves, torch.tensor([1.0, 0.3]))  # the second clip has 6 real samples
    assert crops.shape == (2, 4) and torch.equal(crops[0], crops[0, 0] + torch.arange(4.0))
    assert int(crops[1, 0]) <= 2


# -- the demo task --------------------------------------------------------------------------------

DEMO = ["size=tiny", "text_encoder=all-MiniLM-L6-v2", "text_pooling=mean", "text_lr=1e-5", "temperature_init=0.07",
        "epoch_unit=clips",
        "cnn14_seconds=3", "htsat_seconds=1.5", "eval_seconds=3", "embed_dim=64", "epochs=3", "batch_size=16",
        "lr=1e-3", "num_workers=0", "device=cpu"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    require_shared(MIRROR / "all-MiniLM-L6-v2" / "model.safetensors")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
        halves = split_task("demo-train", tmp_path_factory.mktemp("clap-data"), ("first", "second"))
        yield train_model(SPEC, halves, None, tmp_path_factory.mktemp("clap") / "run", DEMO, progress=False)


def _a2t_demo():
    task = get_task("demo")
    gt = task.ground_truth
    captions: dict[str, list[str]] = {}
    for qid, text in zip(gt.query_ids, gt.query_texts, strict=True):
        captions.setdefault(next(iter(gt.relevance[qid])), []).append(text)
    return dataclasses.replace(task, ground_truth=captions_a2t([(name, captions[name]) for name in gt.corpus]))


def test_tiny_model_ranks_the_demo_task_both_ways(demo_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    history = demo_run.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    declared = torch.load(demo_run.best_checkpoint, weights_only=True)["training_data"]
    assert declared == [{"dataset": "folder:first", "split": "all"}, {"dataset": "folder:second", "split": "all"}]
    record = json.loads((demo_run.best_checkpoint.parent / "run.json").read_text())
    assert [t["id"] for t in record["inputs"]["train_tasks"]] == ["folder:first", "folder:second"]
    member = Member(demo_run.best_checkpoint, SPEC)
    t2a = harness_scores(run_models([member], "demo", tmp_path / "clap-t2a", progress=False), "demo")
    a2t_task = _a2t_demo()
    folder = run_models([member], a2t_task, tmp_path / "clap-a2t", progress=False)
    gt = a2t_task.ground_truth
    a2t = score(read_ranking(folder / ranking_file_name(a2t_task), gt), gt).means
    rng = np.random.default_rng(0)
    random = np.stack([rng.permutation(len(gt.corpus))[:10] for _ in gt.query_ids])
    a2t_chance = score(Ranking(random, "", Path()), gt).means
    print(f"\nclap tiny on demo: t2a {t2a} (chance {chance_map(60):.4f}); a2t {a2t} (random {a2t_chance}); {history}")
    assert t2a["mAP@10"] > 2 * chance_map(60)
    assert a2t["mAP@10"] > 2 * a2t_chance["mAP@10"] and a2t["R@10"] > a2t_chance["R@10"]


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps its state (mixed precision included) process-wide, and the tests before this one
    built Accelerators without mixed precision; a CLI training is one process, so only the test resets
    it, the way Accelerate's own tests do, before and after."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_mixed_precision_training_runs_and_keeps_float32_weights(tmp_path, monkeypatch, fresh_accelerate_state):
    """The GPU default is fp16 autocast; bf16 autocast is the CPU's, through the same Accelerate path:
    the log-mel front ends leave autocast, the loss is computed in float32, the weights stay float32."""
    require_shared(MIRROR / "all-MiniLM-L6-v2" / "model.safetensors")
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    first_half = split_task("demo-train", tmp_path, ("first", "second"))[0]
    settings = [*DEMO, "epochs=1", "mixed_precision=bf16"]
    result = train_model(SPEC, first_half, None, tmp_path / "run", settings, progress=False)
    record = result.history[0]
    assert math.isfinite(record["train_loss"]) and math.isfinite(record["val_loss"]) and record["val_mAP@10"] > 0
    head = torch.load(result.best_checkpoint, weights_only=True)["head"]
    assert {v.dtype for v in head.values() if v.is_floating_point()} == {torch.float32}
