"""`larb audit`: clips two datasets share by source identity, on generated files for every layout and
on the real metadata in ../shared for the facts the issue measured."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import MIRROR, REFERENCE, require_shared

from benchmark.errors import LarbError
from datasets_builders.audit import audit, source_ids

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
