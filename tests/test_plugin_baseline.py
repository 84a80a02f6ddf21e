"""An outside package adds a baseline through the `larb.baselines` entry point: installed as a
dist-info on a temporary path, it is listed, checked, trained on `demo-train`, run on `demo`,
scored and put on the board, all by `larb` in fresh processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent / "plugin_example" / "larb_example_plugin"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder on PYTHONPATH holding the package and its dist-info (what pip would install)."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(EXAMPLE, root / "larb_example_plugin")
    info = root / "larb_example_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: larb-example-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[larb.baselines]\nspectrum-words = larb_example_plugin:SPEC\n")
    return root


def larb(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)


@pytest.mark.slow
def test_a_plug_in_baseline_goes_from_install_to_a_row_on_the_board(site, tmp_path):
    listed = larb(site, tmp_path, "baseline", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    declared = {d["name"]: d for d in json.loads(listed.stdout)}
    assert declared["spectrum-words"]["parameters"] == {"total": 8256, "trainable": 8256}
    assert {"passt-mpnet-tags", "clap-cnn14-htsat"} <= set(declared)  # LARB's own are still there
    checked = larb(site, tmp_path, "baseline", "check", "spectrum-words")
    assert checked.returncode == 0 and "all checks passed." in checked.stdout, checked.stdout + checked.stderr
    trained = larb(site, tmp_path, "baseline", "train", "spectrum-words", "--train-task", "demo-train",
                   "--output", "runs/sw", "--set", "epochs=4")
    assert trained.returncode == 0, trained.stderr
    history = [json.loads(line) for line in (tmp_path / "runs" / "sw" / "log.jsonl").read_text().splitlines()]
    assert len(history) == 4 and history[-1]["train_loss"] < history[0]["train_loss"]
    ran = larb(site, tmp_path, "baseline", "run", "spectrum-words", "--task", "demo", "--checkpoint",
               "runs/sw/best.pt", "--output", "submissions/spectrum-words")
    assert ran.returncode == 0, ran.stderr
    board = larb(site, tmp_path, "leaderboard", "--submissions", "submissions", "--output", "board.md")
    assert board.returncode == 0, board.stderr
    assert "Spectrum + words (d=32)" in (tmp_path / "board.md").read_text("utf-8")
    unknown = larb(site, tmp_path, "baseline", "check", "spectrum-word")
    assert unknown.returncode == 2 and "spectrum-words" in unknown.stderr  # listed among the choices
