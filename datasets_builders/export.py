"""Turn a split of a built dataset into a task folder: WAV files and a Clotho-layout captions CSV.

`larb data export DIR --split S --to FOLDER` reads `DIR` (a `larb data build --output`
folder) with `datasets.load_from_disk` and writes each row's audio under its `file_name`
as WAV, then `captions.csv` (`file_name,caption_1..caption_N`, N = the most captions of a
row, shorter rows padded with empty cells). The folder is what `benchmark.tasks.get_task`
reads as a folder task, so the harness and the baselines take it as `--task FOLDER`, and
its ground truth is the one `datasets_builders.task_groundtruth` computes from the split
(same query ids `file_name#k`, same sha256) whenever every row has audio.

- Audio: stored WAV bytes at the kept rate are written byte for byte; anything else (FLAC
  from a resampled build, `--sample-rate`) is decoded with soundfile, resampled with soxr
  (VHQ) only when `--sample-rate` differs from the stored rate, and written as WAV (16-bit,
  or the source's wider PCM / float subtype). A `file_name` that does not end in `.wav`
  (WavCaps' FLAC names) is written as `<stem>.wav`, the name the captions CSV then uses.
- Rows without audio (AudioCaps clips unavailable on YouTube) or without a file name are
  skipped and listed; their captions are not in the task.
- All or nothing: everything is written into a hidden folder beside FOLDER
  (`.FOLDER.export-partial`), each audio file through a rename, `captions.csv` last and
  atomically, and the folder is swapped into the place of FOLDER at the end, so a failed or
  killed export leaves FOLDER as it was. `--overwrite` replaces only a folder that LARB wrote.
  Running the same command again resumes an interrupted export: audio files
  already complete are kept. A `.larb-export.json` records what was exported (and is how a
  resume knows the partial folder came from the same split and options).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf

from benchmark import output_folders
from benchmark.atomic import atomic_write_text, os_faults
from benchmark.errors import LarbError
from benchmark.tasks import EXPORT_MANIFEST
from datasets_builders.audio import check_sample_rate, resample
from datasets_builders.base import read_build_options

log = logging.getLogger("larb.data")

CAPTIONS_FILE = "captions.csv"
MANIFEST_FILE = EXPORT_MANIFEST  # read back by benchmark.tasks.folder_task
_PARTIAL_SUFFIX = ".export-partial"
_VERBATIM_FORMATS = ("WAV", "WAVEX")
_KEEP_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


@dataclass
class ExportResult:
    """What an export did: the folder, the counts and the rows it left out."""

    folder: Path
    dataset: str
    split: str
    rows: int
    written: int = 0
    kept: int = 0  # complete audio files of an interrupted export, not written again
    skipped: list[str] = field(default_factory=list)  # file names (or row numbers) without audio
    renamed: dict[str, str] = field(default_factory=dict)  # file_name -> written .wav name
    max_captions: int = 0
    resumed: bool = False

    @property
    def exported(self) -> int:
        return self.written + self.kept


def partial_folder(target: Path) -> Path:
    """Where an export into `target` is written before it is renamed into place."""
    return target.parent / f".{target.name}{_PARTIAL_SUFFIX}"


def export(source: str | Path, split: str, to: str | Path, *, sample_rate: int | None = None,
           overwrite: bool = False) -> ExportResult:
    """Export split `split` of the built dataset at `source` into the task folder `to`."""
    import datasets

    source = Path(source).expanduser().resolve()
    target = Path(to).expanduser().resolve()
    check_sample_rate(sample_rate)
    if not (source / "dataset_dict.json").is_file():
        raise LarbError("not a folder written by 'larb data build --output'.", path=source,
                        fix="pass the --output folder of a build.")
    output_folders.check_target(target, overwrite=overwrite, reads=[source], option="--to")
    built = datasets.load_from_disk(str(source))
    if split not in built:
        raise LarbError(f"the build has no {split!r} split (it has: {', '.join(built) or 'none'}).", path=source,
                        fix=f"choose one of {', '.join(built)}, or build it with --split {split}.")
    table = built[split]
    missing = [c for c in ("file_name", "captions", "audio") if c not in table.column_names]
    if missing:
        raise LarbError(f"the {split} split has no {', '.join(missing)} column.", path=source,
                        fix="export a split written by 'larb data build'.")
    names = _plan(table, source, split)
    if not any(name is not None for name, _ in names):
        raise LarbError(f"no row of the {split} split names an audio file: there is nothing to export.",
                        path=source, fix="export a split with audio (a captions-only split cannot be a task).")
    if not any(captions for name, captions in names if name is not None):
        raise LarbError(f"the {split} split has no captions: a task needs captions to query with.", path=source,
                        fix="export a split with captions (e.g. evaluation, not captioning_test).")

    dataset_name = _single(table, "dataset") or source.name
    provenance = {"options": read_build_options(table.info.description), "sources": _sources(table, names)}
    key = {"source": str(source), "split": split, "sample_rate": sample_rate, "rows": table.num_rows,
           "fingerprint": getattr(table, "_fingerprint", None)}
    work = partial_folder(target)
    result = ExportResult(target, dataset_name, split, table.num_rows)
    result.resumed = _prepare(work, key)
    try:
        with os_faults(work, doing=f"exporting into {target}"):
            exported = _write_audio(table, names, work, sample_rate, result)
            _finish(work, target, exported, key, result, provenance, overwrite=overwrite)
    except BaseException:
        if work.exists():
            log.warning("the export stopped; run the same command again to resume it (%d audio files are "
                        "kept in %s)", result.exported, work)
        raise
    return result


def _plan(table, source: Path, split: str) -> list[tuple[str | None, list[str]]]:
    """(name to write, captions) per row; None for a row that cannot be exported (no file name)."""
    rows: list[tuple[str | None, list[str]]] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(table.select_columns(["file_name", "captions"])):
        file_name, captions = record["file_name"], [c if c is not None else "" for c in record["captions"] or []]
        if not file_name:
            rows.append((None, captions))
            continue
        name = _wav_name(file_name, source, index)
        if name in seen:
            raise LarbError(f"rows {seen[name]} and {index} of the {split} split would both be written "
                            f"as {name!r}.", path=source, fix="export a split whose file names are unique.")
        seen[name] = index
        rows.append((name, captions))
    return rows


def _wav_name(file_name: str, source: Path, index: int) -> str:
    """The relative path a row's WAV file gets: its file name, with a `.wav` suffix."""
    path = PurePosixPath(file_name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or file_name.startswith("/"):
        raise LarbError(f"row {index} has the file name {file_name!r}, which points outside the folder.",
                        path=source, fix="export a split whose file names are plain relative names.")
    if file_name.lower().endswith(".wav"):
        return file_name
    return (path.with_suffix(".wav") if path.suffix else path.with_name(path.name + ".wav")).as_posix()


def _single(table, column: str) -> str | None:
    if column not in table.column_names:
        return None
    values = [v for v in table.unique(column) if v]
    return values[0] if len(values) == 1 else None


def _prepare(work: Path, key: dict[str, object]) -> bool:
    """Make the partial folder; True when it resumes an interrupted export of the same split."""
    manifest = work / MANIFEST_FILE
    if work.is_dir():
        try:
            previous = json.loads(manifest.read_text(encoding="utf-8")).get("key")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous == key:
            log.info("resuming the interrupted export in %s", work)
            (work / CAPTIONS_FILE).unlink(missing_ok=True)  # written again, last
            return True
        log.info("discarding %s: it holds an export of another split, build or sample rate", work)
    output_folders.remove(work)
    work.mkdir(parents=True)
    atomic_write_text(manifest, json.dumps({"key": key, "complete": False}, indent=1) + "\n")
    return False


def _write_audio(table, names: list[tuple[str | None, list[str]]], work: Path, sample_rate: int | None,
                 result: ExportResult) -> list[tuple[str, list[str]]]:
    """Write every row's WAV file (keeping complete ones); the (name, captions) rows exported."""
    exported: list[tuple[str, list[str]]] = []
    audio = table.select_columns(["audio", "file_name"])
    for index, ((name, _), record) in enumerate(zip(names, audio, strict=True)):
        cell = record["audio"]
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if name is None or not data:
            result.skipped.append(record["file_name"] or f"row {index} (no file name)")
            continue
        if name != record["file_name"]:
            result.renamed[record["file_name"]] = name
        exported.append((name, names[index][1]))
        path = work / name
        if _complete(path):
            result.kept += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_file(path, _wav_bytes(data, sample_rate, record["file_name"]))
        result.written += 1
    return exported


def _complete(path: Path) -> bool:
    """A file an earlier run finished (files are renamed into place, so a header check suffices)."""
    if not path.is_file():
        return False
    try:
        return sf.info(str(path)).frames > 0
    except (sf.LibsndfileError, RuntimeError, OSError):
        return False


def _write_file(path: Path, data: bytes) -> None:
    """Write through a hidden sibling and rename, so a file at `path` is always whole."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _wav_bytes(data: bytes, sample_rate: int | None, file_name: str) -> bytes:
    """The stored bytes as a WAV file at `sample_rate` (None: the stored rate)."""
    try:
        info = sf.info(io.BytesIO(data))
        if info.format in _VERBATIM_FORMATS and sample_rate in (None, info.samplerate):
            return data
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise LarbError(f"cannot decode the stored audio of {file_name!r}: {exc}.",
                        fix="rebuild the dataset with 'larb data build'.") from None
    if sample_rate is not None and sample_rate != rate:
        samples, rate = resample(samples, rate, sample_rate), sample_rate
    subtype = info.subtype if info.subtype in _KEEP_SUBTYPES else "PCM_16"
    if subtype.startswith("PCM"):
        samples = np.clip(samples, -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _sources(table, names: list[tuple[str | None, list[str]]]) -> dict[str, str]:
    """Exported file -> source identity, from the build's `source_id` column (empty for older builds)."""
    if "source_id" not in table.column_names:
        return {}
    return {name: source for (name, _), source in zip(names, table["source_id"], strict=True) if name and source}


def _finish(work: Path, target: Path, exported: list[tuple[str, list[str]]], key: dict[str, object],
            result: ExportResult, provenance: dict[str, object], *, overwrite: bool) -> None:
    """Write the manifest and `captions.csv` (last, atomically), then rename the folder into place.

    The manifest also keeps the build's options (e.g. WavCaps' blacklist: training on the folder
    declares them) and each exported file's source identity (for `larb audit` of the folder)."""
    for stale in work.rglob(".*.partial"):
        stale.unlink(missing_ok=True)
    result.max_captions = max((len(captions) for _, captions in exported), default=0)
    if result.max_captions == 0:
        shutil.rmtree(work)
        what = "has audio" if not exported else "with audio has a caption"
        raise LarbError(f"no row of the {result.split} split {what}: there is no task to export.",
                        fix="export a split whose rows have audio and captions.")
    written = {name for name, _ in exported}
    provenance = {**provenance, "sources": {n: s for n, s in dict(provenance["sources"]).items() if n in written}}
    manifest = {"key": key, "complete": True, "dataset": result.dataset, "split": result.split,
                "rows": result.rows, "exported": result.exported, "skipped": result.skipped,
                "renamed": result.renamed, "captions_file": CAPTIONS_FILE, **provenance}
    atomic_write_text(work / MANIFEST_FILE, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(work / CAPTIONS_FILE, captions_csv(exported, result.max_captions))
    atomic_write_text(work / output_folders.MARKER, json.dumps({"written_by": "larb data export"}) + "\n")
    for name in (MANIFEST_FILE, CAPTIONS_FILE):  # readable as the audio files are (not mkstemp's 0600)
        _make_readable(work / name)
    output_folders.publish(work, target, overwrite=overwrite)


def _make_readable(path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def captions_csv(rows: list[tuple[str, list[str]]], n: int) -> str:
    """A Clotho-layout captions CSV: `file_name,caption_1..caption_n`, short rows padded."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["file_name", *(f"caption_{k}" for k in range(1, n + 1))])
    for name, captions in rows:
        writer.writerow([name, *captions, *([""] * (n - len(captions)))])
    return buffer.getvalue()
