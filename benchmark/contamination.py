"""How much of a task's audio a submission's declared training data contains, by source identity.

The board audits each declared `training_data` entry against each task it ranks, from pinned
official metadata (`benchmark.provenance`): a task names the metadata asset that maps its corpus
files to sources (`TaskSpec.corpus_metadata`), and `metadata_assets` says which assets hold the
sources of a declared dataset split. WavCaps entries subtract the blacklists they declare
(`options: {blacklist: ...}`); an entry that declares none is audited as if none was applied, the
larger overlap; WavText5K is audited as its whole table (an upper bound for the described rows).
An entry LARB has no pinned metadata for (a user's folder, WavCaps BBC and AudioSet_SL, whose
JSONs have no published checksum) is listed as not audited, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from benchmark import assets
from benchmark.errors import LarbError
from benchmark.provenance import Sources, source_ids
from benchmark.tasks import Task, exported_sources

_CLOTHO = "tau-graded-2023/{}-audio-metadata"  # Clotho's metadata columns, pinned (split, fid in front)
_WAVCAPS_JSON = {"freesound": "wavcaps/json_files/FreeSound/fsd_final.json",
                 "soundbible": "wavcaps/json_files/SoundBible/sb_final.json"}
WAVCAPS_BLACKLISTS = {name: f"wavcaps/json_files/blacklist/blacklist_{name}.json"
                      for name in ("exclude_test_ac", "exclude_all_ac", "exclude_ub8k_esc50_vggsound")}


def metadata_assets(declared: str, options: Mapping[str, str]) -> tuple[str, ...] | None:
    """The pinned assets holding the sources of a declared `dataset/split`; None when none do."""
    dataset, _, split = declared.partition("/")
    if dataset == "clotho-v2.1" and split in ("development", "validation", "evaluation"):
        return (_CLOTHO.format(split),)
    if dataset in ("audiocaps", "audiocaps-v1", "audiocaps-2.0") and split in ("train", "val", "test"):
        version = {"audiocaps-v1": "1", "audiocaps-2.0": "2.0"}.get(dataset) or options.get("version", "1")
        return (f"audiocaps-{'v1' if version == '1' else version}/{split}-captions",)
    if dataset == "wavcaps" and split in _WAVCAPS_JSON:
        return (_WAVCAPS_JSON[split],)
    return {"wavtext5k/train": ("wavtext5k/table",), "macs/train": ("macs/MACS.yaml",)}.get(declared)


@dataclass(frozen=True)
class Overlap:
    """Corpus files of a task whose source is in the declared training data."""

    files: int    # the task's audio files whose source the training data holds
    corpus: int   # the task's audio files
    audited: bool  # the task's sources and at least one declared entry could be read
    not_audited: tuple[str, ...]  # what LARB could not audit, with the reason

    @property
    def share(self) -> float:
        return self.files / self.corpus if self.corpus else 0.0


@cache
def _asset_sources(name: str) -> Sources:
    return source_ids(assets.fetch(name, progress=False))


def audio_files(task: Task) -> tuple[str, ...]:
    """The task's audio: its corpus (text to audio) or its queries (audio to text)."""
    return task.corpus if task.direction == "t2a" else task.ground_truth.query_ids


def corpus_sources(task: Task) -> dict[str, str] | None:
    """Audio file -> source identity, from the task's pinned metadata; None when it has none."""
    name = task.spec.corpus_metadata
    if name:
        by_file = _asset_sources(name).by_file
    elif task.audio_dir is not None and task.spec.id.startswith("folder:"):
        by_file = exported_sources(task.audio_dir)
    else:
        return None
    if not by_file:
        return None
    return {f: by_file[f] for f in audio_files(task) if f in by_file}


def entry_name(entry: Mapping[str, Any]) -> str:
    """How a `training_data` entry reads: `dataset/split`, options in brackets."""
    options = entry.get("options") or {}
    suffix = f" [{', '.join(f'{k}={v}' for k, v in sorted(dict(options).items()))}]" if options else ""
    return f"{entry['dataset']}/{entry['split']}{suffix}"


def training_sources(entry: Mapping[str, Any]) -> frozenset[str]:
    """The source identities of one declared training entry (LarbError when LARB cannot audit it)."""
    declared = f"{entry['dataset']}/{entry['split']}"
    options = {str(k): str(v) for k, v in dict(entry.get("options") or {}).items()}
    names = metadata_assets(declared, options)
    if names is None:
        raise LarbError(f"no pinned metadata names the sources of {declared}.")
    ids: set[str] = set()
    for name in names:
        ids |= _asset_sources(name).ids
    for blacklist in filter(None, (b.strip() for b in options.get("blacklist", "").split(","))):
        if blacklist == "none":
            continue
        if blacklist not in WAVCAPS_BLACKLISTS:
            raise LarbError(f"unknown WavCaps blacklist {blacklist!r}.")
        ids -= _asset_sources(WAVCAPS_BLACKLISTS[blacklist]).ids
    return frozenset(ids)


def overlap(task: Task, training_data: list[dict]) -> Overlap | None:
    """The task's corpus files that the declared training data holds; None when the task's corpus
    has no known sources (generated or user folders)."""
    n_audio = len(audio_files(task))
    try:
        corpus = corpus_sources(task)
    except LarbError as exc:  # e.g. offline without the metadata: said, not hidden
        return Overlap(0, n_audio, False, (f"the task's own metadata: {exc}",))
    if corpus is None:
        return None
    seen: set[str] = set()
    not_audited = []
    for entry in training_data:
        try:
            seen |= training_sources(entry)
        except LarbError as exc:
            not_audited.append(f"{entry_name(entry)}: {exc}")
    shared = sum(source in seen for source in corpus.values())
    return Overlap(shared, n_audio, len(not_audited) < len(training_data), tuple(not_audited))
