"""MACS, Multi-Annotator Captioned Soundscapes (Martín-Morató and Mesaros, DCASE 2021).

`MACS.yaml` and `MACS_competence.csv` (Zenodo 5114771) with the audio of the TAU Urban
Acoustic Scenes 2019 development set (Zenodo 2589280): only the eight archives that hold
MACS files are fetched, and only MACS files are extracted from them. Every annotator's
sentence is a caption; each annotator's tags and MACE competence are kept per annotation,
with the scene label and recording identifier from the TAU `meta.csv`. Audio: 10 s, 48 kHz,
24-bit, two channels (binaural).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, ClassVar

import datasets
import yaml

from benchmark import provenance
from benchmark.errors import LarbError
from datasets_builders import archives, sources
from datasets_builders.audio import AUDIO_SUFFIXES
from datasets_builders.base import LarbBuilder
from datasets_builders.remotes import MACS_ANNOTATIONS as ANNOTATIONS
from datasets_builders.remotes import MACS_COMPETENCE as COMPETENCE
from datasets_builders.remotes import TAU_AUDIO, TAU_META
from datasets_builders.tables import read_text


def read_annotations(path: Path) -> list[dict[str, Any]]:
    """The `files` list of MACS.yaml, checked for the fields the builder needs."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        document = yaml.load(read_text(path), Loader=loader)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise LarbError(f"MACS.yaml is not valid YAML ({getattr(exc, 'problem', exc)}).", path=path,
                        line=line + 1 if line is not None else None, fix="restore the official file.") from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, list):
        raise LarbError("MACS.yaml has no 'files' list.", path=path, fix="restore the official file.")
    for entry in files:
        if not isinstance(entry, dict) or "filename" not in entry or not isinstance(entry.get("annotations"), list):
            raise LarbError(f"a MACS.yaml entry lacks filename/annotations: {str(entry)[:80]}", path=path,
                            fix="restore the official file.")
    return files


def read_competence(path: Path) -> dict[int, float]:
    """annotator id -> MACE competence, from the tab-separated `MACS_competence.csv`."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter="\t")
    if not reader.fieldnames or "annotator_id" not in [f.strip() for f in reader.fieldnames]:
        raise LarbError("MACS_competence.csv lacks the annotator_id column.", path=path, line=1,
                        fix="restore the official (tab-separated) file.")
    out = {}
    for row in reader:
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        try:
            out[int(row["annotator_id"])] = float(row["competence"])
        except (KeyError, ValueError):
            raise LarbError(f"bad competence row {row}.", path=path, line=reader.line_num,
                            fix="restore the official file.") from None
    return out


def read_meta(path: Path) -> dict[str, dict[str, str]]:
    """TAU meta.csv (tab-separated), by audio file name."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter="\t")
    return {Path(row["filename"]).name: row for row in reader if row.get("filename")}


class MacsBuilder(LarbBuilder):
    """MACS captions and tags on TAU Urban Acoustic Scenes 2019 audio."""

    NAME = "macs"
    TITLE = "MACS: Multi-Annotator Captioned Soundscapes (TAU Urban Acoustic Scenes 2019 audio)"
    HOMEPAGE = "https://zenodo.org/records/5114771"
    LICENSE = "non-commercial research use (TAU Urban Acoustic Scenes 2019 and MACS licences)"
    CITATION = ("Martín-Morató, Mesaros. Diversity and bias in audio captioning datasets. DCASE Workshop 2021.")
    SPLITS = ("train",)
    DEFAULT_SPLITS = ("train",)
    EXTRA_FEATURES: ClassVar[dict[str, Any]] = {
        "annotations": datasets.List({"annotator_id": datasets.Value("int32"), "sentence": datasets.Value("string"),
                                      "tags": datasets.List(datasets.Value("string")),
                                      "competence": datasets.Value("float32")}),
        "tags": datasets.List(datasets.Value("string")),
        "scene_label": datasets.Value("string"), "identifier": datasets.Value("string"),
        "source_label": datasets.Value("string"),
    }

    def source(self, item: dict[str, Any], split: str) -> tuple[str | None, float | None]:
        return provenance.tau(item["file_name"]), None

    def _items(self, split: str) -> list[dict[str, Any]]:
        files = read_annotations(sources.obtain(ANNOTATIONS, self.data_path))
        competence = read_competence(sources.obtain(COMPETENCE, self.data_path))
        names = [str(entry["filename"]) for entry in files]
        meta = self._meta()
        audio = self._audio(set(names))
        missing = [n for n in names if n not in audio]
        if missing:
            raise LarbError(f"{len(missing)} MACS audio files are in none of the TAU archives, e.g. {missing[0]!r}.",
                            fix="delete the extracted folders under the LARB cache (extracted/macs) and run again.")
        return [_item(entry, audio[str(entry["filename"])], competence, meta.get(str(entry["filename"]), {}))
                for entry in files]

    def _meta(self) -> dict[str, dict[str, str]]:
        if self.data_path is not None:
            found = sources.find_in_dir(self.data_path, "meta.csv")
            if found is not None:
                return read_meta(found)
        dest = archives.extracted_root() / "macs" / Path(TAU_META.file_name).stem
        if not archives.is_extracted(dest):
            archives.extract(sources.obtain(TAU_META, self.data_path), dest)
        found = sources.find_in_dir(dest, "meta.csv")
        if found is None:
            raise LarbError("the TAU meta archive holds no meta.csv.", path=dest,
                            fix="delete this folder and the archive, and run again.")
        return read_meta(found)

    def _audio(self, names: set[str]) -> dict[str, Path]:
        if self.data_path is not None:
            index = sources.index_files(self.data_path, AUDIO_SUFFIXES)
            if names <= index.keys():
                return {name: index[name][0] for name in names}
        found: dict[str, Path] = {}
        for remote in TAU_AUDIO:
            dest = archives.extracted_root() / "macs" / Path(remote.file_name).stem
            if not archives.is_extracted(dest):
                archive = sources.obtain(remote, self.data_path)
                archives.extract(archive, dest, rename=lambda member: _macs_only(member, names))
            for name, paths in sources.index_files(dest, (".wav",)).items():
                found.setdefault(name, paths[0])
        return found


def _macs_only(member: str, names: set[str]) -> str | None:
    name = archives.basename_of(member)
    return name if name in names else None


def _item(entry: dict[str, Any], path: Path, competence: dict[int, float],
          meta: dict[str, str]) -> dict[str, Any]:
    annotations, tags = [], []
    for annotation in entry["annotations"]:
        annotator = int(annotation.get("annotator_id"))
        own_tags = [str(t) for t in annotation.get("tags") or []]
        annotations.append({"annotator_id": annotator, "sentence": str(annotation.get("sentence") or ""),
                            "tags": own_tags, "competence": competence.get(annotator)})
        tags += [t for t in own_tags if t not in tags]
    return {"audio_path": str(path), "file_name": str(entry["filename"]),
            "captions": [a["sentence"] for a in annotations if a["sentence"].strip()],
            "annotations": annotations, "tags": tags, "scene_label": meta.get("scene_label"),
            "identifier": meta.get("identifier"), "source_label": meta.get("source_label")}
