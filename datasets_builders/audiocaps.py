"""AudioCaps (Kim et al., NAACL 2019), v1 and 2.0: captions from the official repository,
audio from YouTube (10 s from `start_time`) or from a folder of clips already downloaded.

A row is a clip: `file_name` = `<youtube_id>_<start_time>.wav` (the harness's clip id),
its captions with their `audiocap_ids` and the CSV lines they came from (so the test split
reproduces the `audiocaps-v1/test` ground truth exactly). Many videos are gone: their rows
keep `audio = None` and say why in `download_status`, and the download manifest lists them;
`--option drop_unavailable=yes` leaves them out instead.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, ClassVar

import datasets

from benchmark import assets, provenance
from benchmark.errors import LarbError
from benchmark.groundtruth import audiocaps_file_name
from datasets_builders import fetchjobs, sources, youtube
from datasets_builders.audio import AUDIO_SUFFIXES
from datasets_builders.base import LarbBuilder, Option
from datasets_builders.remotes import AUDIOCAPS_CAPTIONS as CAPTIONS
from datasets_builders.tables import read_text

HEADER = ["audiocap_id", "youtube_id", "start_time", "caption"]
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


def read_captions(path: Path) -> list[tuple[int, str, str, int, str]]:
    """(line, audiocap_id, youtube_id, start_time, caption) per row, every row validated."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != HEADER:
        raise LarbError(f"not an AudioCaps captions CSV (header {header}).", path=path, line=1,
                        fix=f"use the official file; its header is {','.join(HEADER)}.")
    rows = []
    line = reader.line_num + 1
    for row in reader:
        line, start = reader.line_num + 1, line
        if not row:
            continue
        problem = _row_problem(row)
        if problem:
            raise LarbError(f"malformed AudioCaps row: {problem}.", path=path, line=start,
                            fix="this copy is damaged or an old 2.0 train.csv (cdjkim/audiocaps issue #23): "
                                "delete it and run again to fetch the current file.")
        rows.append((start, row[0], row[1], int(row[2]), row[3]))
    return rows


def _row_problem(row: list[str]) -> str:
    if len(row) != 4:
        return f"{len(row)} cells instead of 4"
    if not row[0].isdigit():
        return f"audiocap_id {row[0][:40]!r} is not a number"
    if not _YOUTUBE_ID.match(row[1]):
        return f"youtube_id {row[1][:40]!r} is not an 11-character id"
    if not row[2].isdigit():
        return f"start_time {row[2][:40]!r} is not a whole number of seconds"
    return ""


class AudioCapsBuilder(LarbBuilder):
    """AudioCaps v1 / 2.0 with audio from YouTube or a local folder."""

    NAME = "audiocaps"
    TITLE = "AudioCaps: captions of AudioSet 10-second YouTube segments"
    HOMEPAGE = "https://github.com/cdjkim/audiocaps"
    LICENSE = "captions: MIT (academic use, per the README); audio: the YouTube uploaders' rights"
    CITATION = "Kim, Kim, Lee, Kim. AudioCaps: Generating Captions for Audios in The Wild. NAACL-HLT 2019."
    SPLITS = ("train", "val", "test")
    DEFAULT_SPLITS = ("train", "val", "test")
    OPTIONS: ClassVar[dict[str, Option]] = {
        "version": Option("1", "captions release", ("1", "2.0")),
        "download": Option("yes", "fetch missing clips from YouTube (no: use --data-dir / the cache only)",
                           ("yes", "no")),
        "workers": Option("4", "parallel downloads"),
        "delay": Option("1.0", "seconds between the starts of two downloads (rate limit)"),
        "retry_unavailable": Option("no", "try again clips recorded as unavailable", ("yes", "no")),
        "drop_unavailable": Option("no", "leave clips without audio out of the dataset", ("yes", "no")),
        "cookies": Option("", "a cookies.txt file for yt-dlp (YouTube's bot check)"),
    }
    EXTRA_FEATURES: ClassVar[dict[str, Any]] = {
        "youtube_id": datasets.Value("string"),
        "start_time": datasets.Value("int32"),
        "audiocap_ids": datasets.List(datasets.Value("string")),
        "csv_lines": datasets.List(datasets.Value("int32")),
        "version": datasets.Value("string"),
        "download_status": datasets.Value("string"),
    }

    def audio_folder(self) -> Path:
        return assets.cache_dir() / "audiocaps" / "audio"

    def source(self, item: dict[str, Any], split: str) -> tuple[str | None, float | None]:
        return provenance.youtube(item["youtube_id"]), float(item["start_time"])

    def _items(self, split: str) -> list[dict[str, Any]]:
        version = self.option("version")
        clips = _clips(read_captions(sources.obtain(CAPTIONS[(version, split)], self.data_path)))
        local = sources.index_files(self.data_path, AUDIO_SUFFIXES) if self.data_path else {}
        by_stem = {Path(name).stem: paths[0] for name, paths in local.items()}
        folder = self.audio_folder()
        jobs = []
        for clip in clips:
            stem = Path(clip["file_name"]).stem
            target = folder / clip["file_name"]
            if stem not in by_stem and not target.is_file():
                jobs.append(fetchjobs.Job(stem, target, f"{clip['youtube_id']} {clip['start_time']}"))
        manifest = fetchjobs.Manifest(folder)
        if jobs and self.flag("download"):
            manifest = fetchjobs.run(
                jobs, youtube.segment_fetcher(self.option("cookies")), folder,
                workers=self.number("workers", int),
                interval=self.number("delay", float),
                retry_unavailable=self.flag("retry_unavailable"),
                description=f"AudioCaps {split} from YouTube")
        drop = self.flag("drop_unavailable")
        items = []
        for clip in clips:
            stem = Path(clip["file_name"]).stem
            path = by_stem.get(stem) or (folder / clip["file_name"] if (folder / clip["file_name"]).is_file() else None)
            status = "ok" if path else (f"{manifest.status(stem)}: {manifest.reason(stem)}"
                                        if manifest.status(stem) else "not downloaded")
            if path is None and drop:
                continue
            items.append({**clip, "audio_path": str(path) if path else None, "version": version,
                          "download_status": status})
        return items


def _clips(rows: list[tuple[int, str, str, int, str]]) -> list[dict[str, Any]]:
    """Rows grouped by clip, clips in order of first appearance, captions in file order."""
    clips: dict[str, dict[str, Any]] = {}
    for line, audiocap_id, youtube_id, start, caption in rows:
        name = audiocaps_file_name(youtube_id, start)
        clip = clips.setdefault(name, {"file_name": name, "youtube_id": youtube_id, "start_time": start,
                                       "captions": [], "audiocap_ids": [], "csv_lines": []})
        clip["captions"].append(caption)
        clip["audiocap_ids"].append(audiocap_id)
        clip["csv_lines"].append(line)
    return list(clips.values())
