"""AudioCaps builder: the real caption CSVs, ground truth equal to the registered task, and the
YouTube segment downloader run for real (yt-dlp) against a loopback server."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from data_helpers import Loopback, isolate, md5, reference_file, wav_bytes

from benchmark.errors import LarbError
from benchmark.tasks import TASKS
from datasets_builders import sources
from datasets_builders.audio import decode
from datasets_builders.audiocaps import _clips, read_captions
from datasets_builders.build import build
from datasets_builders.task_groundtruth import task_ground_truth

CSV = (b"audiocap_id,youtube_id,start_time,caption\n"
       b"103549,7fmOlUlwoNg,20,Constant rattling noise and sharp vibrations\n"
       b"103548,6BJ455B1aAs,0,\"A rocket flies by, then a loud explosion\"\n"
       b"103550,7fmOlUlwoNg,20,Rattling and vibrating\n"
       b"103551,gone_video1,30,A video that was removed\n")


@pytest.fixture
def env(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    monkeypatch.setitem(sources.CHECKSUM_OVERRIDES, "test.csv", md5(CSV))
    return tmp_path


def youtube_routes() -> dict[str, bytes]:
    # 30 s videos (8 kHz keeps them small); 'gone_video1' is not served: 404, a removed video
    return {"/yt/watch?v=7fmOlUlwoNg": wav_bytes(seconds=30, rate=8000, seed=1),
            "/yt/watch?v=6BJ455B1aAs": wav_bytes(seconds=12, rate=8000, seed=2),
            "/captions/dataset/test.csv": CSV}


def rewrite(monkeypatch, server: Loopback) -> None:
    monkeypatch.setenv("LARB_URL_REWRITE", f"https://www.youtube.com/={server.url}/yt/ "
                                           f"https://raw.githubusercontent.com/cdjkim/audiocaps/master/"
                                           f"={server.url}/captions/")


def test_downloads_segments_records_unavailable_and_resumes(env, monkeypatch):
    with Loopback(youtube_routes()) as server:
        rewrite(monkeypatch, server)
        result = build("audiocaps", splits=["test"], output=env / "out",
                       options={"workers": "2", "delay": "0.01"})
        first_run = len(server.requests("/yt/"))
        build("audiocaps", splits=["test"], output=env / "out2", options={"delay": "0"})
        second_run = len(server.requests("/yt/")) - first_run
    split = result["test"]
    assert split["file_name"] == ["7fmOlUlwoNg_20.wav", "6BJ455B1aAs_0.wav", "gone_video1_30.wav"]
    assert split[0]["captions"] == ["Constant rattling noise and sharp vibrations", "Rattling and vibrating"]
    assert split[0]["audiocap_ids"] == ["103549", "103550"] and split[0]["csv_lines"] == [2, 4]
    samples, rate = decode(split[0]["audio"])
    assert rate == 8000 and samples.shape[0] == 80_000  # seconds 20-30 of a 30 s video
    full = decode({"bytes": wav_bytes(seconds=30, rate=8000, seed=1)})[0]
    assert abs(samples - full[160_000:240_000]).max() < 1e-4
    assert split[1]["duration"] == pytest.approx(10.0)
    assert split[2]["audio"] is None and split[2]["download_status"].startswith("unavailable")
    manifest = json.loads((env / "larb-cache" / "audiocaps" / "audio" / "manifest.json").read_text())
    assert manifest["counts"] == {"ok": 2, "unavailable": 1}
    assert first_run >= 3 and second_run == 0  # done clips and unavailable ones are not asked again


def test_drop_unavailable_and_a_folder_of_clips(env, monkeypatch, tmp_path):
    clips = tmp_path / "my-clips"
    clips.mkdir()
    (clips / "7fmOlUlwoNg_20.flac").write_bytes(wav_bytes(seconds=10, rate=16000, fmt="FLAC", seed=3))
    with Loopback({"/captions/dataset/test.csv": CSV}) as server:
        rewrite(monkeypatch, server)
        result = build("audiocaps", splits=["test"], data_dir=clips, output=env / "out", sample_rate=32_000,
                       options={"download": "no", "drop_unavailable": "yes"})
        assert not server.requests("/yt/")
    split = result["test"]
    assert split["file_name"] == ["7fmOlUlwoNg_20.wav"]
    assert split[0]["sampling_rate"] == 32_000 and split[0]["download_status"] == "ok"


def test_malformed_row_names_its_line(env, tmp_path):
    broken = CSV + b"39899,IAosP90cdsE,30,an engine chugging loudly with muffled\nspeech in the background\n"
    (tmp_path / "test.csv").write_bytes(broken)
    with pytest.raises(LarbError) as caught:
        read_captions(tmp_path / "test.csv")
    assert caught.value.line == 7 and "1 cells instead of 4" in str(caught.value)


def test_bad_option_values_are_user_errors(env, tmp_path):
    with pytest.raises(LarbError, match="not allowed"):
        build("audiocaps", output=tmp_path / "o", options={"version": "3"})
    with pytest.raises(LarbError, match="has no option"):
        build("audiocaps", output=tmp_path / "o", options={"colour": "blue"})


@pytest.mark.parametrize(("name", "rows", "clips"), [
    ("train.csv", 49_838, 49_838), ("val.csv", 2_475, 495), ("test.csv", 4_875, 975),
    ("v2.0_val.csv", 2_475, 495), ("v2.0_test.csv", 4_875, 975)])
def test_real_caption_csvs_parse_whole(name, rows, clips):
    parsed = read_captions(reference_file("audiocaps", name))
    assert len(parsed) == rows and len(_clips(parsed)) == clips


def test_built_test_split_reproduces_the_registered_ground_truth(monkeypatch, tmp_path):
    real = reference_file("audiocaps", "test.csv")
    isolate(monkeypatch, tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "test.csv").symlink_to(real)
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(mirror))
    result = build("audiocaps", splits=["test"], output=tmp_path / "out", options={"download": "no"})
    split = result["test"]
    assert split.num_rows == 975 and set(split["download_status"]) == {"not downloaded"}
    truth = task_ground_truth(split, "audiocaps-v1/test")
    assert truth.n_queries == 4875 and truth.sha256 == TASKS["audiocaps-v1/test"].sha256
    assert Path(real).exists()


def test_job_runner_rate_limits_and_stops_on_a_user_error(tmp_path):
    import time

    from datasets_builders import fetchjobs

    jobs = [fetchjobs.Job(f"clip{i}", tmp_path / f"clip{i}.wav", str(i)) for i in range(4)]
    starts: list[float] = []

    def fetch(job: fetchjobs.Job) -> None:
        starts.append(time.monotonic())
        if job.source == "2":
            raise fetchjobs.Unavailable("Video unavailable")
        job.target.write_bytes(b"x")

    manifest = fetchjobs.run(jobs, fetch, tmp_path, workers=3, interval=0.15, progress=False)
    gaps = [b - a for a, b in itertools.pairwise(sorted(starts))]
    assert min(gaps) >= 0.14, "starts are spaced by the interval, across threads"
    assert manifest.status("clip2") == "unavailable" and manifest.status("clip3") == "ok"

    def blocked(job: fetchjobs.Job) -> None:
        raise LarbError("YouTube asks to confirm that this is not a bot.", fix="pass cookies.")

    more = [fetchjobs.Job(f"new{i}", tmp_path / f"new{i}.wav", str(i)) for i in range(3)]
    with pytest.raises(LarbError, match="not a bot"):
        fetchjobs.run(jobs + more, blocked, tmp_path, workers=1, interval=0, progress=False)
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["counts"] == {"ok": 3, "unavailable": 1}, "the manifest is saved when the run stops"
