"""`larb baseline sweep`: every point of a grid trained, ranked, scored and analysed, resumable."""

from __future__ import annotations

import json

import pytest
from conftest import MIRROR, require_shared

pytestmark = pytest.mark.slow

OFFLINE = ["--set", "tagger=mn04", "--set", "text_encoder=all-MiniLM-L6-v2", "--set", "epochs=2",
           "--set", "device=cpu"]


def test_a_sweep_gives_one_run_submission_and_row_per_point_and_resumes(run_cli, tmp_path, monkeypatch):
    for name in ("mn04_as_mAP_432.pt", "class_labels_indices.csv", "all-MiniLM-L6-v2/model.safetensors"):
        require_shared(MIRROR / name)
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    monkeypatch.chdir(tmp_path)
    args = ["baseline", "sweep", "passt-mpnet-tags", "--grid", "lambda=0.5,1.0", "--train-task", "demo-train",
            "--task", "demo", "--output", "sweep", *OFFLINE]
    code, out, err = run_cli(*args)
    assert code == 0, err
    rows = json.loads((tmp_path / "sweep" / "sweep.json").read_text("utf-8"))
    assert [row["lambda"] for row in rows] == ["0.5", "1.0"]
    for row in rows:
        assert 0 < row["mAP@10"] <= 1 and 0 < row["audio_h"] <= 5.55 and row["best_epoch"] in (1, 2)
    for slug in ("lambda-0.5", "lambda-1.0"):
        assert (tmp_path / "sweep" / "runs" / slug / "best.pt").is_file()
        assert (tmp_path / "sweep" / "submissions" / f"passt-mpnet-tags-{slug}" / "metadata.yaml").is_file()
    assert (tmp_path / "sweep" / "sweep.png").read_bytes()[:4] == b"\x89PNG" and "| lambda" in out
    # resumable: a finished point is read back, not trained again
    (tmp_path / "sweep" / "runs" / "lambda-0.5" / "best.pt").unlink()
    code, _, err = run_cli(*args)
    assert code == 0, err
    assert not (tmp_path / "sweep" / "runs" / "lambda-0.5" / "best.pt").exists()
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text("utf-8")) == rows


def test_a_bad_grid_is_one_error(run_cli):
    code, _, err = run_cli("baseline", "sweep", "passt-mpnet-tags", "--grid", "lambda=low", "--train-task", "demo",
                           "--task", "demo", "--output", "x")
    assert code == 2 and "lambda=low: expected a finite float" in err
