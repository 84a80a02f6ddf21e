"""Every official file of the datasets, declared in one place that imports no `datasets`.

The builders take their `Remote`s from here; the harness's asset registry reads `ASSETS` (the
pinned ones) through the `larb.assets` entry point, so `larb assets list` shows the archives
and tables of every dataset on a core install.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from datasets_builders import sources
from datasets_builders.sources import Remote

_CLOTHO_ZENODO = "https://zenodo.org/records/{}/files/{}?download=1"


def _clotho(record: int, name: str, md5: str, what: str) -> Remote:
    return sources.declare(f"clotho-v2.1/{name}", _CLOTHO_ZENODO.format(record, name), f"md5:{md5}", description=what)


@dataclass(frozen=True)
class SplitSource:
    """The official files of one split and the folder(s) its archive extracts to."""

    audio: Remote | None
    folders: tuple[str, ...]
    captions: Remote | None = None
    metadata: Remote | None = None
    delimiter: str = ","


CLOTHO: dict[str, SplitSource] = {
    "development": SplitSource(
        _clotho(4783391, "clotho_audio_development.7z", "c8b05bc7acdb13895bb3c6a29608667e", "Clotho v2.1 dev audio"),
        ("development",), sources.reuse("clotho-v2.1/captions-development"),
        _clotho(4783391, "clotho_metadata_development.csv", "170d20935ecfdf161ce1bb154118cda5", "dev metadata")),
    "validation": SplitSource(
        _clotho(4783391, "clotho_audio_validation.7z", "7dba730be08bada48bd15dc4e668df59", "Clotho v2.1 val audio"),
        ("validation",), sources.reuse("clotho-v2.1/captions-validation"),
        _clotho(4783391, "clotho_metadata_validation.csv", "2e010427c56b1ce6008b0f03f41048ce", "val metadata")),
    "evaluation": SplitSource(
        _clotho(4783391, "clotho_audio_evaluation.7z", "4569624ccadf96223f19cb59fe4f849f", "Clotho v2.1 eval audio"),
        ("evaluation",), sources.reuse("clotho-v2.1/captions-evaluation"),
        _clotho(4783391, "clotho_metadata_evaluation.csv", "13946f054d4e1bf48079813aac61bf77", "eval metadata")),
    "captioning_test": SplitSource(
        _clotho(3865658, "clotho_audio_test.7z", "9b3fe72560a621641ff4351ba1154349", "DCASE 2021 AAC test audio"),
        ("test",), None,
        _clotho(3865658, "clotho_metadata_test.csv", "52f8ad01c229a310a0ff8043df480e21", "AAC test metadata"),
        delimiter=";"),
    "captioning_analysis": SplitSource(
        _clotho(6610709, "clotho_analysis_2022.zip", "7e8fa4762cc3a7c5546606680b958d08", "DCASE 2022 analysis"),
        ("clotho_analysis",)),
    "retrieval_audio": SplitSource(
        _clotho(6590983, "retrieval_audio.7z", "24102395fd757c462421a483fba5c407", "DCASE 2022 6b eval audio"),
        ("test_retrieval_audio", "retrieval_audio", "test"), None,
        _clotho(6590983, "retrieval_audio_metadata.csv", "1301db07acbf1e4fabc467eb54e0d353", "6b eval metadata")),
    "retrieval_captions": SplitSource(
        None, (), _clotho(6590983, "retrieval_captions.csv", "f9e810118be00c64ea8cd7557816d4fe", "6b eval captions")),
}


_AUDIOCAPS_RAW = "https://raw.githubusercontent.com/cdjkim/audiocaps/master/{}"

# (version, split) -> captions CSV. md5s computed on the repository's files (no official ones);
# 2.0 train.csv was edited upstream in Oct 2025 and is not pinned: its sha256 is logged.
AUDIOCAPS_CAPTIONS: dict[tuple[str, str], Remote] = {
    ("1", "train"): sources.declare("audiocaps-v1/train-captions", _AUDIOCAPS_RAW.format("dataset/train.csv"),
                                    "md5:be909c34c4aa154f53acab960a1e998b", description="AudioCaps v1 train"),
    ("1", "val"): sources.declare("audiocaps-v1/val-captions", _AUDIOCAPS_RAW.format("dataset/val.csv"),
                                  "md5:29adf3a58afc406fa3a9bd785e20db51", description="AudioCaps v1 val"),
    ("1", "test"): sources.reuse("audiocaps-v1/test-captions"),
    ("2.0", "train"): sources.declare("audiocaps-2.0/train-captions", _AUDIOCAPS_RAW.format("dataset2.0/train.csv"),
                                      None,
                                      file_name="audiocaps2.0_train.csv"),
    ("2.0", "val"): sources.declare("audiocaps-2.0/val-captions", _AUDIOCAPS_RAW.format("dataset2.0/val.csv"),
                                    "md5:b319beea34769896c80399b14befdf8a", file_name="audiocaps2.0_val.csv",
                                    description="AudioCaps 2.0 val"),
    ("2.0", "test"): sources.declare("audiocaps-2.0/test-captions", _AUDIOCAPS_RAW.format("dataset2.0/test.csv"),
                                     "md5:11f06bd97a512e62d7907d724c76e7c3", file_name="audiocaps2.0_test.csv",
                                     description="AudioCaps 2.0 test"),
}


WAVCAPS_REPO_ID = "cvssp/WavCaps"
WAVCAPS_REVISION = "0930ec11ded28fa0eaa910fde2f6fc3538acbeac"  # main on 2023-07-06 (all FreeSound parts present)


def hub_url(path: str) -> str:
    """The official download URL of a file of the repository at the pinned revision.

    The URL `huggingface_hub.hf_hub_url` builds, formed here so that the declarations load
    without the [data] extra (`larb assets list` on a core install)."""
    return (f"https://huggingface.co/datasets/{WAVCAPS_REPO_ID}/resolve/{quote(WAVCAPS_REVISION, safe='')}/"
            f"{quote(path)}")


def _hub(path: str, checksum: str | None, what: str = "") -> Remote:
    return sources.declare(f"wavcaps/{path}", hub_url(path), checksum, description=what)


@dataclass(frozen=True)
class Subset:
    folder: str          # the folder name on the Hub
    json: Remote
    blacklist_key: str   # the blacklist entry that applies ("" for none)
    split_archive: bool  # X.z01 ... X.zip


WAVCAPS_SUBSETS: dict[str, Subset] = {
    "freesound": Subset("FreeSound", _hub(
        "json_files/FreeSound/fsd_final.json",
        "sha256:4499ada1a7a76666695d880feb298f557efb3aa8af3b57fd9b713c75319ff53f", "WavCaps FreeSound JSON"),
        "FreeSound", True),
    "bbc_sound_effects": Subset("BBC_Sound_Effects", _hub("json_files/BBC_Sound_Effects/bbc_final.json", None),
                                "", True),
    "soundbible": Subset("SoundBible", _hub("json_files/SoundBible/sb_final.json",
                                            "md5:ec4118b8bd25eee90163de75aee52b93", "WavCaps SoundBible JSON"),
                         "", False),
    "audioset_sl": Subset("AudioSet_SL", _hub("json_files/AudioSet_SL/as_final.json", None), "AudioSet", True),
}

WAVCAPS_BLACKLISTS: dict[str, Remote] = {
    "exclude_test_ac": _hub("json_files/blacklist/blacklist_exclude_test_ac.json",
                            "md5:240dc55ef9f122078fdf8217dcd21b9d", "Clotho val+eval, AudioCaps val+test"),
    "exclude_all_ac": _hub("json_files/blacklist/blacklist_exclude_all_ac.json",
                           "md5:cd9c307d2d3c0bd013d7700daf93f4c1", "all of Clotho and AudioCaps"),
    "exclude_ub8k_esc50_vggsound": _hub("json_files/blacklist/blacklist_exclude_ub8k_esc50_vggsound.json",
                                        "md5:da146f5e4354287e49e8e92a39a2652a", "UrbanSound8K, ESC-50, VGGSound"),
}


_MACS_ZENODO = "https://zenodo.org/records/{}/files/{}?download=1"
_TAU = "TAU-urban-acoustic-scenes-2019-development"


def _macs(record: int, name: str, md5: str) -> Remote:
    return sources.declare(f"macs/{name}", _MACS_ZENODO.format(record, name), f"md5:{md5}")


MACS_ANNOTATIONS = _macs(5114771, "MACS.yaml", "23fcb2ebd0b109094034ef9e87972256")
MACS_COMPETENCE = _macs(5114771, "MACS_competence.csv", "4dfe9f951f0af9f29cb7952ec030370a")
MACS_LICENSE = _macs(5114771, "LICENSE.txt", "d3086f4517cccc32c1bb3a081b07cfa1")
TAU_META = _macs(2589280, f"{_TAU}.meta.zip", "09782f2097e4735687af73c44919329c")
TAU_AUDIO = [_macs(2589280, f"{_TAU}.audio.{part}.zip", md5) for part, md5 in (
    (1, "aca4ebfd9ed03d5f747d6ba8c24bc728"), (2, "c4f170408ce77c8c70c532bf268d7be0"),
    (3, "c7214a07211f10f3250290d05e72c37e"), (9, "3c32a693a6b111ffb957be3c1dd22e9b"),
    (10, "0ffbf60006da520cc761fb74c878b98b"), (11, "599055d93b4c11057c29be2df54538d4"),
    (12, "98b8d162ff3665695c4c910e6c372cc8"), (13, "a356c08b1a5a21d433eba37ef87587f4"))]


WAVTEXT5K_TABLE = sources.declare(
    "wavtext5k/table",
    "https://raw.githubusercontent.com/microsoft/WavText5K/7f1243befcba524009655747f5088b1573b7db95/WavText5K.csv",
    "md5:47a0e93f50001ce004ee8afb39fc6266", description="the WavText5K table (4525 rows)")


def _all_remotes() -> list[Remote | None]:
    clotho = [r for split in CLOTHO.values() for r in (split.audio, split.captions, split.metadata)]
    wavcaps = [subset.json for subset in WAVCAPS_SUBSETS.values()] + list(WAVCAPS_BLACKLISTS.values())
    macs = [MACS_ANNOTATIONS, MACS_COMPETENCE, MACS_LICENSE, TAU_META, *TAU_AUDIO]
    return [*clotho, *AUDIOCAPS_CAPTIONS.values(), *wavcaps, *macs, WAVTEXT5K_TABLE]


ASSETS = sources.pinned_assets(_all_remotes())
