"""Clotho v2.1 builder: official layouts served from a loopback server, the real CSVs parsed
whole, ground truth identical to the harness's registered tasks, failures that leave nothing."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from data_helpers import (
    Loopback,
    clotho_captions_csv,
    clotho_metadata_csv,
    isolate,
    make_7z,
    make_zip,
    md5,
    reference_file,
    wav_bytes,
    write_wav,
)

from benchmark.errors import LarbError
from benchmark.tasks import TASKS
from datasets_builders import sources
from datasets_builders.audio import decode
from datasets_builders.build import build
from datasets_builders.tables import read_rows, wide_captions
from datasets_builders.task_groundtruth import task_ground_truth

NAMES = [" Ambience Birds.wav", "Santa Motor.wav", "risas nenas.wav"]
ZENODO = "/zenodo/records/4783391/files/"


@pytest.fixture
def env(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    return tmp_path


def serve_evaluation(monkeypatch, server: Loopback, archive: bytes, *, pin: bytes | None = None) -> None:
    """Publish a Clotho-layout evaluation split on the loopback server and pin its checksums."""
    files = {"clotho_audio_evaluation.7z": archive,
             "clotho_captions_evaluation.csv": clotho_captions_csv(NAMES),
             "clotho_metadata_evaluation.csv": clotho_metadata_csv(NAMES)}
    for name, data in files.items():
        server.routes[ZENODO + name] = data
        monkeypatch.setitem(sources.CHECKSUM_OVERRIDES, name, md5(pin if pin and name.endswith(".7z") else data))
    monkeypatch.setenv("LARB_URL_REWRITE", f"https://zenodo.org/={server.url}/zenodo/")


def evaluation_archive(tmp_path: Path) -> bytes:
    members = {f"evaluation/{name}": wav_bytes(seconds=0.2, seed=i) for i, name in enumerate(NAMES)}
    return make_7z(tmp_path / "eval.7z", members).read_bytes()


def test_builds_evaluation_from_the_network_resampled(env, monkeypatch):
    archive = evaluation_archive(env)
    with Loopback() as server:
        serve_evaluation(monkeypatch, server, archive)
        result = build("clotho", splits=["evaluation"], sample_rate=32_000, output=env / "out")
    loaded = datasets.load_from_disk(str(env / "out"))
    split = loaded["evaluation"]
    assert list(loaded) == ["evaluation"] and split.num_rows == 3
    assert split["file_name"] == NAMES  # leading space kept, captions-CSV order
    assert split[0]["captions"][0] == "Sound 0, heard in take 1." and len(split[0]["captions"]) == 5
    assert split[1]["manufacturer"] == "Jos\u00e9" and split[1]["keywords"] == ["field-recording", "bird", "café"]
    assert split[1]["start_end_samples"] == "[11162624, 11932169]"
    assert set(split["sampling_rate"]) == {32_000} and set(split["dataset"]) == {"clotho"}
    samples, rate = decode(split[0]["audio"])
    assert rate == 32_000 and samples.shape == (6400, 1)
    assert split[0]["audio"]["path"] == " Ambience Birds.flac"
    assert abs(split[0]["duration"] - 0.2) < 1e-6
    assert result["evaluation"].num_rows == 3
    assert "sample_rate\": 32000" in loaded["evaluation"].info.description


def test_original_rate_keeps_the_official_bytes(env, monkeypatch):
    archive = evaluation_archive(env)
    with Loopback() as server:
        serve_evaluation(monkeypatch, server, archive)
        build("clotho", splits=["evaluation"], output=env / "out")
    split = datasets.load_from_disk(str(env / "out"))["evaluation"]
    assert split[2]["audio"]["bytes"] == wav_bytes(seconds=0.2, seed=2)
    assert split[2]["sampling_rate"] == 44_100


def test_wrong_checksum_is_a_clear_error_and_leaves_no_output(env, monkeypatch):
    archive = evaluation_archive(env)
    with Loopback() as server:
        serve_evaluation(monkeypatch, server, archive, pin=b"the official bytes are different")
        with pytest.raises(LarbError) as caught:
            build("clotho", splits=["evaluation"], output=env / "out")
    assert "clotho_audio_evaluation.7z" in str(caught.value) and "does not match" in str(caught.value)
    assert not (env / "out").exists()
    assert not list(env.glob(".out.partial*"))
    assert (env / "larb-cache" / "assets" / "clotho_audio_evaluation.7z.bad").is_file()


def test_corrupt_archive_is_a_clear_error_and_leaves_nothing_half_extracted(env, monkeypatch):
    archive = evaluation_archive(env)
    truncated = archive[: len(archive) // 2]
    with Loopback() as server:
        serve_evaluation(monkeypatch, server, truncated, pin=truncated)  # checksum right, archive broken
        with pytest.raises(LarbError) as caught:
            build("clotho", splits=["evaluation"], output=env / "out")
    message = str(caught.value)
    assert "cannot extract clotho_audio_evaluation.7z" in message and "Fix:" in message
    assert not (env / "out").exists()
    extracted = env / "larb-cache" / "extracted" / "clotho-v2.1"
    assert not list(extracted.glob("*")), "no partial extraction may remain"


def test_interrupted_download_resumes_with_a_range_request(env, monkeypatch):
    archive = evaluation_archive(env)
    path = ZENODO + "clotho_audio_evaluation.7z"
    with Loopback(cut_once={path: len(archive) // 3}) as server:
        serve_evaluation(monkeypatch, server, archive)
        with pytest.raises(LarbError, match="stopped early|was interrupted"):
            build("clotho", splits=["evaluation"], output=env / "out")
        assert not (env / "out").exists()
        part = env / "larb-cache" / "assets" / "clotho_audio_evaluation.7z.part"
        assert part.stat().st_size == len(archive) // 3
        build("clotho", splits=["evaluation"], output=env / "out")
        ranges = [r for _, p, r in server.requests("clotho_audio_evaluation.7z")]
    assert ranges == [None, f"bytes={len(archive) // 3}-"]
    assert datasets.load_from_disk(str(env / "out"))["evaluation"].num_rows == 3


def test_mirror_folder_is_verified_and_used_without_network(env, monkeypatch):
    mirror = env / "mirror"
    mirror.mkdir()
    (mirror / "clotho_captions_evaluation.csv").write_bytes(clotho_captions_csv(NAMES))
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(mirror))
    # the real checksum is kept: a generated file in a mirror is refused
    with pytest.raises(LarbError, match="checksum mismatch for clotho_captions_evaluation.csv"):
        sources.obtain(sources.reuse("clotho-v2.1/captions-evaluation"))
    monkeypatch.setitem(sources.CHECKSUM_OVERRIDES, "clotho_captions_evaluation.csv",
                        md5(clotho_captions_csv(NAMES)))
    assert sources.obtain(sources.reuse("clotho-v2.1/captions-evaluation")) == mirror / \
        "clotho_captions_evaluation.csv"


def test_test_folder_collision_and_retrieval_names(env, monkeypatch):
    """clotho_audio_test.7z and retrieval_audio.7z both extract to test/; the retrieval CSV says ':'."""
    csv_names = ["raindrops on metal: police background.wav", "Intersection Wet : Metro Pass.wav", "plain.wav"]
    disk = ["raindrops on metal_police background.wav", "Intersection Wet_Metro Pass.wav", "plain.wav"]
    test_names = ["plain.wav", "aac only.wav"]  # 'plain.wav' is in both sets, with different audio
    routes = {
        "/zenodo/records/6590983/files/retrieval_audio.7z": make_7z(
            env / "r.7z", {f"test/{n}": wav_bytes(seed=10 + i) for i, n in enumerate(disk)}).read_bytes(),
        "/zenodo/records/6590983/files/retrieval_audio_metadata.csv": clotho_metadata_csv(csv_names),
        "/zenodo/records/6590983/files/retrieval_captions.csv": b"caption\r\nA dog barks twice.\r\nRain on a roof.\r\n",
        "/zenodo/records/3865658/files/clotho_audio_test.7z": make_7z(
            env / "t.7z", {f"test/{n}": wav_bytes(seed=20 + i) for i, n in enumerate(test_names)}).read_bytes(),
        "/zenodo/records/3865658/files/clotho_metadata_test.csv": clotho_metadata_csv(
            test_names, delimiter=";", keywords=False),
        "/zenodo/records/6610709/files/clotho_analysis_2022.zip": make_zip(
            env / "a.zip", {"clotho_analysis/b.wav": wav_bytes(seed=30), "clotho_analysis/a.wav": wav_bytes(seed=31)}
        ).read_bytes(),
    }
    for route, data in routes.items():
        monkeypatch.setitem(sources.CHECKSUM_OVERRIDES, route.rsplit("/", 1)[1], md5(data))
    with Loopback(routes) as server:
        monkeypatch.setenv("LARB_URL_REWRITE", f"https://zenodo.org/={server.url}/zenodo/")
        result = build("clotho", splits=["retrieval_audio,retrieval_captions", "captioning_test",
                                         "captioning_analysis"], output=env / "out")
    retrieval, test = result["retrieval_audio"], result["captioning_test"]
    assert retrieval["file_name"] == disk and retrieval["captions"] == [[], [], []]
    assert retrieval[2]["audio"]["bytes"] == wav_bytes(seed=12)
    assert test["file_name"] == test_names and test[0]["audio"]["bytes"] == wav_bytes(seed=20)
    assert test[0]["keywords"] == [] and test[1]["sound_id"] == "1001"
    captions = result["retrieval_captions"]
    assert captions["captions"] == [["A dog barks twice."], ["Rain on a roof."]]
    assert captions["file_name"] == [None, None] and captions["audio"] == [None, None]
    assert result["captioning_analysis"]["file_name"] == ["a.wav", "b.wav"]


def test_data_dir_with_extracted_files_and_a_user_error(env, tmp_path):
    data = tmp_path / "downloads"
    (data / "csv").mkdir(parents=True)
    (data / "csv" / "clotho_captions_evaluation.csv").write_bytes(clotho_captions_csv(NAMES))
    (data / "csv" / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(NAMES))
    for i, name in enumerate(NAMES[:2]):
        write_wav(data / "clotho_audio_files" / "evaluation" / name, seed=i)
    with pytest.raises(LarbError) as caught:  # one file missing, no archive, no network
        build("clotho", splits=["evaluation"], data_dir=data, output=tmp_path / "out")
    assert "1 audio files of the evaluation split are missing" in str(caught.value)
    assert "risas nenas.wav" in str(caught.value)
    assert not (tmp_path / "out").exists()
    write_wav(data / "clotho_audio_files" / "evaluation" / NAMES[2], seed=2)
    result = build("clotho", splits=["evaluation"], data_dir=data, output=tmp_path / "out", num_proc=2)
    assert result["evaluation"]["file_name"] == NAMES
    assert result["evaluation"][2]["audio"]["bytes"] == wav_bytes(seed=2)


def test_push_to_hub_uploads_the_saved_build_as_parquet_shards(env, tmp_path, monkeypatch):
    """Everything up to the upload (no Hub here): what is pushed is the build that was saved, in
    bounded shards, and its Parquet form reads back to the same rows and audio bytes."""
    import datasets

    data = tmp_path / "downloads"
    (data / "csv").mkdir(parents=True)
    (data / "csv" / "clotho_captions_evaluation.csv").write_bytes(clotho_captions_csv(NAMES))
    (data / "csv" / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(NAMES))
    for i, name in enumerate(NAMES):
        write_wav(data / "clotho_audio_files" / "evaluation" / name, seed=i)
    pushed = {}

    def fake_push(self, repo_id, **kwargs):
        pushed.update(repo=repo_id, kwargs=kwargs, splits={k: v for k, v in self.items()})

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", fake_push)
    result = build("clotho", splits=["evaluation"], data_dir=data, output=tmp_path / "out",
                   push_to_hub="larb/clotho-test")
    assert pushed["repo"] == "larb/clotho-test" and pushed["kwargs"]["max_shard_size"] == "500MB"
    split = pushed["splits"]["evaluation"]
    assert split.to_dict() == result["evaluation"].to_dict()  # the saved build, not an earlier state
    split.to_parquet(tmp_path / "evaluation.parquet")
    back = datasets.Dataset.from_parquet(str(tmp_path / "evaluation.parquet"))
    assert back["file_name"] == NAMES and back[2]["audio"]["bytes"] == wav_bytes(seed=2)


def test_bad_requests_are_user_errors(env, tmp_path):
    with pytest.raises(LarbError, match="has no split 'train'"):
        build("clotho", splits=["train"], output=tmp_path / "o")
    with pytest.raises(LarbError, match="unsupported sample rate 12345"):
        build("clotho", sample_rate=12345, output=tmp_path / "o")
    with pytest.raises(LarbError, match="unknown dataset"):
        build("clothoo", output=tmp_path / "o")
    with pytest.raises(LarbError, match="give --output DIR or --push-to-hub"):
        build("clotho")


# -- the real files ------------------------------------------------------------------------


def test_real_caption_csvs_parse_whole():
    counts = {"development": 3839, "validation": 1045, "evaluation": 1045}
    for split, expected in counts.items():
        rows = wide_captions(reference_file("clotho", f"clotho_captions_{split}.csv"))
        assert len(rows) == expected
        assert all(len(captions) == 5 and all(c.strip() for c in captions) for _, captions in rows)
    evaluation = wide_captions(reference_file("clotho", "clotho_captions_evaluation.csv"))
    assert sum(len(c) for _, c in evaluation) == 5225
    development = wide_captions(reference_file("clotho", "clotho_captions_development.csv"))
    assert any(name.startswith(" ") for name, _ in development)


def test_real_metadata_samples_parse():
    rows = read_rows(reference_file("clotho", "soundata_sample_clotho_metadata_development.csv"),
                     required=("file_name", "keywords", "sound_id"))
    assert rows[0]["file_name"] == " Ambience Birds.wav"
    assert rows[0]["start_end_samples"] == "[11162624, 11932169]"
    full = read_rows(reference_file("clotho", "clotho_metadata_evaluation_with_split_fid.csv"))
    assert len(full) == 1045


@pytest.mark.parametrize("task_id", ["clotho-v2.1/evaluation", "clotho-v2.1/evaluation-a2t"])
def test_built_evaluation_split_reproduces_the_registered_ground_truth(env, tmp_path, task_id):
    """The real captions CSV + generated audio: the built split hashes to the task's pinned sha256."""
    captions = reference_file("clotho", "clotho_captions_evaluation.csv")
    data = tmp_path / "downloads"
    data.mkdir()
    (data / captions.name).write_bytes(captions.read_bytes())
    names = [name for name, _ in wide_captions(captions)]
    (data / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(names))
    clip = wav_bytes(seconds=0.001)
    for name in names:
        (data / "evaluation").mkdir(exist_ok=True)
        (data / "evaluation" / name).write_bytes(clip)
    result = build("clotho", splits=["evaluation"], data_dir=data, output=tmp_path / "out")
    truth = task_ground_truth(result["evaluation"], task_id)
    assert truth.sha256 == TASKS[task_id].sha256
    assert truth.n_queries == (5225 if task_id.endswith("evaluation") else 1045)


def test_undecodable_audio_fails_the_build_even_in_worker_processes(env, tmp_path):
    data = tmp_path / "downloads"
    (data / "evaluation").mkdir(parents=True)
    (data / "clotho_captions_evaluation.csv").write_bytes(clotho_captions_csv(NAMES))
    (data / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(NAMES))
    for i, name in enumerate(NAMES):
        (data / "evaluation" / name).write_bytes(b"\x00garbage" * 100 if i == 1 else wav_bytes(seed=i))
    with pytest.raises(LarbError) as caught:
        build("clotho", splits=["evaluation"], data_dir=data, output=tmp_path / "out", num_proc=2,
              sample_rate=48_000)
    assert "cannot decode the audio of 'Santa Motor.wav'" in str(caught.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))
