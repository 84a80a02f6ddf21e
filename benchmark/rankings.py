"""Ranking CSVs: reading, validating and matching them to a task's queries.

Text-to-audio CSV (the DCASE form): header `caption,fname_1,...,fname_10` (or
`file_name_1..file_name_10`), an optional `query_id` column anywhere. Audio-to-text CSV:
header `file_name,caption_1,...,caption_10`, the cells holding caption texts.

Matching rows to queries:

- with a `query_id` column, the id decides (and a caption given beside it must be the
  query's text);
- otherwise the caption text decides, compared after normalisation: Unicode NFC, leading
  and trailing white space removed, inner runs of white space collapsed to one space.
  Case and punctuation are kept: "A dog barks." and "a dog barks" are different captions.
- A caption text that several queries share (different audio files described by the same
  words; they exist in Clotho development and AudioCaps test) may appear in ONE row, whose
  ranking then serves all of those queries, or in as many rows as there are such queries
  if the rows are identical. Differing rows for a shared text cannot be told apart: the
  validator asks for a `query_id` column instead of guessing ("last one wins").

Candidate file names are compared exactly (Clotho has names that begin with a space).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth
from benchmark.metrics import K
from benchmark.untrusted import decode_utf8, regular_file

# Generous: a row is a caption and ten file names, well under 4 KiB.
BYTES_PER_QUERY_LIMIT = 4096
BYTES_BASE_LIMIT = 1 << 20

_SPACES = re.compile(r"\s+")
_ODD_SPACE = re.compile(r"\s\s|[^\S ]")  # two white spaces in a row, or one that is not " "


def normalise_caption(text: str) -> str:
    """The documented caption normalisation: NFC, trimmed, inner white space collapsed."""
    if _is_normal(text):  # the common case, checked in C, skips the regex
        return text
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _is_normal(text: str) -> bool:
    return (unicodedata.is_normalized("NFC", text) and _ODD_SPACE.search(text) is None
            and text == text.strip())


@dataclass(frozen=True)
class Ranking:
    """A validated ranking: corpus indices (queries x candidates, at least the task's depth) in the
    task's query order."""

    indices: np.ndarray
    sha256: str
    path: Path


@dataclass(frozen=True)
class _Header:
    key: int
    query_id: int | None
    candidates: list[int]
    width: int
    pick: Callable[[list[str]], tuple[str, ...]]  # the candidate cells of a row, in rank order


def _read_text(path: Path, limit: int) -> tuple[str, str]:
    """The decoded text and sha256 of the raw bytes; clear errors for size and encoding."""
    regular_file(path, what="ranking file")
    size = path.stat().st_size
    if size > limit:
        raise LarbError(f"the file is {size:,} bytes, more than the {limit:,} a ranking of this task "
                        "can need.", path=path, fix="submit one row per query with 10 file names.")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if _looks_utf16(data):
        raise LarbError("the file is UTF-16 (or another wide encoding), not UTF-8.", path=path,
                        fix="save it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet, or iconv -f UTF-16 -t UTF-8).")
    return decode_utf8(data, path), sha256


def _looks_utf16(data: bytes) -> bool:
    """A UTF-16 BOM, or an ASCII header whose every other byte is NUL (UTF-16 without a BOM)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    head = data[:16]
    return len(head) == 16 and (head[1::2].count(0) == 8 or head[0::2].count(0) == 8)


def _parse_header(cells: list[str], key_name: str, candidate_prefixes: Sequence[str], path: Path,
                  depth: int) -> _Header:
    """The columns of a header `key, prefix1, ..., prefixN` (N >= depth) with an optional query_id."""
    names = [c.strip() for c in cells]
    expected = (f"{key_name},{candidate_prefixes[0]}1,...,{candidate_prefixes[0]}{depth} (optional query_id "
                "column; more candidates may follow)")
    for prefix in candidate_prefixes:
        if f"{prefix}1" in names:
            break
    else:
        raise LarbError(f"wrong header {','.join(names)[:200]!r}.", path=path, line=1,
                        fix=f"use the header {expected}.")
    n = 0
    while f"{prefix}{n + 1}" in names:
        n += 1
    wanted = [f"{prefix}{i}" for i in range(1, n + 1)]
    extra = set(names) - set(wanted) - {key_name, "query_id"}
    duplicates = len(names) != len(set(names))
    if key_name not in names or extra or duplicates:
        problem = (f"unexpected column(s) {sorted(extra)}" if extra else
                   "a column is repeated" if duplicates else f"it needs {key_name} and {wanted[0]}..{wanted[-1]}")
        raise LarbError(f"wrong header ({problem}).", path=path, line=1, fix=f"use the header {expected}.")
    if n < depth:
        raise LarbError(f"the file gives {n} candidates per query; this task ranks {depth} (its depth).", path=path,
                        line=1, fix=f"rank {depth} candidates per query: use the header {expected}.")
    columns = [names.index(w) for w in wanted]
    if columns != list(range(columns[0], columns[0] + n)):
        raise LarbError(f"the candidate columns are not in order: {wanted[0]}..{wanted[-1]} must stand side by "
                        "side, rank 1 first (the official DCASE scorer reads them by position, not by name).",
                        path=path, line=1, fix=f"use the header {expected}.")
    return _Header(names.index(key_name), names.index("query_id") if "query_id" in names else None,
                   columns, len(names), operator.itemgetter(*columns) if n > 1 else lambda row: (row[columns[0]],))


def _near_miss(text: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(text, choices, n=1, cutoff=0.8)
    return f" The closest one in the task is {close[0]!r}." if close else ""


def read_ranking(path: str | Path, ground_truth: GroundTruth, depth: int = K) -> Ranking:
    """Validate a ranking CSV against a task and return it as corpus indices: every candidate the
    file gives (at least `depth`, the task's), so that deeper protocols can use them.

    Raises `LarbError` (file, line, fix) on the first problem; nothing is written.
    """
    path = Path(path)
    limit = BYTES_BASE_LIMIT + BYTES_PER_QUERY_LIMIT * ground_truth.n_queries
    text, sha256 = _read_text(path, limit)
    t2a = ground_truth.direction == "t2a"
    key_name, prefixes = ("caption", ("fname_", "file_name_")) if t2a else ("file_name", ("caption_",))
    corpus_index = {name: i for i, name in enumerate(ground_truth.corpus)} if t2a else {
        normalise_caption(name): i for i, name in enumerate(ground_truth.corpus)}
    query_pos = {qid: i for i, qid in enumerate(ground_truth.query_ids)}
    by_text: dict[str, list[str]] = {}  # normalised query text -> ids; built for the first row without an id

    # strict: a stray or unclosed quote is an error, not a silently merged cell
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1  # the line where the next record begins (a quoted caption may span lines)
    try:
        header_cells = next(reader, None)
        if header_cells is None:
            raise LarbError("the file is empty.", path=path, fix="write a header and one row per query.")
        header = _parse_header(header_cells, key_name, prefixes, path, depth)
        width_k = len(header.candidates)
        indices = np.full((ground_truth.n_queries, width_k), -1, dtype=np.int32)
        seen_row: dict[int, int] = {}  # query position -> line of its row
        placed: list[tuple[int, ...]] = []  # rankings in the order of seen_row, copied into `indices` at the end
        text_rows: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
        start = reader.line_num + 1
        # The loop runs once per query (a million on large tasks): lookups are bound to locals, and
        # the common case (known names, ten different candidates) is tried before `_candidates`,
        # which finds and names the problem.
        width, key_column, id_column, pick = header.width, header.key, header.query_id, header.pick
        position_of, texts, candidate_index = query_pos.__getitem__, ground_truth.query_texts, corpus_index.__getitem__
        for row in reader:
            line, start = start, reader.line_num + 1  # errors name the line where the row begins
            if len(row) != width:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                raise LarbError(f"expected {width} cells, found {len(row)}.", path=path, line=line,
                                fix=f"quote captions that contain commas, and give {width_k} candidates per row.")
            try:
                ranked = tuple(map(candidate_index, pick(row))) if t2a else None
            except KeyError:
                ranked = None
            if ranked is None or len(set(ranked)) != width_k:
                ranked = _candidates(row, header, corpus_index, t2a, path, line, ground_truth)
            key = row[key_column]
            if id_column is not None:
                qid = row[id_column]
                if qid not in query_pos:  # ids are exact (Clotho names may begin with a space)
                    qid = qid.strip()
                if qid not in query_pos:
                    raise LarbError(f"query_id {qid!r} is not a query of this task.", path=path, line=line,
                                    fix="use the ids listed by 'larb tasks --queries TASK'.")
                position = position_of(qid)
                expected = texts[position]
                if key != expected and key.strip() and (
                        not t2a or normalise_caption(key) != normalise_caption(expected)):
                    raise LarbError(f"query_id {qid!r} belongs to {expected!r}, not {key!r}.", path=path, line=line,
                                    fix="check that ids and captions are not shifted.")
                if position in seen_row:
                    raise LarbError(f"duplicate row for query_id {qid!r} (first on line {seen_row[position]}).",
                                    path=path, line=line, fix="keep one row per query.")
                seen_row[position] = line
                placed.append(ranked)
                continue
            if not key.strip():
                raise LarbError(f"empty {key_name} cell.", path=path, line=line, fix=f"fill in the {key_name}.")
            if not by_text:
                for qid, qtext in zip(ground_truth.query_ids, ground_truth.query_texts, strict=True):
                    by_text.setdefault(normalise_caption(qtext) if t2a else qtext, []).append(qid)
            lookup = normalise_caption(key) if t2a else key
            if lookup not in by_text:
                raise LarbError(f"{key_name} {key!r} is not a query of this task.{_near_miss(lookup, list(by_text))}",
                                path=path, line=line,
                                fix="copy the query text exactly (see the module docs for the normalisation).")
            text_rows.setdefault(lookup, []).append((line, ranked))
        for lookup, rows in text_rows.items():
            qids = by_text[lookup]
            first_line, first = rows[0]
            if len(qids) == 1 and len(rows) > 1:
                raise LarbError(f"duplicate row for {key_name} {lookup!r} (first on line {first_line}).",
                                path=path, line=rows[1][0], fix="keep one row per query.")
            if len(rows) > 1 and (len(rows) != len(qids) or any(r != first for _, r in rows)):
                raise LarbError(
                    f"the caption {lookup!r} belongs to {len(qids)} queries ({', '.join(qids)}) and appears "
                    f"in {len(rows)} rows that differ or do not match that number.", path=path,
                    line=rows[1][0], fix="add a query_id column to say which row is which query.")
            for qid in qids:
                _place(query_pos[qid], first, first_line, seen_row, placed, path, f"query {qid!r}")
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise LarbError(f"a cell is longer than {csv.field_size_limit():,} characters; no caption or file "
                            "name is that long.", path=path, line=start,
                            fix="check that every quote is closed, or that the file is a ranking CSV.") from None
        raise LarbError(f"malformed CSV ({exc}).", path=path, line=start,
                        fix="quote a caption as a whole (\"...\"), double the quotes inside it (\"\"), "
                            "and close every quote.") from None
    if placed:
        indices[np.fromiter(seen_row, np.int64, len(seen_row))] = placed
    missing = np.flatnonzero(indices[:, 0] < 0)
    if len(missing):
        examples = "; ".join(repr(ground_truth.query_texts[i]) for i in missing[:3])
        raise LarbError(f"{len(missing)} of {ground_truth.n_queries} queries have no row, e.g. {examples}.",
                        path=path, fix="give every query of the task one row.")
    return Ranking(indices, sha256, path)


def _candidates(row: list[str], header: _Header, corpus_index: dict[str, int], t2a: bool, path: Path,
                line: int, ground_truth: GroundTruth) -> tuple[int, ...]:
    cells = header.pick(row)
    try:
        ranked = tuple(map(corpus_index.__getitem__, cells if t2a else map(normalise_caption, cells)))
    except KeyError:
        for column, cell in enumerate(cells, start=1):
            if not cell.strip():
                raise LarbError(f"candidate {column} is empty.", path=path, line=line,
                                fix=f"give {len(cells)} candidates per row, as the header says.") from None
            if (cell if t2a else normalise_caption(cell)) not in corpus_index:
                what = "file name" if t2a else "caption"
                hint = _near_miss(cell, ground_truth.corpus)
                raise LarbError(f"candidate {column}: {what} {cell!r} is not in this task's corpus.{hint}",
                                path=path, line=line, fix=f"rank only the task's {what}s.") from None
        raise
    if len(set(ranked)) != len(cells):
        repeated = next(c for c in cells if cells.count(c) > 1)
        raise LarbError(f"{repeated!r} appears more than once in this row (the official scorer would count "
                        "it twice).", path=path, line=line, fix=f"rank {len(cells)} different candidates.")
    return ranked


def _place(position: int, ranked: tuple[int, ...], line: int, seen: dict[int, int], placed: list, path: Path,
           what: str) -> None:
    if position in seen:
        raise LarbError(f"duplicate row for {what} (first on line {seen[position]}).", path=path, line=line,
                        fix="keep one row per query.")
    seen[position] = line
    placed.append(ranked)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # csv.writer leaves a cell holding a lone "\r" unquoted when lines end in "\n" (CPython 3.11),
    # and a reader then splits the row there: such rows are written fully quoted.
    quote_all = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    for row in rows:
        (quote_all if any("\r" in cell for cell in row) else writer).writerow(row)
    return buffer.getvalue()


def t2a_csv_text(query_ids: Sequence[str], captions: Sequence[str], rankings: Sequence[Sequence[str]]) -> str:
    """A text-to-audio ranking in the DCASE form, with a query_id column (as many candidates per row
    as the rankings hold, the same for every row)."""
    depth = len(rankings[0]) if len(rankings) else K
    for qid, ranked in zip(query_ids, rankings, strict=True):
        if len(ranked) != depth:
            raise ValueError(f"query {qid}: {len(ranked)} candidates, the others have {depth}")
    return _csv_text(["query_id", "caption"] + [f"fname_{i}" for i in range(1, depth + 1)],
                     ([qid, caption, *ranked] for qid, caption, ranked in zip(query_ids, captions, rankings,
                                                                             strict=True)))


def ranking_csv_text(ground_truth: GroundTruth, indices: np.ndarray) -> str:
    """The CSV of a ranking given as corpus indices (queries x depth), in the task's direction."""
    names = [[ground_truth.corpus[i] for i in row] for row in indices]
    if ground_truth.direction == "t2a":
        return t2a_csv_text(ground_truth.query_ids, ground_truth.query_texts, names)
    return _csv_text(["query_id", "file_name"] + [f"caption_{i}" for i in range(1, indices.shape[1] + 1)],
                     ([qid, qid, *ranked] for qid, ranked in zip(ground_truth.query_ids, names, strict=True)))


def write_t2a_csv(path: str | Path, query_ids: Sequence[str], captions: Sequence[str],
                  rankings: Sequence[Sequence[str]]) -> Path:
    """Write a text-to-audio ranking in the DCASE form, with a query_id column, atomically."""
    return atomic_write_text(path, t2a_csv_text(query_ids, captions, rankings))


def write_ranking_csv(path: str | Path, ground_truth: GroundTruth, indices: np.ndarray) -> Path:
    """Write a ranking of corpus indices as the task's CSV form, atomically."""
    return atomic_write_text(path, ranking_csv_text(ground_truth, indices))
