"""Where two datasets share audio: by source identity, by exact content and by near-duplicate audio.

Each side of `audit(a, b)` is one of:
- an official metadata file of a known dataset (`benchmark.provenance.source_ids`): source ids only;
- a folder written by `larb data build --output`: every split's rows, their `source_id` and audio;
- a registered task id (its audio's sources from the task's pinned metadata, its audio when the
  task has it locally, as the demo does) or a task folder (its audio files; the sources an export
  recorded).

Overlaps are reported by source id, and when both sides have audio by exact content (sha256 of
the decoded audio, `audio.content_hash`, so WAV and FLAC of the same samples match) and by
near-duplicate audio (`datasets_builders.fingerprint`: re-encoded, resampled, gain-changed or
trimmed copies).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from benchmark import contamination, provenance
from benchmark.errors import LarbError
from benchmark.tasks import DERIVED_MARK, TASKS, get_task
from datasets_builders import fingerprint
from datasets_builders.audio import AUDIO_SUFFIXES, content_hash

EXAMPLES = 10
AudioItems = Callable[[], Iterator[tuple[str, bytes]]]


@dataclass(frozen=True)
class Side:
    """One side of an audit: what it is, its source ids and, if it has audio, its clips' bytes."""

    description: str
    rows: int
    ids: frozenset[str]
    audio: AudioItems | None = None
    hashes: dict[str, str] | None = None  # item -> content hash, where the build already stored it


def _built(folder: Path) -> Side:
    import datasets

    built = datasets.load_from_disk(str(folder))
    ids: set[str] = set()
    hashes: dict[str, str] = {}
    rows = 0
    for split, table in built.items():
        rows += table.num_rows
        columns = [c for c in ("file_name", "source_id", "audio_sha256") if c in table.column_names]
        for record in table.select_columns(columns):
            if record.get("source_id"):
                ids.add(record["source_id"])
            if record.get("audio_sha256"):
                hashes[f"{split}/{record['file_name']}"] = record["audio_sha256"]

    def audio() -> Iterator[tuple[str, bytes]]:
        for split, table in built.items():
            table = table.cast_column("audio", datasets.Audio(decode=False))
            for record in table.select_columns(["file_name", "audio"]):
                data = (record["audio"] or {}).get("bytes")
                if data:
                    yield f"{split}/{record['file_name']}", data

    return Side(f"LARB build ({folder.name}: {', '.join(built)})", rows, frozenset(ids), audio, hashes)


def _files(folder: Path, names: tuple[str, ...]) -> AudioItems:
    def audio() -> Iterator[tuple[str, bytes]]:
        for name in names:
            path = folder / name
            if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
                yield name, path.read_bytes()
    return audio


def _task(name: str) -> Side:
    task = get_task(name)
    files = contamination.audio_files(task)
    sources = contamination.corpus_sources(task) or {}
    audio = _files(task.audio_dir, files) if task.audio_dir is not None else None
    return Side(f"task {task.id} ({len(files):,} audio files)", len(files), frozenset(sources.values()), audio)


def side(path_or_task: str | Path) -> Side:
    """Recognise one audit input: a registered task id, a build folder, a task folder or a metadata file."""
    name = str(path_or_task)
    if name in TASKS or DERIVED_MARK in name:
        return _task(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return _built(path) if (path / "dataset_dict.json").is_file() else _task(str(path))
    if not path.exists():
        raise LarbError("no such file, folder or registered task.", path=path,
                        fix="give an official metadata file, a 'larb data build --output' folder, a task id "
                            "('larb tasks') or a task folder.")
    found = provenance.source_ids(path)
    return Side(found.description, found.rows, found.ids)


def _analysed(side: Side, name: str, data: bytes) -> tuple[str, fingerprint.Fingerprint]:
    """(content hash, fingerprint) of one clip; undecodable audio is the user's to fix."""
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        digest = (side.hashes or {}).get(name) or content_hash(data)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise LarbError(f"the audio of {name!r} in {side.description} cannot be decoded ({exc}).",
                        fix="repair or remove that file, then audit again.") from None
    return digest, fingerprint.fingerprint(samples, rate)


def _audio_overlaps(a: Side, b: Side) -> dict[str, dict]:
    """Exact-content and near-duplicate overlaps of two sides that both have audio: the side with
    fewer rows is indexed, the other streamed through it; examples are (a, b) pairs either way."""
    swapped = a.rows < b.rows
    indexed, streamed = (a, b) if swapped else (b, a)
    assert indexed.audio is not None and streamed.audio is not None
    names, prints, by_hash = [], [], {}
    for name, data in indexed.audio():
        digest, print_ = _analysed(indexed, name, data)
        names.append(name)
        prints.append(print_)
        by_hash.setdefault(digest, name)
    index = fingerprint.Index(prints)
    same, near, streamed_count = [], [], 0

    def pair(streamed_name: str, indexed_name: str) -> dict[str, str]:
        return {"a": indexed_name, "b": streamed_name} if swapped else {"a": streamed_name, "b": indexed_name}

    for name, data in streamed.audio():
        streamed_count += 1
        digest, print_ = _analysed(streamed, name, data)
        if digest in by_hash:
            same.append(pair(name, by_hash[digest]))
        found = index.matches(print_)
        if found:
            clip, ber, offset = found[0]
            seconds = offset * fingerprint.HOP / fingerprint.RATE  # the indexed clip at t + seconds = the streamed at t
            near.append({**pair(name, names[clip]), "bit_error_rate": round(ber, 4),
                         "offset_seconds": round(-seconds if swapped else seconds, 3)})
    a_count = len(names) if swapped else streamed_count
    same.sort(key=lambda e: (e["a"], e["b"]))
    near.sort(key=lambda e: (e["a"], e["b"]))
    def share(pairs: list[dict]) -> float:  # the share of a's clips in some pair
        return len({e["a"] for e in pairs}) / a_count if a_count else 0.0

    return {
        "by_content_hash": {"count": len(same), "examples": same[:EXAMPLES], "share_of_a": share(same)},
        "near_duplicates": {"count": len(near), "examples": near[:EXAMPLES], "share_of_a": share(near),
                            "offset": "a at time t is b at time t + offset_seconds",
                            "method": "Haitsma-Kalker 32-bit fingerprint, bit error rate below "
                                      f"{fingerprint.THRESHOLD} over at least "
                                      f"{fingerprint.MIN_OVERLAP_FRAMES * fingerprint.HOP / fingerprint.RATE:.2f} s"},
        "audio_files": {"a": a_count, "b": streamed_count if swapped else len(names)},
    }


def audit(a: str | Path, b: str | Path) -> dict:
    """Clips of `a` and `b` with the same source identity (and, when both have audio, the same or
    nearly the same audio): counts, shares and sorted examples."""
    first, second = side(a), side(b)
    shared = sorted(first.ids & second.ids)
    by_source: dict[str, int] = {}
    for identity in shared:
        kind = identity.split(":", 1)[0]
        by_source[kind] = by_source.get(kind, 0) + 1
    report = {
        "a": {"path": str(a), "what": first.description, "rows": first.rows, "source_ids": len(first.ids)},
        "b": {"path": str(b), "what": second.description, "rows": second.rows, "source_ids": len(second.ids)},
        "by_source_id": {"count": len(shared), "by_source": by_source, "examples": shared[:EXAMPLES],
                         "share_of_a": len(shared) / len(first.ids) if first.ids else 0.0,
                         "share_of_b": len(shared) / len(second.ids) if second.ids else 0.0},
    }
    if first.audio is not None and second.audio is not None:
        report.update(_audio_overlaps(first, second))
    return report

