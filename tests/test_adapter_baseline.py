"""A registered LARB baseline behind the model protocol ranks exactly as `larb baseline run` does:
zero-shot on the 21 real clips, and a trained checkpoint on `demo`."""

from __future__ import annotations

import pytest
import yaml
from conftest import MIRROR, REFERENCE, require_shared

from baselines.adapters.baseline_checkpoint import BaselineModel
from baselines.inference import Member
from baselines.model_runner import ModelMetadata, run_model
from baselines.models.panns_sbert import SPEC as PANNS
from baselines.runner import run_baseline, run_models
from benchmark import evaluate

pytestmark = pytest.mark.slow


def test_a_zero_shot_baseline_through_the_protocol_writes_the_baselines_ranking(tmp_path, monkeypatch):
    for name in ("mn04_as_mAP_432.pt", "class_labels_indices.csv", "all-MiniLM-L6-v2/model.safetensors"):
        require_shared(MIRROR / name)
    task = require_shared(REFERENCE / "audio_mini")
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    settings = ["tagger=mn04", "text_encoder=all-MiniLM-L6-v2", "lambda=0"]
    model = BaselineModel(baseline="passt-mpnet-tags", settings=";".join(settings))
    assert model.sample_rate == 32_000 and model.training_data == []
    folder, result = run_model(model, str(task), tmp_path / "adapter",
                               ModelMetadata(team="LARB tests", licence="CC0-1.0"), progress=False)
    direct = run_baseline("passt-mpnet-tags", str(task), [], tmp_path / "direct", settings, progress=False)
    csv_name = "folder__audio_mini.csv"
    assert (folder / csv_name).read_bytes() == (direct / csv_name).read_bytes()
    assert result.metrics == evaluate(direct, str(task)).metrics


def test_a_trained_checkpoint_through_the_protocol_writes_the_baselines_ranking(tiny_panns_run, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    checkpoint = tiny_panns_run.best_checkpoint
    model = BaselineModel(checkpoint=str(checkpoint), settings="device=cpu")
    assert model.sample_rate == 32_000 and model.training_data == [{"dataset": "demo", "split": "train"}]
    folder, result = run_model(model, "demo", tmp_path / "adapter",
                               ModelMetadata(team="LARB tests", licence="CC0-1.0"), progress=False)
    direct = run_models([Member(checkpoint, PANNS)], "demo", tmp_path / "direct", progress=False)
    assert (folder / "demo.csv").read_bytes() == (direct / "demo.csv").read_bytes()
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text("utf-8"))
    assert metadata["training_data"] == [{"dataset": "demo", "split": "train"}]
    assert metadata["parameters"] == yaml.safe_load((direct / "metadata.yaml").read_text("utf-8"))["parameters"]
