"""`larb data ...`: the plug-in's commands, through a throwaway parser and through `larb` itself."""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

import datasets
import pytest
from data_helpers import clotho_captions_csv, clotho_metadata_csv, isolate, reference_file, wav_bytes

from benchmark.errors import LarbError
from datasets_builders.cli import register
from datasets_builders.tables import wide_captions

NAMES = ["a dog.wav", " space first.wav"]


@pytest.fixture
def run(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    parser = argparse.ArgumentParser(prog="larb")
    register(parser.add_subparsers(dest="command", required=True))

    def invoke(*argv: object) -> int:
        args = parser.parse_args([str(a) for a in argv])
        return args.func(args)

    return invoke


def clotho_folder(root, names=NAMES, captions: bytes | None = None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "clotho_captions_evaluation.csv").write_bytes(captions or clotho_captions_csv(names))
    (root / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(names))
    (root / "evaluation").mkdir(exist_ok=True)
    for i, name in enumerate(names):
        (root / "evaluation" / name).write_bytes(wav_bytes(seconds=0.01, seed=i))
    return root


def test_list_and_info(run, capsys):
    assert run("data", "list") == 0
    listed = capsys.readouterr().out
    for name in ("clotho", "audiocaps", "wavcaps", "wavtext5k", "macs"):
        assert name in listed
    assert run("data", "info", "wavcaps") == 0
    info = capsys.readouterr().out
    assert "option blacklist=exclude_test_ac" in info and "soundbible" in info
    assert run("data", "info", "clotho") == 0
    assert "split evaluation gives the ground truth of: clotho-v2.1/evaluation" in capsys.readouterr().out
    with pytest.raises(LarbError, match="unknown dataset"):
        run("data", "info", "nope")


def test_build_then_groundtruth_differs_for_other_captions(run, tmp_path, capsys):
    data = clotho_folder(tmp_path / "dl")
    out = tmp_path / "built"
    assert run("data", "build", "clotho", "--split", "evaluation", "--data-dir", data, "--output", out,
               "--sample-rate", "32000", "--num-proc", "2") == 0
    assert "clotho evaluation: 2 rows, 2 with audio" in capsys.readouterr().out
    loaded = datasets.load_from_disk(str(out))
    assert loaded["evaluation"]["file_name"] == NAMES and set(loaded["evaluation"]["sampling_rate"]) == {32000}
    assert run("data", "groundtruth", out, "--task", "clotho-v2.1/evaluation") == 1
    assert "differs from the registered task" in capsys.readouterr().err
    with pytest.raises(LarbError, match="output folder already exists"):
        run("data", "build", "clotho", "--split", "evaluation", "--data-dir", data, "--output", out)
    assert run("data", "build", "clotho", "--split", "evaluation", "--data-dir", data, "--output", out,
               "--overwrite") == 0
    with pytest.raises(LarbError, match="bad --option"):
        run("data", "build", "clotho", "--option", "oops", "--output", tmp_path / "x")
    with pytest.raises(LarbError, match="no built split feeds task"):
        run("data", "groundtruth", out, "--task", "demo")


def test_groundtruth_of_a_real_build_is_the_registered_one(run, tmp_path, capsys):
    captions = reference_file("clotho", "clotho_captions_evaluation.csv")
    names = [name for name, _ in wide_captions(captions)]
    data = clotho_folder(tmp_path / "dl", names, captions.read_bytes())
    assert run("data", "build", "clotho", "--split", "evaluation", "--data-dir", data, "--output",
               tmp_path / "built") == 0
    assert run("data", "groundtruth", tmp_path / "built", "--task", "clotho-v2.1/evaluation") == 0
    out = capsys.readouterr().out
    assert "5225 queries, 1045 candidates" in out and "identical to the registered task" in out


def test_the_larb_cli_finds_the_plugin(monkeypatch, tmp_path, capsys):
    if not any(e.name == "data" for e in entry_points(group="larb.commands")):
        pytest.skip("the larb package is not installed (no larb.commands entry points)")
    from benchmark.cli import main

    isolate(monkeypatch, tmp_path)
    assert main(["data", "list"]) == 0
    assert "wavtext5k" in capsys.readouterr().out
    assert main(["data", "build", "clothoo", "--output", str(tmp_path / "o")]) == 2
    assert "larb: error: unknown dataset 'clothoo'" in capsys.readouterr().err
    assert main(["data", "build", "clotho", "--sample-rate", "12345", "--output", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
