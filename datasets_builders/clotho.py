"""Clotho v2.1 (Drossos et al., ICASSP 2020) and its DCASE companion sets.

Splits: `development`, `validation`, `evaluation` (Zenodo 4783391, five captions each);
`captioning_test` (DCASE 2021 AAC evaluation, 3865658, no captions) and `captioning_analysis`
(DCASE 2022, 6610709, audio only); `retrieval_audio` and `retrieval_captions` (DCASE 2022
Task 6b evaluation, 6590983: 1000 clips and 1000 captions with no public ground truth; a
caption row has no audio and no file name).

Faithful to the published files: captions CSVs read as the harness reads them (file names
verbatim, leading spaces included), metadata CSVs in ISO-8859-1, `;`-delimited test metadata,
the three retrieval names with ":" in the CSV and "_" on disk (the `file_name` column holds the
name on disk), and `clotho_audio_test.7z` and `retrieval_audio.7z` both extracting to `test/`
(each archive is extracted into its own folder; in a user's folder, files are matched by name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import datasets

from benchmark import provenance
from benchmark.errors import LarbError
from datasets_builders import archives, sources
from datasets_builders.audio import AUDIO_SUFFIXES
from datasets_builders.base import LarbBuilder
from datasets_builders.remotes import CLOTHO as SOURCES
from datasets_builders.remotes import SplitSource
from datasets_builders.tables import read_rows, wide_captions

# Names in retrieval_audio_metadata.csv whose ":" became "_" in the archive (Zenodo v2.1 notes).
RETRIEVAL_RENAMES = {
    "raindrops on metal: police background.wav": "raindrops on metal_police background.wav",
    "Intersection Wet : Metro Pass.wav": "Intersection Wet_Metro Pass.wav",
    "Kitchen Roomtone w: Dripping Faucet_1-2.wav": "Kitchen Roomtone w_Dripping Faucet_1-2.wav",
}

_METADATA_COLUMNS = ("sound_id", "sound_link", "start_end_samples", "manufacturer", "license")


def disk_name(csv_name: str) -> str:
    """The on-disk name of a file listed in a metadata CSV (":" is not allowed in file names)."""
    if csv_name in RETRIEVAL_RENAMES:
        return RETRIEVAL_RENAMES[csv_name]
    return re.sub(r"\s*:\s*", "_", csv_name) if ":" in csv_name else csv_name


class ClothoBuilder(LarbBuilder):
    """Clotho v2.1 with its DCASE captioning-test, analysis and retrieval-evaluation sets."""

    NAME = "clotho"
    TITLE = "Clotho v2.1 audio captioning / language-based retrieval dataset"
    HOMEPAGE = "https://zenodo.org/records/4783391"
    LICENSE = ("audio and metadata: per-file Freesound licences (see the license column); captions: "
               "Tampere University licence, non-commercial research use only")
    CITATION = ("Drossos, Lipping, Virtanen. Clotho: an Audio Captioning Dataset. ICASSP 2020, 736-740.")
    SPLITS = tuple(SOURCES)
    DEFAULT_SPLITS = ("development", "validation", "evaluation")
    EXTRA_FEATURES: ClassVar[dict[str, Any]] = {"keywords": datasets.List(datasets.Value("string")),
                      **{column: datasets.Value("string") for column in _METADATA_COLUMNS}}

    def source(self, item: dict[str, Any], split: str) -> tuple[str | None, float | None]:
        return provenance.freesound(item.get("sound_id") or ""), None

    def _items(self, split: str) -> list[dict[str, Any]]:
        source = SOURCES[split]
        if split == "retrieval_captions":
            path = sources.obtain(source.captions, self.data_path)
            return [_item(None, None, [row["caption"]], {})
                    for row in read_rows(path, required=("caption",))]
        metadata = self._metadata(source)
        if source.captions is not None:
            listed = wide_captions(sources.obtain(source.captions, self.data_path))
        elif metadata:
            listed = [(name, []) for name in metadata]
        else:
            listed = None  # the analysis set: whatever the archive holds
        on_disk = disk_name if split == "retrieval_audio" else str
        audio = self._audio_files(split, source, [on_disk(n) for n, _ in listed] if listed else None)
        if listed is None:
            listed = [(name, []) for name in sorted(audio)]
        return [_item(on_disk(name), audio[on_disk(name)], captions, metadata.get(name, {}))
                for name, captions in listed]

    def _metadata(self, source: SplitSource) -> dict[str, dict[str, str]]:
        if source.metadata is None:
            return {}
        path = sources.obtain(source.metadata, self.data_path)
        rows = read_rows(path, delimiter=source.delimiter, required=("file_name",))
        return {row["file_name"]: row for row in rows}

    def _audio_files(self, split: str, source: SplitSource, names: list[str] | None) -> dict[str, Path]:
        """name -> audio path, from the user's folder if it has them all, else from the archive."""
        partial: list[str] = []
        if self.data_path is not None:
            found = _pick(sources.index_files(self.data_path, AUDIO_SUFFIXES), names, source.folders)
            if found is not None and (names is not None or found):
                missing = [n for n in (names or []) if n not in found]
                if not missing:
                    return found
                partial = missing if len(missing) < len(names or []) else []
        dest = archives.extracted_root() / "clotho-v2.1" / Path(source.audio.file_name).stem
        if not archives.is_extracted(dest):
            try:
                archive = sources.obtain(source.audio, self.data_path)
            except LarbError:
                if partial:
                    raise LarbError(
                        f"{len(partial)} audio files of the {split} split are missing, e.g. {partial[0]!r}.",
                        path=self.data_path, fix=f"add them, or put the official {source.audio.file_name} in "
                                                 "this folder.") from None
                raise
            archives.extract(archive, dest)
        found = _pick(sources.index_files(dest, AUDIO_SUFFIXES), names, source.folders) or {}
        missing = [n for n in (names or []) if n not in found]
        if missing:
            raise LarbError(f"{source.audio.file_name} lacks {len(missing)} files listed for the {split} split, "
                            f"e.g. {missing[0]!r}.", path=dest,
                            fix="delete this folder and the archive, and run again.")
        return found


def _pick(index: dict[str, list[Path]], names: list[str] | None,
          folders: tuple[str, ...]) -> dict[str, Path] | None:
    """One path per wanted name, preferring the split's own folder when a name repeats."""
    wanted = names if names is not None else [n for n, paths in index.items()
                                               if any(p.parent.name in folders for p in paths)]
    chosen = {}
    for name in wanted:
        paths = index.get(name)
        if paths:
            preferred = [p for p in paths if p.parent.name in folders]
            chosen[name] = (preferred or paths)[0]
    return chosen


def _item(file_name: str | None, audio_path: Path | None, captions: list[str],
          metadata: dict[str, str]) -> dict[str, Any]:
    keywords = metadata.get("keywords")
    return {"audio_path": str(audio_path) if audio_path else None, "file_name": file_name,
            "captions": list(captions), "keywords": keywords.split(";") if keywords else [],
            **{column: metadata.get(column) for column in _METADATA_COLUMNS}}
