"""WavCaps builder and the multi-part ZIP reader: the Hub layout served from a loopback server,
split archives written by the tests (and by Info-ZIP when present), the real JSON files parsed."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile

import pytest
from data_helpers import Loopback, isolate, make_zip, md5, reference_file, wav_bytes, write_split_zip

from benchmark.errors import LarbError
from datasets_builders import archives, sources
from datasets_builders.build import build
from datasets_builders.remotes import WAVCAPS_REVISION as REVISION
from datasets_builders.splitzip import SplitZip, ZipFormatError, split_parts
from datasets_builders.wavcaps import audio_name, read_blacklist, read_entries

PREFIX = "mnt/fast/nobackup/scratch4weeks/xm00178/WavCaps/data/waveforms/"
HUB = f"/hf/datasets/cvssp/WavCaps/resolve/{REVISION}/"


def flac(seed: int, seconds: float = 0.2) -> bytes:
    return wav_bytes(seconds=seconds, rate=32_000, fmt="FLAC", seed=seed)


def test_split_zip_reader_matches_the_members(tmp_path):
    members = {f"{PREFIX}FreeSound_flac/{i}.flac": flac(i) for i in range(6)}
    for zip64 in (False, True):
        folder = tmp_path / f"zip64-{zip64}"
        folder.mkdir()
        parts = write_split_zip(folder / "FreeSound.zip", members, part_size=9_000, zip64=zip64)
        assert len(parts) > 3 and split_parts(parts[-1]) == parts
        with SplitZip(parts) as archive:
            assert [m.name for m in archive.members] == list(members)
            assert {m.disk for m in archive.members} != {0}, "members must start in several parts"
            for member in archive.members:
                assert b"".join(archive.iter_member(member)) == members[member.name]


def test_single_zip_matches_zipfile(tmp_path):
    members = {"a/b.flac": flac(1), "c.txt": b"hello" * 1000}
    path = make_zip(tmp_path / "x.zip", members)
    with SplitZip([path]) as archive, zipfile.ZipFile(path) as reference:
        for member in archive.members:
            assert b"".join(archive.iter_member(member)) == reference.read(member.name)


def test_missing_and_corrupt_parts_are_clear_errors(tmp_path):
    members = {f"{PREFIX}AudioSet_SL_flac/Y{i:011d}.flac": flac(i) for i in range(4)}
    parts = write_split_zip(tmp_path / "AudioSet_SL.zip", members, part_size=8_000)
    parts[1].rename(tmp_path / "elsewhere")
    with pytest.raises(ZipFormatError, match=r"parts are missing, e.g. AudioSet_SL.z02"):
        split_parts(parts[-1])
    (tmp_path / "elsewhere").rename(parts[1])
    data = bytearray(parts[1].read_bytes())
    data[100:140] = bytes(40)  # damage compressed data in the middle of the archive
    parts[1].write_bytes(bytes(data))
    with pytest.raises(LarbError) as caught:
        archives.extract(parts[-1], tmp_path / "out")
    assert "AudioSet_SL.zip is corrupt" in str(caught.value) and "Fix:" in str(caught.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP's zip is not installed")
def test_reads_an_info_zip_split_archive(tmp_path):
    source = tmp_path / "src" / "BBC_Sound_Effects_flac"
    source.mkdir(parents=True)
    expected = {}
    for i in range(5):
        data = flac(i, seconds=1.0)
        (source / f"NHU0505{i:04d}.flac").write_bytes(data)
        expected[f"NHU0505{i:04d}.flac"] = data
    subprocess.run(["zip", "-q", "-0", "-r", "-s", "64k", str(tmp_path / "BBC_Sound_Effects.zip"),
                    "BBC_Sound_Effects_flac"], cwd=tmp_path / "src", check=True)
    parts = split_parts(tmp_path / "BBC_Sound_Effects.zip")
    assert len(parts) > 2
    out = archives.extract(parts[-1], tmp_path / "out", rename=lambda n: n.rsplit("/", 1)[-1] or None)
    for name, data in expected.items():
        assert (out / name).read_bytes() == data


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The cvssp/WavCaps layout for SoundBible (single zip) and FreeSound (3+ part zip)."""
    isolate(monkeypatch, tmp_path)
    sb = {"num_captions_per_audio": 1, "data": [
        {"title": "Airplane Landing Airport", "description": "Large commercial airplane landing.",
         "author": "Daniel Simion", "href": "2219-Airplane-Landing-Airport.html", "caption": "An airplane is landing.",
         "id": "2219", "duration": 0.2, "audio": "wav_path", "download_link": "http://soundbible.com/grab.php?id=2219"},
        {"title": "Bell", "description": "A bell.", "author": "Mike Koenig", "href": "49-Bell.html",
         "caption": "A bell rings.", "id": "49", "duration": 0.2, "audio": "wav_path", "download_link": ""},
        {"title": "Broken", "description": "", "author": "", "href": "", "caption": "Unreadable.", "id": "50",
         "duration": 1.0, "audio": "wav_path", "download_link": ""}]}
    fsd = {"num_captions_per_audio": 1, "data": [
        {"id": str(i), "file_name": f"sound {i}.wav", "href": f"/people/u/sounds/{i}/", "tags": ["tag", str(i)],
         "description": "d", "author": "u", "duration": 0.2, "download_link": "", "caption": f"Sound {i} plays.",
         "audio": "wav_path"} for i in (156, 201, 300, 301)]}
    blacklist = {"AudioSet": ["YvfY_TJq7n_U.wav"], "FreeSound": ["156", "201"]}
    blacklist_all = {"AudioSet": ["YvfY_TJq7n_U.wav"], "FreeSound": ["156", "201", "300"]}
    files = {"json_files/SoundBible/sb_final.json": json.dumps(sb).encode(),
             "json_files/FreeSound/fsd_final.json": json.dumps(fsd).encode(),
             "json_files/blacklist/blacklist_exclude_test_ac.json": json.dumps(blacklist).encode(),
             "json_files/blacklist/blacklist_exclude_all_ac.json": json.dumps(blacklist_all).encode(),
             "Zip_files/SoundBible/SoundBible.zip": make_zip(tmp_path / "SoundBible.zip", {
                 f"{PREFIX}SoundBible_flac/2219.flac": flac(1), f"{PREFIX}SoundBible_flac/49.flac": flac(2),
                 f"{PREFIX}SoundBible_flac/50.flac": b"fLaC" + bytes(8284),  # like the 8288-byte broken files
                 f"{PREFIX}SoundBible_flac/777.flac": flac(3)}).read_bytes()}
    for path in write_split_zip(tmp_path / "FreeSound.zip", {
            f"{PREFIX}FreeSound_flac/{i}.flac": flac(i) for i in (156, 201, 300, 301)}, part_size=12_000, zip64=True):
        files[f"Zip_files/FreeSound/{path.name}"] = path.read_bytes()
    for name, data in files.items():
        if name.startswith("json_files"):
            monkeypatch.setitem(sources.CHECKSUM_OVERRIDES, name.rsplit("/", 1)[1], md5(data))
    with Loopback({HUB + name: data for name, data in files.items()}) as server:
        monkeypatch.setenv("LARB_URL_REWRITE", f"https://huggingface.co/={server.url}/hf/")
        yield server, tmp_path


def test_builds_subsets_with_the_default_blacklist(hub):
    server, tmp_path = hub
    result = build("wavcaps", splits=["soundbible,freesound"], output=tmp_path / "out")
    sb, fs = result["soundbible"], result["freesound"]
    assert sb["file_name"] == ["2219.flac", "49.flac"], "the undecodable 50.flac is left out"
    assert sb["captions"][0] == ["An airplane is landing."]
    assert sb[0]["audio"]["bytes"] == flac(1) and sb[0]["author"] == "Daniel Simion" and sb[0]["source"] == "soundbible"
    assert fs["id"] == ["300", "301"], "FreeSound ids 156 and 201 are blacklisted (Clotho evaluation)"
    assert fs[0]["tags"] == ["tag", "300"] and fs[1]["audio"]["bytes"] == flac(301)
    assert fs[0]["original_file_name"] == "sound 300.wav" and fs[0]["file_name"] == "300.flac"
    assert '"blacklist": "exclude_test_ac"' in fs.info.description
    parts = [p for _, p, _ in server.log if "Zip_files/FreeSound" in p]
    assert parts[0].endswith("FreeSound.zip") and any(p.endswith(".z01") for p in parts)


def test_blacklist_choice_is_an_option(hub):
    _, tmp_path = hub
    strict = build("wavcaps", splits=["freesound"], output=tmp_path / "a", options={"blacklist": "exclude_all_ac"})
    assert strict["freesound"]["id"] == ["301"]
    assert '"blacklist": "exclude_all_ac"' in strict["freesound"].info.description
    everything = build("wavcaps", splits=["freesound"], output=tmp_path / "b", options={"blacklist": "none"})
    assert everything["freesound"]["id"] == ["156", "201", "300", "301"]
    with pytest.raises(LarbError, match="unknown blacklist"):
        build("wavcaps", splits=["freesound"], output=tmp_path / "c", options={"blacklist": "clotho"})
    assert not (tmp_path / "c").exists()


def test_real_json_files_parse_whole():
    entries = read_entries(reference_file("wavcaps", "sb_final.json"))
    assert len(entries) == 1232 and len({e["id"] for e in entries}) == 1232
    assert all(e["audio"] == "wav_path" and e["caption"] for e in entries)
    assert audio_name("soundbible", entries[0]["id"]) == "2219.flac"
    test_ac = read_blacklist(reference_file("wavcaps", "blacklist_exclude_test_ac.json"))
    all_ac = read_blacklist(reference_file("wavcaps", "blacklist_exclude_all_ac.json"))
    assert len(test_ac["FreeSound"]) == 2078 and len(all_ac["FreeSound"]) == 5905  # unique Clotho ids
    assert len(test_ac["AudioSet"]) == 1451 and len(all_ac["AudioSet"]) == 50725
    assert test_ac["AudioSet"] <= all_ac["AudioSet"] and test_ac["FreeSound"] <= all_ac["FreeSound"]
    assert audio_name("audioset_sl", "YvfY_TJq7n_U.wav") == "YvfY_TJq7n_U.flac"
    examples = json.loads(reference_file("wavcaps", "example_rows_other_subsets.json").read_text())
    bbc = examples["BBC_Sound_Effects/bbc_final.json"][0]
    from datasets_builders.wavcaps import _item

    row = _item("bbc_sound_effects", bbc, reference_file("wavcaps", "sb_final.json"))
    assert row["category"] == ["Nature"] and row["json_duration"] == pytest.approx(88.84353125)
