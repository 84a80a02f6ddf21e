"""MACS builder: MACS.yaml, the competence TSV and TAU 2019 archives in the official layout,
served from a loopback server; only the archives' MACS files are extracted."""

from __future__ import annotations

import pytest
from data_helpers import Loopback, isolate, make_zip, md5, reference_file, wav_bytes

from benchmark.errors import LarbError
from datasets_builders import sources
from datasets_builders.audio import decode
from datasets_builders.build import build
from datasets_builders.macs import TAU_AUDIO, read_annotations, read_meta

TAU = "TAU-urban-acoustic-scenes-2019-development"
FILES = ["airport-stockholm-12-488-a.wav", "public_square-helsinki-111-3230-a.wav", "park-milan-1164-44095-a.wav"]
YAML = """files:
- filename: airport-stockholm-12-488-a.wav
  annotations:
  - annotator_id: 354
    sentence: ball game with the ball bouncing and people running
    tags:
    - footsteps
  - annotator_id: 353
    sentence: some adults are talking
    tags:
    - adults_talking
  - annotator_id: 272
    sentence: adults talking with an unrecognizable sound in the background
    tags:
    - adults_talking
    - footsteps
- filename: public_square-helsinki-111-3230-a.wav
  annotations:
  - annotator_id: 197
    sentence: motorcycle growling people talking someone coughs
    tags: [traffic_noise, adults_talking]
  - annotator_id: 262
    sentence: "footsteps followed by some alarm and a person coughing while chatting"
    tags: [footsteps, siren]
  - annotator_id: 366
    sentence: people are talking traffic noise
    tags: [adults_talking, traffic_noise]
- filename: park-milan-1164-44095-a.wav
  annotations:
  - annotator_id: 1
    sentence: birds sing
    tags: [birds_singing]
  - annotator_id: 2
    sentence: birds are chirping in a park
    tags: [birds_singing]
"""
COMPETENCE = "annotator_id\tcompetence\n354\t0.91\n353\t0.5\n272\t0.25\n197\t0.75\n262\t1.0\n1\t0.1\n2\t0.2\n"
META = "filename\tscene_label\tidentifier\tsource_label\n" + "".join(
    f"audio/{name}\t{name.split('-')[0]}\t{'-'.join(name.split('-')[1:3])}\ta\n" for name in FILES)


def tau_clip(seed: int) -> bytes:
    return wav_bytes(seconds=0.1, rate=48_000, channels=2, subtype="PCM_24", seed=seed)


@pytest.fixture
def zenodo(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    routes = {"/z/records/5114771/files/MACS.yaml": YAML.encode(),
              "/z/records/5114771/files/MACS_competence.csv": COMPETENCE.encode(),
              f"/z/records/2589280/files/{TAU}.meta.zip": make_zip(tmp_path / "meta.zip", {
                  f"{TAU}/meta.csv": META.encode(), f"{TAU}/LICENSE": b"licence"}).read_bytes()}
    contents = {1: {FILES[0]: tau_clip(0), FILES[2]: tau_clip(2), "bus-lyon-1-1-a.wav": tau_clip(9)},
                2: {FILES[1]: tau_clip(1)}}
    for remote in TAU_AUDIO:
        part = int(remote.file_name.split(".")[-2])
        members = contents.get(part, {f"metro-prague-{part}-1-a.wav": tau_clip(part)})
        routes[f"/z/records/2589280/files/{remote.file_name}"] = make_zip(
            tmp_path / remote.file_name, {f"{TAU}/audio/{n}": data for n, data in members.items()}).read_bytes()
    for route, data in routes.items():
        monkeypatch.setitem(sources.CHECKSUM_OVERRIDES, route.rsplit("/", 1)[1], md5(data))
    with Loopback(routes) as server:
        monkeypatch.setenv("LARB_URL_REWRITE", f"https://zenodo.org/={server.url}/z/")
        yield server, tmp_path


def test_builds_macs_with_annotations_and_competence(zenodo):
    server, tmp_path = zenodo
    result = build("macs", output=tmp_path / "out")
    train = result["train"]
    assert train["file_name"] == FILES
    first = train[0]
    assert first["captions"] == ["ball game with the ball bouncing and people running", "some adults are talking",
                                 "adults talking with an unrecognizable sound in the background"]
    assert [a["annotator_id"] for a in first["annotations"]] == [354, 353, 272]
    assert first["annotations"][0]["competence"] == pytest.approx(0.91)
    assert first["annotations"][2]["tags"] == ["adults_talking", "footsteps"]
    assert first["tags"] == ["footsteps", "adults_talking"]
    assert first["scene_label"] == "airport" and first["identifier"] == "stockholm-12"
    assert first["channels"] == 2 and first["sampling_rate"] == 48_000
    assert first["audio"]["bytes"] == tau_clip(0)
    assert train[1]["annotations"][2]["competence"] is None  # annotator 366 has no competence row
    assert len(train[1]["captions"]) == 3
    extracted = tmp_path / "larb-cache" / "extracted" / "macs" / f"{TAU}.audio.1"
    assert sorted(p.name for p in extracted.rglob("*.wav")) == sorted([FILES[0], FILES[2]]), "MACS files only"
    assert len(server.requests("audio.")) == 8


def test_resampled_keeps_24_bits_and_both_channels(zenodo):
    _, tmp_path = zenodo
    train = build("macs", output=tmp_path / "out", sample_rate=32_000)["train"]
    samples, rate = decode(train[1]["audio"])
    assert rate == 32_000 and samples.shape == (3200, 2)
    import io

    import soundfile as sf

    assert sf.info(io.BytesIO(train[1]["audio"]["bytes"])).subtype == "PCM_24"


def test_user_folder_with_extracted_audio_needs_no_archive(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    data = tmp_path / "downloads"
    (data / TAU / "audio").mkdir(parents=True)
    for i, name in enumerate(FILES):
        (data / TAU / "audio" / name).write_bytes(tau_clip(i))
    (data / TAU / "meta.csv").write_text(META)
    (data / "MACS.yaml").write_text(YAML)
    (data / "MACS_competence.csv").write_text(COMPETENCE)
    result = build("macs", data_dir=data, output=tmp_path / "out")
    assert result["train"]["scene_label"] == ["airport", "public_square", "park"]
    (data / "MACS.yaml").write_text("files:\n- filename: x.wav\n  annotations: [\n")
    with pytest.raises(LarbError, match="MACS.yaml is not valid YAML"):
        build("macs", data_dir=data, output=tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_real_tau_meta_sample_and_macs_examples():
    meta = read_meta(reference_file("macs", "soundata_sample_TAU2019_dev_meta.csv"))
    assert meta["airport-barcelona-0-0-a.wav"]["scene_label"] == "airport"
    assert meta["airport-barcelona-0-0-a.wav"]["identifier"] == "barcelona-0"
    assert len(meta) == 6  # 9 rows, 3 repeated


def test_yaml_layout_matches_the_published_example(tmp_path):
    import json

    examples = json.loads(reference_file("macs", "laion_processed_MACS_examples.json").read_text())
    (tmp_path / "MACS.yaml").write_text(YAML)
    files = {f["filename"]: f for f in read_annotations(tmp_path / "MACS.yaml")}
    for example in examples:
        entry = files.get(example["original_data"]["filename"])
        if entry is None:
            continue
        assert [a["annotator_id"] for a in entry["annotations"]] == example["original_data"]["annotator_ids"]
        assert [a["sentence"] for a in entry["annotations"]] == example["text"]
