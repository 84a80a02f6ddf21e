"""WavText5K (Deshmukh et al., 2022): 4525 web sounds with titles and descriptions.

The table is the official `WavText5K.csv` (CRLF, two titles with line breaks, BigSoundBank
rows then SoundBible rows, SoundBible tags as Python list literals), or a table refreshed
by `larb data scrape` (`--option table=PATH`). Audio comes from each row's download link
(politely: robots.txt, a delay per site, retries) or from a folder holding the files under
their `fname`. The caption is "{title}. {description}" by default (the paper's best),
or the title or the description alone.
"""

from __future__ import annotations

import ast
import os
import re
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import datasets
import soundfile as sf

from benchmark import assets, provenance
from benchmark.errors import LarbError
from datasets_builders import fetchjobs, sources
from datasets_builders.audio import AUDIO_SUFFIXES
from datasets_builders.base import LarbBuilder, Option
from datasets_builders.remotes import WAVTEXT5K_TABLE as CSV
from datasets_builders.tables import read_rows

COLUMNS = ("view_link", "download_link", "title", "description", "fname", "tags")
CAPTION_MODES = ("title_description", "title", "description")
ROW_CHOICES = ("described", "all")
_HTML_ITEM = re.compile(r"<li\b.*?</li>\s*,\s*", re.DOTALL)


def published_table() -> Path:
    """The official WavText5K.csv, fetched and verified."""
    return sources.obtain(CSV)


def select_rows(rows: list[dict[str, Any]], which: str = "described") -> list[dict[str, Any]]:
    """The rows a build keeps: "described" = those with a description, the 4,348 (all titled) that
    Deshmukh et al. trained on; "all" = every row (4,525), titled-only ones captioned by the title."""
    return rows if which == "all" else [row for row in rows if row["description"].strip()]


def caption(title: str, description: str, mode: str = "title_description") -> str:
    """The caption of a row: "{title}. {description}" (either alone when the other is empty)."""
    title, description = " ".join(title.split()), " ".join(description.split())
    if mode == "title":
        return title
    if mode == "description":
        return description
    if title and description:
        return f"{title.rstrip('.')}. {description}"
    return title or description


def tags_from_cell(text: str) -> list[str]:
    """A SoundBible tags cell (a Python list literal; ValueError if it is not). Three official
    rows also hold a raw `<li>...<a href="tags-x.html">x</a></li>` fragment of the page,
    whose tag follows it quoted anyway: the fragment is dropped."""
    if not text.strip():
        return []
    try:
        value = ast.literal_eval(_HTML_ITEM.sub("", text))
    except (ValueError, SyntaxError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(value, list | tuple):
        raise ValueError("not a list")  # noqa: TRY004 - one error type for "not a tags cell"
    return [str(tag) for tag in value]


def parse_tags(text: str, path: Path, line: int) -> list[str]:
    try:
        return tags_from_cell(text)
    except ValueError:
        raise LarbError(f"the tags cell {text[:60]!r} is not a list.", path=path, line=line,
                        fix="restore the official table (tags are written like ['a', 'b']).") from None


def read_table(path: Path) -> list[dict[str, Any]]:
    """The rows of a WavText5K table, tags parsed, the site named."""
    rows = read_rows(path, required=COLUMNS)
    names = set()
    out = []
    for index, row in enumerate(rows):
        if row["fname"] in names:
            raise LarbError(f"the file name {row['fname']!r} appears twice.", path=path,
                            fix="file names must be unique; restore the official table.")
        names.add(row["fname"])
        site = "bigsoundbank" if "bigsoundbank.com" in row["download_link"] else (
            "soundbible" if "soundbible.com" in row["download_link"] else row.get("site", "") or "other")
        out.append({**{c: row[c] for c in COLUMNS}, "tags": parse_tags(row["tags"], path, index + 2),
                    "site": site})
    return out


def file_fetcher(client: Any) -> Any:
    """A `fetchjobs` fetch function downloading job.source politely and checking it is audio."""
    from datasets_builders.scrapers.polite import Disallowed, NotFound

    def fetch(job: fetchjobs.Job) -> None:
        try:
            page = client.get(job.source)
        except NotFound:
            raise fetchjobs.Unavailable("HTTP 404/410") from None
        except Disallowed:
            raise fetchjobs.Unavailable("robots.txt disallows it") from None
        fd, tmp = tempfile.mkstemp(dir=job.target.parent, prefix=".dl-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(page.content)
            try:
                sf.info(tmp)
            except (sf.LibsndfileError, RuntimeError):
                raise fetchjobs.Unavailable(f"not audio ({page.content_type or 'unknown type'})") from None
            os.replace(tmp, job.target)
        finally:
            Path(tmp).unlink(missing_ok=True)

    return fetch


class WavText5KBuilder(LarbBuilder):
    """WavText5K: BigSoundBank and SoundBible sounds with their titles and descriptions."""

    NAME = "wavtext5k"
    TITLE = "WavText5K: 4525 web sound effects with titles and descriptions"
    HOMEPAGE = "https://github.com/microsoft/WavText5K"
    LICENSE = "table: MIT (Microsoft); audio: BigSoundBank CC0, SoundBible per-sound licences"
    CITATION = "Deshmukh, Elizalde, Wang. Audio Retrieval with WavText5K and CLAP Training. arXiv 2209.14275."
    SPLITS = ("train",)
    DEFAULT_SPLITS = ("train",)
    ON_BAD_AUDIO = "drop"
    OPTIONS: ClassVar[dict[str, Option]] = {
        "caption": Option("title_description", "what the caption is made of", CAPTION_MODES),
        "rows": Option("described", "described: the 4,348 rows with a description (the paper's); all: every row",
                       ROW_CHOICES),
        "table": Option("", "a table written by 'larb data scrape' to use instead of the official CSV"),
        "download": Option("yes", "fetch missing audio from the sites", ("yes", "no")),
        "workers": Option("2", "parallel downloads"),
        "delay": Option("1.0", "seconds between two requests to one site"),
        "retry_unavailable": Option("no", "try again files recorded as unavailable", ("yes", "no")),
        "drop_unavailable": Option("no", "leave rows without audio out", ("yes", "no")),
    }
    EXTRA_FEATURES: ClassVar[dict[str, Any]] = {
        "title": datasets.Value("string"), "description": datasets.Value("string"),
        "tags": datasets.List(datasets.Value("string")), "site": datasets.Value("string"),
        "view_link": datasets.Value("string"), "download_link": datasets.Value("string"),
        "download_status": datasets.Value("string"),
    }

    def source(self, item: dict[str, Any], split: str) -> tuple[str | None, float | None]:
        return provenance.web_page(item["view_link"]), None

    def _items(self, split: str) -> list[dict[str, Any]]:
        table = Path(self.option("table")).expanduser() if self.option("table") else None
        if table is not None and not table.is_file():
            raise LarbError("the table given by --option table does not exist.", path=table,
                            fix="pass a CSV written by 'larb data scrape'.")
        rows = select_rows(read_table(table or sources.obtain(CSV, self.data_path)), self.option("rows"))
        local = sources.index_files(self.data_path, AUDIO_SUFFIXES) if self.data_path else {}
        folder = assets.cache_dir() / "wavtext5k" / "audio"
        jobs = [fetchjobs.Job(row["fname"], folder / row["fname"], row["download_link"]) for row in rows
                if row["fname"] not in local and not (folder / row["fname"]).is_file()]
        manifest = fetchjobs.Manifest(folder)
        if jobs and self.flag("download"):
            from datasets_builders.scrapers.polite import PoliteClient

            client = PoliteClient(delay=self.number("delay", float))
            manifest = fetchjobs.run(jobs, file_fetcher(client), folder,
                                     workers=self.number("workers", int), interval=0,
                                     retry_unavailable=self.flag("retry_unavailable"),
                                     description="WavText5K audio")
        mode, drop = self.option("caption"), self.flag("drop_unavailable")
        items = []
        for row in rows:
            name = row["fname"]
            path = local[name][0] if name in local else (folder / name if (folder / name).is_file() else None)
            if path is None and drop:
                continue
            text = caption(row["title"], row["description"], mode)
            status = "ok" if path else (f"{manifest.status(name)}: {manifest.reason(name)}"
                                        if manifest.status(name) else "not downloaded")
            items.append({"audio_path": str(path) if path else None, "file_name": name,
                          "captions": [text] if text else [], "title": row["title"],
                          "description": row["description"], "tags": row["tags"], "site": row["site"],
                          "view_link": row["view_link"], "download_link": row["download_link"],
                          "download_status": status})
        return items
