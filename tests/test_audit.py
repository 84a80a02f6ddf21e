"""`larb audit`: clips two datasets share by source identity, on generated files for every layout and
on the real metadata in ../shared for the facts the issue measured."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import MIRROR, REFERENCE, require_shared

from benchmark.errors import LarbError
from benchmark.provenance import source_ids
from datasets_builders.audit import audit

FORMATS = REFERENCE / "formats"


def test_every_layout_is_recognised_and_intersected(tmp_path):
    clotho = tmp_path / "clotho_metadata_evaluation.csv"
    clotho.write_text("file_name,keywords,sound_id\na.wav,k,101\nb.wav,k,Not found\nc.wav,k,303\n")
    excluded = tmp_path / "excluded.csv"
    excluded.write_text("sound_id\n303\nNot found\n404\n")
    audiocaps = tmp_path / "test.csv"
    audiocaps.write_text("audiocap_id,youtube_id,start_time,caption\n1,abcDEF12345,30,a dog\n2,abcDEF12345,30,a cat\n"
                         "3,zzzzzzzzzzz,0,rain\n")
    blacklist = tmp_path / "blacklist_exclude_test_ac.json"
    blacklist.write_text(json.dumps({"AudioSet": ["YabcDEF12345.wav"], "FreeSound": ["101", "999"]}))
    wavtext5k = tmp_path / "WavText5K.csv"
    wavtext5k.write_text("view_link,download_link,title,description,fname,tags\n"
                         "https://soundbible.com/0042-Dog-Bark.html,x,Dog,barks,a.wav,\n"
                         "https://bigsoundbank.com/detail-0100-forest.html,y,Forest,birds,0100.wav,\n")
    sb = tmp_path / "sb_final.json"
    sb.write_text(json.dumps({"data": [{"id": "42", "download_link": "http://soundbible.com/grab.php?id=42"}]}))
    macs = tmp_path / "MACS.yaml"
    macs.write_text(yaml.safe_dump({"files": [{"filename": "airport-lisbon-1000-40000-a.wav"}]}))
    assert source_ids(clotho).ids == {"freesound:101", "freesound:303"}  # "Not found" is never an id
    assert source_ids(macs).ids == {"tau:airport-lisbon-1000-40000-a.wav"}
    assert audit(clotho, excluded)["by_source_id"]["examples"] == ["freesound:303"]
    assert audit(clotho, blacklist)["by_source_id"]["by_source"] == {"freesound": 1}
    assert audit(audiocaps, blacklist)["by_source_id"]["examples"] == ["youtube:abcDEF12345"]
    report = audit(wavtext5k, sb)
    assert report["by_source_id"]["count"] == 1 and report["by_source_id"]["examples"] == ["soundbible:42"]
    assert report["a"]["source_ids"] == 2  # soundbible:42 and bigsoundbank:100
    unknown = tmp_path / "other.csv"
    unknown.write_text("a,b\n1,2\n")
    with pytest.raises(LarbError, match="a CSV of no dataset LARB knows"):
        source_ids(unknown)
    odd = {"test.csv": "audiocap_id,youtube_id,start_time,caption\n1,abcDEF12345,soon,a dog\n",
           "blacklist_x.json": json.dumps({"FreeSound": 5}), "sb_final.json": json.dumps({"data": ["x"]})}
    for name, text in odd.items():  # the right layout, cells of the wrong form: one clear error
        (tmp_path / name).write_text(text)
        with pytest.raises(LarbError, match="unexpected form|usable id"):
            source_ids(tmp_path / name)


def test_the_cli_prints_json_and_refuses_an_unknown_file_with_one_line(tmp_path, run_cli):
    a = tmp_path / "a.csv"
    a.write_text("sound_id\n1\n2\n")
    b = tmp_path / "b.csv"
    b.write_text("sound_id\n2\n3\n")
    code, out, _ = run_cli("audit", a, b, "--json")
    assert code == 0 and json.loads(out)["by_source_id"] == {
        "count": 1, "by_source": {"freesound": 1}, "examples": ["freesound:2"], "share_of_a": 0.5, "share_of_b": 0.5}
    code, _, err = run_cli("audit", a, tmp_path / "missing.json")
    assert code == 2 and "Traceback" not in err and "missing.json" in err


def test_the_real_wavtext5k_and_wavcaps_soundbible_share_1225_clips():
    report = audit(require_shared(FORMATS / "wavtext5k" / "WavText5K.csv"),
                   require_shared(FORMATS / "wavcaps" / "sb_final.json"))
    assert report["b"]["rows"] == 1232 and report["by_source_id"]["by_source"] == {"soundbible": 1225}
    rows = source_ids(FORMATS / "wavtext5k" / "WavText5K.csv")
    assert sum(identity.startswith("soundbible:") for identity in rows.ids) == 2058


def test_the_real_clotho_splits_share_five_freesound_sounds():
    split = {name: require_shared(MIRROR / f"{name}_audio_metadata.csv")
             for name in ("development", "validation", "evaluation")}
    shared = {pair: audit(split[pair[0]], split[pair[1]])["by_source_id"]["examples"]
              for pair in (("development", "evaluation"), ("validation", "evaluation"),
                           ("development", "validation"))}
    assert shared == {("development", "evaluation"): ["freesound:137692"],
                      ("validation", "evaluation"): ["freesound:66304", "freesound:86161"],
                      ("development", "validation"): ["freesound:130603", "freesound:86163"]}


def test_the_dcase_2025_exclusion_list_holds_every_clotho_evaluation_sound():
    report = audit(require_shared(MIRROR / "evaluation_audio_metadata.csv"),
                   require_shared(REFERENCE / "scoring" / "dcase2025_task6_excluded_freesound_ids.csv"))
    # 1,040 numeric ids (and 5 rows whose id is the literal "Not found", which the list also holds)
    assert report["a"]["source_ids"] == report["by_source_id"]["count"] == 1040
    assert report["b"]["source_ids"] - 1040 > 2000


def test_the_wavcaps_blacklist_misses_18_audiocaps_test_videos():
    report = audit(require_shared(FORMATS / "audiocaps" / "test.csv"),
                   require_shared(FORMATS / "wavcaps" / "blacklist_exclude_test_ac.json"))
    assert (report["a"]["source_ids"], report["by_source_id"]["count"]) == (975, 957)


# --- per-row provenance, audio overlaps, the near-duplicate fingerprint ------------------------------

def _clotho_build(tmp_path, seconds: float = 4.0):
    from data_helpers import clotho_captions_csv, clotho_metadata_csv, write_wav

    from datasets_builders.build import build

    names = ["a bird.wav", "b motor.wav", "c rain.wav"]
    data = tmp_path / "downloads"
    (data / "csv").mkdir(parents=True)
    (data / "csv" / "clotho_captions_evaluation.csv").write_bytes(clotho_captions_csv(names))
    (data / "csv" / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(names))
    for i, name in enumerate(names):
        write_wav(data / "clotho_audio_files" / "evaluation" / name, seconds=seconds, seed=i)
    build("clotho", splits=["evaluation"], data_dir=data, output=tmp_path / "built")
    return tmp_path / "built", data / "clotho_audio_files" / "evaluation", names


def test_builds_keep_each_rows_source_and_a_hash_of_its_decoded_audio(tmp_path, monkeypatch):
    import io

    import datasets
    import soundfile as sf
    from data_helpers import isolate

    from datasets_builders.audio import content_hash

    isolate(monkeypatch, tmp_path)
    built, audio, names = _clotho_build(tmp_path)
    rows = datasets.load_from_disk(str(built))["evaluation"]
    assert rows["source_id"] == ["freesound:1000", "freesound:1001", "freesound:1002"]  # the metadata's sound_id
    original = (audio / names[0]).read_bytes()
    assert rows[0]["audio_sha256"] == content_hash(original)
    samples, rate = sf.read(audio / names[0], dtype="int16")
    flac = io.BytesIO()
    sf.write(flac, samples, rate, format="FLAC")
    assert content_hash(flac.getvalue()) == rows[0]["audio_sha256"] != rows[1]["audio_sha256"]
    sf.write(flac := io.BytesIO(), samples // 2, rate, format="FLAC")
    assert content_hash(flac.getvalue()) != rows[0]["audio_sha256"]


def test_audit_finds_the_same_and_the_nearly_same_audio_in_a_build_and_a_task_folder(tmp_path, monkeypatch,
                                                                                       run_cli):
    import soundfile as sf
    from data_helpers import isolate, write_wav

    from datasets_builders.fingerprint import near_copies

    isolate(monkeypatch, tmp_path)
    built, audio, names = _clotho_build(tmp_path)
    folder = tmp_path / "task"
    folder.mkdir()
    samples, rate = sf.read(audio / names[0], dtype="int16")
    sf.write(folder / "same.flac", samples, rate, format="FLAC")  # other bytes, same decoded audio
    near, near_rate = near_copies(sf.read(audio / names[1], dtype="float32")[0], rate)["trimmed-start"]
    sf.write(folder / "near.wav", near * 0.5, near_rate)  # trimmed and 6 dB quieter
    write_wav(folder / "other.wav", seconds=4.0, seed=7)
    write_wav(folder / "more.wav", seconds=4.0, seed=8)
    (folder / "captions.csv").write_text("file_name,caption_1\nsame.flac,x\nnear.wav,y\nother.wav,z\nmore.wav,w\n")
    report = audit(built, folder)
    assert report["a"]["source_ids"] == 3 and report["by_source_id"]["count"] == 0  # the folder names no sources
    assert report["audio_files"] == {"a": 3, "b": 4}
    assert report["by_content_hash"]["examples"] == [{"a": f"evaluation/{names[0]}", "b": "same.flac"}]
    pairs = {(e["a"], e["b"]) for e in report["near_duplicates"]["examples"]}
    assert pairs == {(f"evaluation/{names[0]}", "same.flac"), (f"evaluation/{names[1]}", "near.wav")}
    trimmed = next(e for e in report["near_duplicates"]["examples"] if e["b"] == "near.wav")
    assert abs(trimmed["offset_seconds"] + 1.013) < 0.02  # a at t is b at t - 1.013 s
    mirrored = audit(folder, built)  # the other side is indexed now: the same pairs, seen from the folder
    assert {(e["b"], e["a"]) for e in mirrored["near_duplicates"]["examples"]} == pairs
    assert abs(next(e for e in mirrored["near_duplicates"]["examples"] if e["a"] == "near.wav")["offset_seconds"]
               - 1.013) < 0.02
    assert mirrored["near_duplicates"]["share_of_a"] == 0.5 and report["near_duplicates"]["share_of_a"] == 2 / 3
    code, out, _ = run_cli("audit", built, folder)
    assert code == 0 and "same decoded audio (sha256): 1" in out and "near-duplicates" in out
    code, _, err = run_cli("audit", built, tmp_path / "nothing-here")
    assert code == 2 and "Traceback" not in err and "nothing-here" in err
    (folder / "more.wav").write_bytes(b"RIFF, but no audio")  # undecodable: named, one line, exit 2
    code, _, err = run_cli("audit", built, folder)
    assert code == 2 and "'more.wav'" in err and "cannot be decoded" in err and len(err.strip().splitlines()) == 1


def test_every_near_copy_of_generated_clips_is_found_and_no_distinct_clip_is(tmp_path):
    import soundfile as sf

    from benchmark import demo_data
    from datasets_builders.fingerprint import THRESHOLD, Index, fingerprint, near_copies

    demo_data.generate("test", tmp_path)
    clips = [sf.read(path, dtype="float32") for path in sorted(tmp_path.glob("*.wav"))[:16]]
    index = Index([fingerprint(samples, rate) for samples, rate in clips])
    for i, (samples, rate) in enumerate(clips):
        assert [m[0] for m in index.matches(fingerprint(samples, rate))] == [i]  # itself, and no other clip
        for kind, (copy, copy_rate) in near_copies(samples, rate).items():
            found = index.matches(fingerprint(copy, copy_rate))
            assert found and found[0][0] == i and found[0][1] < THRESHOLD, (kind, i, found)


def test_the_board_shows_the_task_audio_found_in_the_declared_training_data(tmp_path, shared_mirror):
    import shutil

    from benchmark import leaderboard

    ranking = require_shared(REFERENCE / "scoring" / "dcase2022_baseline_clotho_evaluation.output.csv")
    root = tmp_path / "subs"
    for sub_id, training in (("dev-trained", [{"dataset": "clotho-v2.1", "split": "development"},
                                              {"dataset": "wavcaps", "split": "bbc_sound_effects"}]),
                             ("bbc-only", [{"dataset": "wavcaps", "split": "bbc_sound_effects"}]),
                             ("zero-shot", [])):
        folder = root / sub_id
        folder.mkdir(parents=True)
        shutil.copy(ranking, folder / "ranking.csv")
        (folder / "metadata.yaml").write_text(yaml.safe_dump({
            "id": sub_id, "team": "T", "system": "S", "description": "D", "parameters": {"total": 1, "trainable": 1},
            "training_data": training, "ensemble": False, "date": "2026-01-31", "licence": "CC0-1.0",
            "rankings": {"clotho-v2.1/evaluation": "ranking.csv"}}))
    text = leaderboard.build(root)
    row = next(line for line in text.splitlines() if "`dev-trained`" in line)
    # Clotho development and evaluation share one Freesound sound; BBC has no pinned metadata
    assert "`dev-trained` · overlap ≥ 1 (0.1%)" in row
    assert "- `dev-trained`: wavcaps/bbc_sound_effects: no pinned metadata" in text
    assert "overlap" not in next(line for line in text.splitlines() if "`zero-shot`" in line)
    assert "`bbc-only` · overlap not audited" in text


def test_a_wavcaps_export_declares_its_blacklist_and_the_audit_subtracts_it(tmp_path, monkeypatch, shared_mirror):
    import csv
    import hashlib

    from baselines.task_features import declared_training_data
    from benchmark import assets, contamination
    from benchmark.assets import Asset
    from benchmark.tasks import folder_task, get_task

    evaluation = get_task("clotho-v2.1/evaluation")
    with open(MIRROR / "evaluation_audio_metadata.csv", newline="", encoding="utf-8") as handle:
        sounds = [r["sound_id"] for r in csv.DictReader(handle) if r["sound_id"] != "Not found"][:3]
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = {"test-fsd_final.json": {"data": [{"id": s} for s in [*sounds, "99999999"]]},
             "test-blacklist.json": {"FreeSound": [sounds[0]]}}
    for name, content in files.items():
        (mirror / name).write_text(json.dumps(content))
        asset = Asset(f"test/{name}", f"http://127.0.0.1:9/{name}",
                      "sha256:" + hashlib.sha256((mirror / name).read_bytes()).hexdigest())
        assets.register(asset)
    monkeypatch.setenv("LARB_ASSETS_MIRROR", f"{MIRROR}:{mirror}")
    monkeypatch.setitem(contamination._WAVCAPS_JSON, "freesound", "test/test-fsd_final.json")
    monkeypatch.setitem(contamination.WAVCAPS_BLACKLISTS, "exclude_test_ac", "test/test-blacklist.json")
    try:
        # an export of a WavCaps build with the default blacklist: training on it declares the blacklist
        folder = tmp_path / "wavcaps-export"
        folder.mkdir()
        (folder / "a.wav").write_bytes(b"")
        (folder / "captions.csv").write_text("file_name,caption_1\na.wav,x\n")
        (folder / ".larb-export.json").write_text(json.dumps({
            "complete": True, "dataset": "wavcaps", "split": "freesound",
            "options": {"blacklist": "exclude_test_ac", "workers": "4"}}))
        (entry,) = declared_training_data(folder_task(folder))
        assert entry == {"dataset": "wavcaps", "split": "freesound", "options": {"blacklist": "exclude_test_ac"}}
        assert contamination.overlap(evaluation, [entry]).files == 2  # the blacklisted sound is subtracted
        undeclared = {"dataset": "wavcaps", "split": "freesound"}  # audited as if no blacklist was applied
        assert contamination.overlap(evaluation, [undeclared]).files == 3
    finally:
        for name in files:
            assets.REGISTRY.remove(f"test/{name}")


@pytest.mark.parametrize(("name", "split", "item", "expected"), [
    ("clotho", "evaluation", {"sound_id": "137692"}, ("freesound:137692", None)),
    ("clotho", "evaluation", {"sound_id": "Not found"}, (None, None)),
    ("audiocaps", "test", {"youtube_id": "abcDEF12345", "start_time": 30}, ("youtube:abcDEF12345", 30.0)),
    ("wavcaps", "audioset_sl", {"id": "YabcDEF12345.wav"}, ("youtube:abcDEF12345", None)),
    ("wavcaps", "soundbible", {"id": "0042"}, ("soundbible:42", None)),
    ("wavcaps", "bbc_sound_effects", {"id": "07019001"}, ("bbc:07019001", None)),
    ("wavcaps", "freesound", {"id": "180913"}, ("freesound:180913", None)),
    ("wavtext5k", "train", {"view_link": "https://bigsoundbank.com/detail-0100-forest.html"},
     ("bigsoundbank:100", None)),
    ("macs", "train", {"file_name": "audio/airport-lisbon-1000-40000-a.wav"},
     ("tau:airport-lisbon-1000-40000-a.wav", None)),
])
def test_each_builder_names_a_rows_source_as_the_metadata_audit_does(name, split, item, expected):
    from datasets_builders.build import make_builder

    assert make_builder(name, splits=[split]).source(item, split) == expected
