"""`larb data export`: a built split becomes a task folder whose ground truth is the split's own.

The Clotho evaluation split is built as `tests/test_data_clotho.py` builds it (official layout
on a loopback server); the real captions CSV (when ../shared is present) must give the
registered task's pinned sha256 through the exported folder."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
from data_helpers import (
    Loopback,
    clotho_captions_csv,
    clotho_metadata_csv,
    isolate,
    make_7z,
    md5,
    reference_file,
    wav_bytes,
)

from benchmark import output_folders
from benchmark.cli import main
from benchmark.errors import LarbError
from benchmark.tasks import TASKS, get_task
from datasets_builders import export as export_module
from datasets_builders import sources
from datasets_builders.base import common_features
from datasets_builders.build import build, finish, save_atomically
from datasets_builders.export import CAPTIONS_FILE, MANIFEST_FILE, export, partial_folder
from datasets_builders.tables import wide_captions
from datasets_builders.task_groundtruth import task_ground_truth

NAMES = [" Ambience Birds.wav", "Santa Motor.wav", "risas nenas.wav"]
ZENODO = "/zenodo/records/4783391/files/"


def build_evaluation(tmp: Path, *, sample_rate: int | None = None) -> Path:
    """The Clotho evaluation split from test fixtures, served as Zenodo publishes it."""
    members = {f"evaluation/{name}": wav_bytes(seconds=0.2, seed=i) for i, name in enumerate(NAMES)}
    files = {"clotho_audio_evaluation.7z": make_7z(tmp / "eval.7z", members).read_bytes(),
             "clotho_captions_evaluation.csv": clotho_captions_csv(NAMES),
             "clotho_metadata_evaluation.csv": clotho_metadata_csv(NAMES)}
    out = tmp / ("built" if sample_rate is None else f"built-{sample_rate}")
    with pytest.MonkeyPatch.context() as mp, Loopback() as server:
        for name, data in files.items():
            server.routes[ZENODO + name] = data
            mp.setitem(sources.CHECKSUM_OVERRIDES, name, md5(data))
        mp.setenv("LARB_URL_REWRITE", f"https://zenodo.org/={server.url}/zenodo/")
        build("clotho", splits=["evaluation"], sample_rate=sample_rate, output=out)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export-build")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp)
        return build_evaluation(tmp)


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    isolate(monkeypatch, tmp_path)

    def run(*argv: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def read_captions(folder: Path) -> list[list[str]]:
    with open(folder / CAPTIONS_FILE, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_exported_split_is_a_folder_task_with_the_splits_ground_truth(built, cli, tmp_path):
    folder = tmp_path / "tasks" / "clotho-eval"
    code, out, err = cli("data", "export", built, "--split", "evaluation", "--to", folder)
    assert code == 0, err
    assert "clotho evaluation: 3 rows, 3 audio files (3 written), 0 skipped" in out
    assert f"--task {folder}" in out
    split = datasets.load_from_disk(str(built))["evaluation"]
    expected = task_ground_truth(split, "clotho-v2.1/evaluation")
    task = get_task(folder)
    assert task.ground_truth.query_ids == expected.query_ids
    assert task.ground_truth.sha256 == expected.sha256
    assert task.ground_truth.hashes() == expected.hashes()
    # the official WAV bytes, under the verbatim names (leading space kept)
    for i, name in enumerate(NAMES):
        assert (folder / name).read_bytes() == wav_bytes(seconds=0.2, seed=i)
        assert task.audio_path(name) == folder.resolve() / name
    rows = read_captions(folder)
    assert rows[0] == ["file_name", *(f"caption_{k}" for k in range(1, 6))]
    assert [r[0] for r in rows[1:]] == NAMES
    assert not partial_folder(folder).exists()
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["complete"] and manifest["split"] == "evaluation" and manifest["skipped"] == []
    # training on this folder is declared as Clotho's evaluation split, so the board's † sees through it
    assert task.spec.evaluation_data == ("clotho-v2.1/evaluation",)


def test_real_captions_give_the_pinned_sha256(tmp_path, monkeypatch):
    """The real evaluation captions CSV + generated audio: the exported folder is the registered task."""
    captions = reference_file("clotho", "clotho_captions_evaluation.csv")
    isolate(monkeypatch, tmp_path)
    data = tmp_path / "downloads"
    (data / "evaluation").mkdir(parents=True)
    (data / captions.name).write_bytes(captions.read_bytes())
    names = [name for name, _ in wide_captions(captions)]
    (data / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(names))
    clip = wav_bytes(seconds=0.001)
    for name in names:
        (data / "evaluation" / name).write_bytes(clip)
    build("clotho", splits=["evaluation"], data_dir=data, output=tmp_path / "built")
    result = export(tmp_path / "built", "evaluation", tmp_path / "task")
    assert result.exported == 1045 and not result.skipped
    truth = get_task(tmp_path / "task").ground_truth
    assert truth.sha256 == TASKS["clotho-v2.1/evaluation"].sha256
    assert truth.n_queries == 5225


def test_resampled_build_is_decoded_and_resampled_to_wav(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    built32 = build_evaluation(tmp_path, sample_rate=32_000)  # stored as FLAC at 32 kHz
    stored = datasets.load_from_disk(str(built32))["evaluation"]
    result = export(built32, "evaluation", tmp_path / "as-stored")
    assert result.written == 3
    info = sf.info(str(tmp_path / "as-stored" / NAMES[0]))
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("WAV", "PCM_16", 32_000, 6400)
    decoded, _ = sf.read(io.BytesIO(stored[0]["audio"]["bytes"]), dtype="int16")
    written, _ = sf.read(str(tmp_path / "as-stored" / NAMES[0]), dtype="int16")
    assert np.array_equal(decoded, written)  # lossless FLAC -> WAV
    export(built32, "evaluation", tmp_path / "at16k", sample_rate=16_000)
    info = sf.info(str(tmp_path / "at16k" / NAMES[1]))
    assert (info.format, info.samplerate, info.frames) == ("WAV", 16_000, 3200)
    assert get_task(tmp_path / "at16k").ground_truth.sha256 == task_ground_truth(
        stored, "clotho-v2.1/evaluation").sha256


def hand_built(tmp_path: Path) -> Path:
    """A build with an unavailable clip, a FLAC-named clip, uneven captions and a caption-less row."""
    rows = [
        ("a_10.wav", wav_bytes(seed=1), ["A dog barks.", "Barking, twice.", 'He said "stop".']),
        ("missing_20.wav", None, ["Not on YouTube any more."]),
        ("clip.flac", wav_bytes(seed=2, fmt="FLAC"), ["A bell rings."]),
        ("quiet.wav", wav_bytes(seed=3), []),
    ]
    features = common_features({})
    table = datasets.Dataset.from_dict({
        "audio": [{"bytes": data, "path": name} if data else None for name, data, _ in rows],
        "file_name": [name for name, _, _ in rows], "captions": [c for _, _, c in rows],
        "dataset": ["audiocaps"] * 4, "split": ["test"] * 4, "sampling_rate": [44_100, None, 44_100, 44_100],
        "duration": [0.05, None, 0.05, 0.05], "channels": [1, None, 1, 1],
        "source_id": ["youtube:aaaaaaaaaaa", "youtube:mmmmmmmmmmm", None, "youtube:qqqqqqqqqqq"],
        "source_start": [10.0, 20.0, None, 0.0], "audio_sha256": [None] * 4}, features=features)
    return save_atomically(datasets.DatasetDict({"test": finish(table, None)}), tmp_path / "hand")


def test_missing_audio_is_skipped_and_listed(cli, tmp_path):
    source = hand_built(tmp_path)
    folder = tmp_path / "task"
    code, out, err = cli("data", "export", source, "--split", "test", "--to", folder)
    assert code == 0, err
    assert "audiocaps test: 4 rows, 3 audio files (3 written), 1 skipped" in out
    assert "skipped, no audio (1; their captions are not in the task):\n  missing_20.wav" in out
    assert "'clip.flac' -> 'clip.wav'" in out
    manifest = json.loads((folder / ".larb-export.json").read_text())  # each exported file's source, for audits
    assert manifest["sources"] == {"a_10.wav": "youtube:aaaaaaaaaaa", "quiet.wav": "youtube:qqqqqqqqqqq"}
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, output_folders.MARKER, "a_10.wav",
                                                        CAPTIONS_FILE, "clip.wav", "quiet.wav"]
    assert sf.info(str(folder / "clip.wav")).format == "WAV"
    assert read_captions(folder) == [
        ["file_name", "caption_1", "caption_2", "caption_3"],
        ["a_10.wav", "A dog barks.", "Barking, twice.", 'He said "stop".'],
        ["clip.wav", "A bell rings.", "", ""],
        ["quiet.wav", "", "", ""]]
    truth = get_task(folder).ground_truth
    assert truth.query_ids == ("a_10.wav#1", "a_10.wav#2", "a_10.wav#3", "clip.wav#1")
    assert set(truth.corpus) == {"a_10.wav", "clip.wav", "quiet.wav"}
    assert json.loads((folder / MANIFEST_FILE).read_text())["skipped"] == ["missing_20.wav"]


def test_user_errors_exit_2_and_leave_nothing(built, cli, tmp_path):
    folder = tmp_path / "task"
    code, _, err = cli("data", "export", built, "--split", "train", "--to", folder)
    assert code == 2 and "larb: error:" in err and "no 'train' split" in err and "evaluation" in err
    assert not folder.exists() and not partial_folder(folder).exists()
    code, _, err = cli("data", "export", tmp_path, "--split", "evaluation", "--to", folder)
    assert code == 2 and "not a folder written by 'larb data build --output'" in err
    code, _, err = cli("data", "export", built, "--split", "evaluation", "--to", built / "inside")
    assert code == 2 and "overlap" in err
    code, _, err = cli("data", "export", built, "--split", "evaluation", "--to", folder, "--sample-rate", "12345")
    assert code == 2 and "unsupported sample rate 12345" in err
    assert not folder.exists()
    # an existing folder is refused, untouched, unless --overwrite
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    code, _, err = cli("data", "export", built, "--split", "evaluation", "--to", folder)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    # --overwrite replaces only a folder that LARB wrote: never the user's own
    code, _, err = cli("data", "export", built, "--split", "evaluation", "--to", folder, "--overwrite")
    assert code == 2 and "only a folder that LARB wrote" in err
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    (folder / "keep.txt").unlink()
    folder.rmdir()
    for _ in range(2):  # written, then replaced
        code, _, err = cli("data", "export", built, "--split", "evaluation", "--to", folder, "--overwrite")
        assert code == 0, err
        assert (folder / CAPTIONS_FILE).is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".task")] == []
    with pytest.raises(LarbError, match="names an audio file: there is nothing to export"):
        export(_one_row(tmp_path / "captions-only", None), "s", tmp_path / "none")
    with pytest.raises(LarbError, match="split has audio: there is no task"):
        export(_one_row(tmp_path / "unavailable", "gone_10.wav"), "s", tmp_path / "none")
    assert not (tmp_path / "none").exists() and not partial_folder(tmp_path / "none").exists()


def _one_row(path: Path, file_name: str | None) -> Path:
    """A build of one row without audio (a retrieval caption, or an unavailable clip)."""
    table = datasets.Dataset.from_dict({
        "audio": [None], "file_name": [file_name], "captions": [["A dog barks."]], "dataset": ["clotho"],
        "split": ["s"], "sampling_rate": [None], "duration": [None], "channels": [None], "source_id": [None],
        "source_start": [None], "audio_sha256": [None]},
        features=common_features({}))
    return save_atomically(datasets.DatasetDict({"s": finish(table, None)}), path)


def test_interrupted_export_is_detected_and_resumes(built, cli, tmp_path, monkeypatch):
    folder = tmp_path / "task"
    real = export_module._wav_bytes
    calls = []

    def interrupted(data, rate, name):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(data, rate, name)

    monkeypatch.setattr(export_module, "_wav_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(built, "evaluation", folder)
    partial = partial_folder(folder)
    assert not folder.exists()  # a failed export leaves no FOLDER
    assert sorted(p.name for p in partial.iterdir()) == [NAMES[0], MANIFEST_FILE]  # no captions.csv: unfinished
    assert not json.loads((partial / MANIFEST_FILE).read_text())["complete"]
    first = (partial / NAMES[0]).stat()
    monkeypatch.setattr(export_module, "_wav_bytes", real)

    code, out, err = cli("data", "export", built, "--split", "evaluation", "--to", folder)
    assert code == 0, err
    assert "3 audio files (2 written, 1 kept from the interrupted export)" in out
    assert "resuming the interrupted export" in err
    assert (folder / NAMES[0]).stat().st_ino == first.st_ino  # kept, not written again
    assert not partial.exists()
    split = datasets.load_from_disk(str(built))["evaluation"]
    assert get_task(folder).ground_truth.sha256 == task_ground_truth(split, "clotho-v2.1/evaluation").sha256

    # a partial export of other options is discarded, not mixed in
    monkeypatch.setattr(export_module, "_wav_bytes", interrupted)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        export(built, "evaluation", tmp_path / "other", sample_rate=16_000)
    monkeypatch.setattr(export_module, "_wav_bytes", real)
    result = export(built, "evaluation", tmp_path / "other")
    assert (result.written, result.kept) == (3, 0)
    assert sf.info(str(tmp_path / "other" / NAMES[0])).samplerate == 44_100
