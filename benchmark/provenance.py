"""Where clips come from: source identities read from the datasets' official metadata files.

Every clip of the five datasets comes from a source that names it, written `kind:id`:
- `freesound:<sound id>`: Clotho (metadata `sound_id`), WavCaps FreeSound (`fsd_final.json`), the
  WavCaps and DCASE 2025 exclusion lists; Clotho's literal `Not found` is never an id;
- `youtube:<video id>`: AudioCaps (`youtube_id`; the start time is kept apart, since AudioSet lists
  name videos, not segments), WavCaps AudioSet_SL (`as_final.json`, `Y<id>.wav`);
- `soundbible:<id>`: WavText5K's SoundBible rows (`soundbible.com/<id>-slug.html`), WavCaps
  SoundBible (`sb_final.json`);
- `bigsoundbank:<id>`: WavText5K's BigSoundBank rows (`bigsoundbank.com/detail-<id>-slug.html`);
- `bbc:<id>`: WavCaps BBC Sound Effects (`bbc_final.json`);
- `tau:<file>`: MACS (TAU Urban Acoustic Scenes 2019 file names).

It lives in the harness (not in `datasets_builders`) because the leaderboard audits declared
training data against each task from these files; the builders write the same identities per row.
`source_ids(path)` recognises each official file by its layout.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import LarbError
from benchmark.groundtruth import audiocaps_file_name
from benchmark.untrusted import decode_utf8, load_yaml, regular_file

NOT_FOUND = "Not found"
_SOUNDBIBLE_PAGE = re.compile(r"soundbible\.com/(\d+)-")
_BIGSOUNDBANK_PAGE = re.compile(r"bigsoundbank\.com/detail-(\d+)-")
WAVCAPS_JSON_SUBSETS = {"as_final": "youtube", "bbc_final": "bbc", "fsd_final": "freesound",
                        "sb_final": "soundbible"}
_BLACKLIST_SOURCES = {"AudioSet": "youtube", "FreeSound": "freesound", "SoundBible": "soundbible", "BBC": "bbc"}


@dataclass(frozen=True)
class Sources:
    """What a metadata file is, the source identities of its clips (`kind:id`), and, where the
    file names audio files, the identity of each file (a file whose source is unknown is absent)."""

    description: str
    ids: frozenset[str]
    rows: int
    by_file: dict[str, str] = field(default_factory=dict, compare=False)


def freesound(sound_id: object) -> str | None:
    """`freesound:<id>`, or None for an empty cell or Clotho's literal `Not found`."""
    text = str(sound_id).strip()
    return None if not text or text == NOT_FOUND else f"freesound:{text}"


def youtube(name: str) -> str:
    """An AudioSet file name (`Y<id>.wav`, as WavCaps writes it) or a bare video id."""
    stem = Path(name).stem
    return "youtube:" + (stem[1:] if name.endswith((".wav", ".flac")) and stem.startswith("Y") else stem)


def web_page(link: str) -> str | None:
    """The SoundBible or BigSoundBank identity of a sound's page, as WavText5K's `view_link` gives it."""
    for pattern, kind in ((_SOUNDBIBLE_PAGE, "soundbible"), (_BIGSOUNDBANK_PAGE, "bigsoundbank")):
        match = pattern.search(link)
        if match:
            return f"{kind}:{int(match.group(1))}"
    return None


def wavcaps(kind: str, ident: object) -> str:
    """The identity of a WavCaps JSON entry of subset `kind` (youtube, bbc, freesound, soundbible)."""
    if kind == "youtube":
        return youtube(str(ident))
    return f"{kind}:{int(str(ident)) if kind == 'soundbible' else ident}"


def tau(file_name: str) -> str:
    return f"tau:{Path(file_name).name}"


def _sources(description: str, rows: int, by_file: dict[str, str], extra: set[str] | None = None) -> Sources:
    return Sources(description, frozenset(set(by_file.values()) | (extra or set())), rows, by_file)


def _csv_sources(path: Path, text: str) -> Sources:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    header = set(rows[0]) if rows else set()
    if "sound_id" in header and "file_name" in header:
        by_file = {r["file_name"]: i for r in rows if (i := freesound(r["sound_id"])) is not None}
        return _sources(f"Clotho metadata ({path.name})", len(rows), by_file)
    if "sound_id" in header:
        ids = {i for r in rows if (i := freesound(r["sound_id"])) is not None}
        return _sources(f"Freesound exclusion list ({path.name})", len(rows), {}, ids)
    if {"youtube_id", "start_time"} <= header:
        by_file = {audiocaps_file_name(r["youtube_id"], r["start_time"]): youtube(r["youtube_id"]) for r in rows}
        return _sources(f"AudioCaps ({path.name})", len(rows), by_file)
    if {"view_link", "download_link", "fname"} <= header:
        by_file = {r["fname"]: i for r in rows if (i := web_page(r["view_link"])) is not None}
        return _sources(f"WavText5K ({path.name})", len(rows), by_file)
    raise LarbError("a CSV of no dataset LARB knows (no sound_id, youtube_id or view_link column).", path=path,
                    fix="give a Clotho metadata CSV, an AudioCaps CSV, WavText5K.csv or an exclusion list.")


def _json_sources(path: Path, data: object) -> Sources:
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        # the official name, or one with a prefix (e.g. a mirror's "wavcaps-fsd_final.json")
        kind = next((k for stem, k in WAVCAPS_JSON_SUBSETS.items() if path.stem.endswith(stem)), None)
        rows = data["data"]
        first = rows[0] if rows and isinstance(rows[0], dict) else {}
        if kind is None and "soundbible" in str(first.get("download_link", "")):
            kind = "soundbible"
        if kind is None:
            raise LarbError("a WavCaps JSON whose subset LARB cannot tell.", path=path,
                            fix="keep the official file name (as_final, bbc_final, fsd_final or sb_final.json).")
        try:
            by_file = {Path(str(r["id"])).stem + ".flac": wavcaps(kind, r["id"]) for r in rows}
        except (KeyError, TypeError, ValueError):
            raise LarbError("a WavCaps JSON entry without a usable id.", path=path,
                            fix="give the official file.") from None
        return _sources(f"WavCaps {path.stem} ({path.name})", len(rows), by_file)
    if isinstance(data, dict) and set(data) <= set(_BLACKLIST_SOURCES) and data:
        ids = {wavcaps(_BLACKLIST_SOURCES[k], i) if _BLACKLIST_SOURCES[k] != "soundbible" else f"soundbible:{i}"
               for k, values in data.items() for i in values}
        return _sources(f"WavCaps blacklist ({path.name})", sum(len(v) for v in data.values()), {}, ids)
    raise LarbError("a JSON of no dataset LARB knows.", path=path,
                    fix="give a WavCaps json_files/*.json or a WavCaps blacklist.")


def source_ids(path: str | Path) -> Sources:
    """The source identities of an official metadata file, recognised by its layout."""
    path = Path(path)
    regular_file(path, what="metadata file")
    try:
        return _read(path)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # a file of the right layout, odd cells
        raise LarbError(f"a row of unexpected form ({type(exc).__name__}: {str(exc)[:120]}).", path=path,
                        fix="give the official file, unedited.") from None


def _read(path: Path) -> Sources:
    if path.suffix.lower() in (".yaml", ".yml"):
        data = load_yaml(path)
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, list):
            raise LarbError("a YAML without a 'files' list (MACS.yaml has one).", path=path, fix="give MACS.yaml.")
        by_file = {Path(str(f["filename"])).name: tau(str(f["filename"])) for f in files
                   if isinstance(f, dict) and "filename" in f}
        return _sources(f"MACS ({path.name})", len(files), by_file)
    text = decode_utf8(path.read_bytes(), path)
    if path.suffix.lower() == ".json":
        try:
            return _json_sources(path, json.loads(text))
        except json.JSONDecodeError as exc:
            raise LarbError(f"not JSON ({exc.msg}).", path=path, line=exc.lineno,
                            fix="give the official file.") from None
    return _csv_sources(path, text)
