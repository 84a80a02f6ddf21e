"""Where two datasets share audio: overlaps by source identity, read from official metadata files.

Every clip of the five datasets comes from a source that names it:
- `freesound:<sound id>`: Clotho (metadata `sound_id`), WavCaps FreeSound (`fsd_final.json`), the
  WavCaps and DCASE 2025 exclusion lists; Clotho's literal `Not found` is never an id;
- `youtube:<video id>`: AudioCaps (`youtube_id`; the start time is kept apart, since AudioSet lists
  name videos, not segments), WavCaps AudioSet_SL (`as_final.json`, `Y<id>.wav`);
- `soundbible:<id>`: WavText5K's SoundBible rows (`soundbible.com/<id>-slug.html`), WavCaps
  SoundBible (`sb_final.json`);
- `bigsoundbank:<id>`: WavText5K's BigSoundBank rows (`bigsoundbank.com/detail-<id>-slug.html`);
- `bbc:<id>`: WavCaps BBC Sound Effects (`bbc_final.json`);
- `tau:<file>`: MACS (TAU Urban Acoustic Scenes 2019 file names).

`source_ids(path)` recognises each official file by its layout; `audit(a, b)` intersects the two.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import LarbError
from benchmark.untrusted import decode_utf8, load_yaml, regular_file

NOT_FOUND = "Not found"
EXAMPLES = 10
_SOUNDBIBLE_PAGE = re.compile(r"soundbible\.com/(\d+)-")
_BIGSOUNDBANK_PAGE = re.compile(r"bigsoundbank\.com/detail-(\d+)-")
_WAVCAPS_SUBSETS = {"as_final": "youtube", "bbc_final": "bbc", "fsd_final": "freesound", "sb_final": "soundbible"}
_BLACKLIST_SOURCES = {"AudioSet": "youtube", "FreeSound": "freesound", "SoundBible": "soundbible", "BBC": "bbc"}


@dataclass(frozen=True)
class Sources:
    """What a metadata file is, and the source identities of its clips (`kind:id`)."""

    description: str
    ids: frozenset[str]
    rows: int


def _youtube(name: str) -> str:
    """An AudioSet file name (`Y<id>.wav`, as WavCaps writes it) or a bare video id."""
    stem = Path(name).stem
    return "youtube:" + (stem[1:] if name.endswith(".wav") and stem.startswith("Y") else stem)


def _csv_sources(path: Path, text: str) -> Sources:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    header = set(rows[0]) if rows else set()
    if "sound_id" in header:
        ids = frozenset(f"freesound:{r['sound_id'].strip()}" for r in rows
                        if r["sound_id"].strip() and r["sound_id"].strip() != NOT_FOUND)
        kind = "Clotho metadata" if "file_name" in header else "Freesound exclusion list"
        return Sources(f"{kind} ({path.name})", ids, len(rows))
    if {"youtube_id", "start_time"} <= header:
        return Sources(f"AudioCaps ({path.name})", frozenset(_youtube(r["youtube_id"]) for r in rows), len(rows))
    if {"view_link", "download_link", "fname"} <= header:
        ids = set()
        for r in rows:
            for pattern, kind in ((_SOUNDBIBLE_PAGE, "soundbible"), (_BIGSOUNDBANK_PAGE, "bigsoundbank")):
                match = pattern.search(r["view_link"])
                if match:
                    ids.add(f"{kind}:{int(match.group(1))}")
        return Sources(f"WavText5K ({path.name})", frozenset(ids), len(rows))
    raise LarbError("a CSV of no dataset LARB knows (no sound_id, youtube_id or view_link column).", path=path,
                    fix="give a Clotho metadata CSV, an AudioCaps CSV, WavText5K.csv or an exclusion list.")


def _json_sources(path: Path, data: object) -> Sources:
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        kind = _WAVCAPS_SUBSETS.get(path.stem)
        rows = data["data"]
        if kind is None and rows and "soundbible" in str(rows[0].get("download_link", "")):
            kind = "soundbible"
        if kind is None:
            raise LarbError("a WavCaps JSON whose subset LARB cannot tell.", path=path,
                            fix="keep the official file name (as_final, bbc_final, fsd_final or sb_final.json).")
        ids = frozenset(_youtube(str(r["id"])) if kind == "youtube" else
                        f"{kind}:{int(r['id']) if kind == 'soundbible' else r['id']}" for r in rows)
        return Sources(f"WavCaps {path.stem} ({path.name})", ids, len(rows))
    if isinstance(data, dict) and set(data) <= set(_BLACKLIST_SOURCES) and data:
        ids = frozenset(_youtube(str(i)) if _BLACKLIST_SOURCES[k] == "youtube" else f"{_BLACKLIST_SOURCES[k]}:{i}"
                        for k, values in data.items() for i in values)
        return Sources(f"WavCaps blacklist ({path.name})", ids, sum(len(v) for v in data.values()))
    raise LarbError("a JSON of no dataset LARB knows.", path=path,
                    fix="give a WavCaps json_files/*.json or a WavCaps blacklist.")


def source_ids(path: str | Path) -> Sources:
    """The source identities of an official metadata file, recognised by its layout."""
    path = Path(path)
    regular_file(path, what="metadata file")
    if path.suffix.lower() in (".yaml", ".yml"):
        data = load_yaml(path)
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, list):
            raise LarbError("a YAML without a 'files' list (MACS.yaml has one).", path=path, fix="give MACS.yaml.")
        ids = frozenset(f"tau:{Path(str(f['filename'])).name}" for f in files if isinstance(f, dict))
        return Sources(f"MACS ({path.name})", ids, len(files))
    text = decode_utf8(path.read_bytes(), path)
    if path.suffix.lower() == ".json":
        try:
            return _json_sources(path, json.loads(text))
        except json.JSONDecodeError as exc:
            raise LarbError(f"not JSON ({exc.msg}).", path=path, line=exc.lineno,
                            fix="give the official file.") from None
    return _csv_sources(path, text)


def audit(a: str | Path, b: str | Path) -> dict:
    """Clips of `a` and `b` with the same source identity: counts per source and sorted examples."""
    first, second = source_ids(a), source_ids(b)
    shared = sorted(first.ids & second.ids)
    by_source: dict[str, int] = {}
    for identity in shared:
        kind = identity.split(":", 1)[0]
        by_source[kind] = by_source.get(kind, 0) + 1
    return {
        "a": {"path": str(a), "what": first.description, "rows": first.rows, "source_ids": len(first.ids)},
        "b": {"path": str(b), "what": second.description, "rows": second.rows, "source_ids": len(second.ids)},
        "by_source_id": {"count": len(shared), "by_source": by_source, "examples": shared[:EXAMPLES],
                         "share_of_a": len(shared) / len(first.ids) if first.ids else 0.0,
                         "share_of_b": len(shared) / len(second.ids) if second.ids else 0.0},
    }
