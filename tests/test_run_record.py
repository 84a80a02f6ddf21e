"""run.json: a training run's inputs pinned by checksum, and a resumed run held to them."""

from __future__ import annotations

import hashlib
import json

import pytest

from baselines.config import apply_overrides
from baselines.models.passt_mpnet_tags import DEFAULTS, SPEC
from baselines.run_record import weights_file_digests, write_run_record
from benchmark.errors import LarbError
from benchmark.tasks import get_task


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_weights_given_by_path_are_hashed_file_by_file(tmp_path):
    (tmp_path / "htsat.pt").write_bytes(b"weights")
    model = tmp_path / "roberta"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"tensors")
    (model / "config.json").write_bytes(b"{}")
    config = {"htsat_checkpoint": str(tmp_path / "htsat.pt"), "text_checkpoint": str(model),
              "cnn14_checkpoint": "", "audio_checkpoint": "none", "lr": 1e-4}
    digests = weights_file_digests(config)
    assert digests == {
        "htsat_checkpoint": {"path": str(tmp_path / "htsat.pt"), "sha256": _sha256(b"weights")},
        "text_checkpoint": {"path": str(model), "files": {"config.json": _sha256(b"{}"),
                                                          "model.safetensors": _sha256(b"tensors")}}}


def test_the_record_pins_tasks_and_assets_and_a_resume_must_match(tmp_path):
    config = apply_overrides(DEFAULTS, ["tagger=mn04", "text_encoder=all-MiniLM-L6-v2"])
    train, val = get_task("demo-train"), get_task("demo")
    path = write_run_record(tmp_path / "run", SPEC, config, [train], None)
    inputs = json.loads(path.read_text())["inputs"]
    assert inputs["train_tasks"] == [{"id": "demo-train", "ground_truth_sha256": train.ground_truth.sha256}]
    assert inputs["assets"]["efficientat/mn04_as"].startswith("sha256:899a8c62")
    assert inputs["val_task"] is None and inputs["weights_files"] == {}
    before = path.read_bytes()
    write_run_record(tmp_path / "run", SPEC, config, [train], None)  # the same inputs: a resume
    assert path.read_bytes() == before
    with pytest.raises(LarbError, match=r"started from other inputs \(val_task\)"):
        write_run_record(tmp_path / "run", SPEC, config, [train], val)
    assert path.read_bytes() == before
