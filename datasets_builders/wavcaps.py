"""WavCaps (Mei et al., 2023): 403k ChatGPT-written captions of FreeSound, BBC Sound Effects,
SoundBible and AudioSet strongly-labelled clips, from the `cvssp/WavCaps` Hub repository.

Each subset is a split: its JSON (`{"num_captions_per_audio": 1, "data": [...]}`) and its
FLAC archive, which for three subsets is a multi-part ZIP (`X.z01 ... X.zip`, ZIP64, read part
by part with every member's CRC checked; no `zip -FF` needed). The official blacklists are
applied by default (`exclude_test_ac`: nothing that overlaps the Clotho or AudioCaps
evaluation data), chosen with `--option blacklist=...` and recorded in the dataset's info.
Files come from the pinned repository revision; the JSONs and blacklists are checksum-pinned,
the archives (no published checksums) are verified member by member through their CRCs.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import datasets

from benchmark import provenance
from benchmark.errors import LarbError
from datasets_builders import archives, sources
from datasets_builders.audio import AUDIO_SUFFIXES
from datasets_builders.base import LarbBuilder, Option
from datasets_builders.remotes import WAVCAPS_BLACKLISTS as BLACKLISTS
from datasets_builders.remotes import WAVCAPS_SUBSETS as SUBSETS
from datasets_builders.remotes import Subset, hub_url
from datasets_builders.sources import Remote
from datasets_builders.splitzip import ZipFormatError, count_parts, split_parts

log = logging.getLogger("larb.data")


# split -> the `benchmark.provenance` kind of its ids
SOURCE_KINDS = {"freesound": "freesound", "bbc_sound_effects": "bbc", "soundbible": "soundbible",
                "audioset_sl": "youtube"}
_TEXT_FIELDS = ("title", "description", "author", "href", "download_link")


def archive_remote(subset: Subset, suffix: str = ".zip") -> Remote:
    """One part of a subset's archive (not pinned: the publisher gives no checksums)."""
    return Remote(hub_url(f"Zip_files/{subset.folder}/{subset.folder}{suffix}"), None)


def audio_name(subset: str, ident: str) -> str:
    """The FLAC file of a JSON entry: AudioSet_SL ids are 'Y<youtube id>.wav', others bare ids."""
    return (ident.rsplit(".", 1)[0] if subset == "audioset_sl" else ident) + ".flac"


def read_entries(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text("utf-8"))
        entries = document["data"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise LarbError(f"not a WavCaps JSON file ({type(exc).__name__}: {exc}).", path=path,
                        fix="delete it and run again to fetch the official file.") from None
    return entries


def read_blacklist(path: Path) -> dict[str, set[str]]:
    try:
        document = json.loads(path.read_text("utf-8"))
        return {key: {str(v) for v in values} for key, values in document.items()}
    except (json.JSONDecodeError, AttributeError, TypeError) as exc:
        raise LarbError(f"not a WavCaps blacklist ({exc}).", path=path, fix="restore the official file.") from None


def blacklist_names(option: str) -> list[str]:
    names = [n.strip() for n in option.split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in BLACKLISTS]
    if unknown or not names:
        raise LarbError(f"unknown blacklist {unknown[0] if unknown else option!r}.",
                        fix=f"choose none, or one or more (comma-separated) of {', '.join(BLACKLISTS)}.")
    return names


class WavCapsBuilder(LarbBuilder):
    """WavCaps subsets as splits, blacklists applied."""

    NAME = "wavcaps"
    TITLE = "WavCaps: weakly-labelled audio-caption pairs (FreeSound, BBC, SoundBible, AudioSet SL)"
    HOMEPAGE = "https://huggingface.co/datasets/cvssp/WavCaps"
    LICENSE = "academic use only; audio under each source's licence (FreeSound, BBC RemArc, SoundBible)"
    CITATION = ("Mei et al. WavCaps: A ChatGPT-Assisted Weakly-Labelled Audio Captioning Dataset for "
                "Audio-Language Multimodal Research. IEEE/ACM TASLP 2024.")
    SPLITS = tuple(SUBSETS)
    DEFAULT_SPLITS = tuple(SUBSETS)
    ON_BAD_AUDIO = "drop"  # 7 archived FLACs are known to be unreadable (HF discussion #5)
    OPTIONS: ClassVar[dict[str, Option]] = {
        "blacklist": Option("exclude_test_ac", "official blacklist(s) applied, comma-separated, or none "
                            f"({', '.join(BLACKLISTS)})"),
    }
    EXTRA_FEATURES: ClassVar[dict[str, Any]] = {
        "id": datasets.Value("string"), "source": datasets.Value("string"),
        **{field: datasets.Value("string") for field in _TEXT_FIELDS},
        "original_file_name": datasets.Value("string"),  # FreeSound's upload name ("file_name" in its JSON)
        "tags": datasets.List(datasets.Value("string")), "category": datasets.List(datasets.Value("string")),
        "json_duration": datasets.Value("float64"),
    }

    def source(self, item: dict[str, Any], split: str) -> tuple[str | None, float | None]:
        return provenance.wavcaps(SOURCE_KINDS[split], item["id"]), None

    def _items(self, split: str) -> list[dict[str, Any]]:
        subset = SUBSETS[split]
        excluded = self._excluded(subset)
        entries = read_entries(sources.obtain(subset.json, self.data_path))
        kept = [e for e in entries if str(e["id"]) not in excluded]
        log.info("WavCaps %s: %d entries, %d excluded by the blacklist %s", split, len(entries),
                 len(entries) - len(kept), self.option("blacklist"))
        audio = self._audio(split, subset, [audio_name(split, str(e["id"])) for e in kept])
        items, missing = [], 0
        for entry in kept:
            path = audio.get(audio_name(split, str(entry["id"])))
            if path is None:
                missing += 1
                continue
            items.append(_item(split, entry, path))
        if missing:
            log.warning("WavCaps %s: %d entries have no audio file in the archive; left out", split, missing)
        return items

    def _excluded(self, subset: Subset) -> set[str]:
        excluded: set[str] = set()
        for name in blacklist_names(self.option("blacklist")):
            if subset.blacklist_key:
                lists = read_blacklist(sources.obtain(BLACKLISTS[name], self.data_path))
                excluded |= lists.get(subset.blacklist_key, set())
        return excluded

    def _audio(self, split: str, subset: Subset, names: list[str]) -> dict[str, Path]:
        if self.data_path is not None:
            index = sources.index_files(self.data_path, AUDIO_SUFFIXES)
            if names and all(name in index for name in names):
                return {name: index[name][0] for name in names}
        dest = archives.extracted_root() / "wavcaps" / subset.folder
        if not archives.is_extracted(dest):
            last = sources.obtain(archive_remote(subset), self.data_path)
            if subset.split_archive:
                try:
                    parts = split_parts(last)
                except ZipFormatError:
                    parts = None  # parts missing here: fetch them beside the .zip
                if parts is None:
                    for i in range(1, _disks(last)):
                        part = sources.obtain(archive_remote(subset, f".z{i:02d}"), self.data_path)
                        if part.parent != last.parent:
                            raise LarbError(f"{part.name} and {last.name} are in different folders.",
                                            path=part, fix="put all parts of the archive in one folder.")
            archives.extract(last, dest, rename=_flac_basename)
        index = sources.index_files(dest, (".flac",))
        return {name: index[name][0] for name in names if name in index}


def _disks(last: Path) -> int:
    try:
        return count_parts(last)
    except ZipFormatError as exc:
        raise LarbError(f"{last.name} is not a readable ZIP ({exc}).", path=last,
                        fix="delete it and run again to download it afresh.") from None


def _flac_basename(member: str) -> str | None:
    """Members sit under a long private path (mnt/fast/nobackup/.../X_flac/); keep the FLAC name."""
    name = archives.basename_of(member)
    return name if name.lower().endswith(".flac") else None


def _item(split: str, entry: dict[str, Any], path: Path) -> dict[str, Any]:
    category = entry.get("category") or []
    if isinstance(category, str):
        try:
            category = list(ast.literal_eval(category))
        except (ValueError, SyntaxError):
            category = [category]
    return {"audio_path": str(path), "file_name": path.name, "captions": [str(entry.get("caption", ""))],
            "id": str(entry["id"]), "source": split,
            **{field: str(entry.get(field) or "") for field in _TEXT_FIELDS},
            "original_file_name": str(entry.get("file_name") or ""),
            "tags": [str(t) for t in entry.get("tags") or []], "category": [str(c) for c in category],
            "json_duration": float(entry["duration"]) if entry.get("duration") is not None else None}
