"""Similarity-matrix submissions in the DCASE 2025 form, read as a stream of rows.

The file is what `pandas.DataFrame.to_csv` writes for a queries x corpus score matrix: a header
whose first cell is the index column's name (`index`, or empty) and whose other cells are the
corpus names (audio file names; captions for an audio-to-text task), then one row per query: its
label (the caption, or the query id; for audio-to-text the file name) and one finite number per
corpus item. Columns may come in any order; rows are matched to queries as data frames are
(`benchmark.array_rankings`: by id, else by text, a shared text in one row or in one row per query).

Rows are ranked block by block to the depth asked for (the tie rule of `benchmark.array_rankings`:
higher first, equal scores in the task's corpus order), so memory holds one block of scores and
`depth` indices per row, never the matrix: a 100,000 x 100,000 file is read in 16M-cell blocks.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmark.array_rankings import row_positions, top_k_from_scores
from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth
from benchmark.rankings import Ranking, normalise_caption
from benchmark.untrusted import excerpt, regular_file

INDEX_NAMES = ("index", "")
BLOCK_CELLS = 1 << 24  # scores held at once (128 MiB as float64)
BYTES_PER_SCORE = 40  # "-1.2345678901234567e-05," with room to spare
BYTES_PER_LABEL = 4096
_CHUNK = 1 << 20


def size_limit(ground_truth: GroundTruth) -> int:
    """The largest matrix file this task can have (one label and one number per cell per row)."""
    n_columns = len(ground_truth.corpus)
    header = sum(len(name.encode("utf-8")) + 3 for name in ground_truth.corpus) + 64
    return (1 << 20) + header + ground_truth.n_queries * (BYTES_PER_LABEL + n_columns * BYTES_PER_SCORE)


def _header(path: Path) -> list[str] | None:
    """The first record's cells, or None when the file is empty."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, strict=True), None)


def is_matrix(path: Path, ground_truth: GroundTruth) -> bool:
    """True when `path` is a regular file whose header is an index column followed by corpus names
    (a FIFO or a missing file is never opened here: the CSV reader names the problem)."""
    if not path.is_file():
        return False
    try:
        cells = _header(path)
    except (UnicodeDecodeError, csv.Error, OSError):
        return False
    if not cells or len(cells) < 2 or cells[0].strip() not in INDEX_NAMES:
        return False
    t2a = ground_truth.direction == "t2a"
    known = set(ground_truth.corpus) if t2a else {normalise_caption(c) for c in ground_truth.corpus}
    return all((cell if t2a else normalise_caption(cell)) in known for cell in cells[1:6])


def _records(path: Path, digest) -> Iterator[tuple[int, str, str]]:
    """(line, label, the rest of the line) per record, hashing the bytes as they are read. The label
    is parsed as CSV (it may be quoted and hold commas or line breaks); the numbers after it are
    left as text for numpy."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, record, line_number, first = "", "", 0, True
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            digest.update(chunk)
            try:
                pending += decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                raise LarbError(f"not UTF-8 (a bad byte after line {line_number + pending.count(chr(10))}).",
                                path=path, fix="save the file as UTF-8.") from None
            if first:
                pending, first = pending.removeprefix("\ufeff"), False
            lines = pending.split("\n")
            pending = lines.pop() if chunk else ""
            for line in lines:
                line_number += 1
                record = record + "\n" + line if record else line
                if record.startswith('"') and _quoted_end(record) is None:
                    continue  # a quoted label that goes on on the next line
                if record.strip():
                    yield line_number, *_split_label(record.rstrip("\r"), path, line_number)
                record = ""
            if not chunk:
                if record:
                    raise LarbError("a quoted label is never closed.", path=path, line=line_number,
                                    fix="close every quote (double the quotes inside a caption).")
                return


def _quoted_end(record: str) -> int | None:
    """The index just past a leading quoted CSV cell, or None when it is not closed."""
    i = 1
    while True:
        i = record.find('"', i)
        if i < 0:
            return None
        if record.startswith('""', i):
            i += 2
            continue
        return i + 1


def _split_label(record: str, path: Path, line: int) -> tuple[str, str]:
    if record.startswith('"'):
        end = _quoted_end(record)
        if end is None or (end < len(record) and record[end] != ","):
            raise LarbError("a quoted label is followed by something other than a comma.", path=path, line=line,
                            fix="quote the label as a whole.")
        return record[1:end - 1].replace('""', '"'), record[end + 1:]
    label, _, rest = record.partition(",")
    return label, rest


def _column_order(path: Path, ground_truth: GroundTruth) -> np.ndarray:
    """For the header's columns, the permutation that puts them in the task's corpus order."""
    try:
        header = _header(path)
    except UnicodeDecodeError:
        raise LarbError("not UTF-8.", path=path, line=1, fix="save the file as UTF-8.") from None
    except csv.Error as exc:
        raise LarbError(f"malformed header ({exc}).", path=path, line=1, fix="quote names as a whole.") from None
    if header is None:
        raise LarbError("the file is empty.", path=path, fix="write a header and one row per query.")
    t2a = ground_truth.direction == "t2a"
    key = (lambda name: name) if t2a else normalise_caption
    corpus_position = {key(name): i for i, name in enumerate(ground_truth.corpus)}
    columns = header[1:]
    order = np.empty(len(columns), np.int64)
    seen: set[int] = set()
    for column, name in enumerate(columns):
        position = corpus_position.get(key(name))
        if position is None:
            raise LarbError(f"column {column + 2}: {excerpt(name)} is not in this task's corpus.", path=path,
                            line=1, fix="label the columns with the task's corpus names only.")
        if position in seen:
            raise LarbError(f"column {column + 2}: {excerpt(name)} appears twice.", path=path, line=1,
                            fix="one column per corpus item.")
        seen.add(position)
        order[column] = position
    if len(columns) != len(ground_truth.corpus):
        missing = next(name for name in ground_truth.corpus if corpus_position[key(name)] not in seen)
        raise LarbError(f"{len(ground_truth.corpus) - len(columns)} corpus items have no column, e.g. "
                        f"{excerpt(missing)}.", path=path, line=1, fix="give one column per corpus item.")
    return np.argsort(order)


def _blocks(path: Path, ground_truth: GroundTruth, labels: list[str], digest) -> Iterator[np.ndarray]:
    """Blocks of rows (file order, columns in corpus order), each at most BLOCK_CELLS scores; the
    rows' labels are appended to `labels` as they are read."""
    regular_file(path, what="similarity matrix")
    limit = size_limit(ground_truth)
    size = path.stat().st_size
    if size > limit:
        raise LarbError(f"the file is {size:,} bytes; a score matrix of this task is at most {limit:,}.",
                        path=path, fix="write one row per query and one number per corpus item.")
    to_corpus_order = _column_order(path, ground_truth)
    n_columns = len(to_corpus_order)
    block_rows = max(1, BLOCK_CELLS // n_columns)
    block: list[np.ndarray] = []
    records = _records(path, digest)
    next(records)  # the header, checked above
    for line, label, rest in records:
        if len(labels) == ground_truth.n_queries:
            raise LarbError(f"more rows than this task has queries ({ground_truth.n_queries}).", path=path,
                            line=line, fix="write one row per query.")
        with warnings.catch_warnings():  # numpy warns where a cell is not a number; the count says so
            warnings.simplefilter("ignore", DeprecationWarning)
            values = np.fromstring(rest, dtype=np.float64, sep=",") if rest.strip() else np.empty(0)
        if len(values) != n_columns or rest.count(",") != n_columns - 1:
            raise LarbError(f"expected {n_columns} numbers after the label, found "
                            f"{rest.count(',') + 1 if rest.strip() else 0} cells.", path=path, line=line,
                            fix="give one number per corpus item (no empty or non-numeric cells).")
        if not np.isfinite(values).all():
            bad = int(to_corpus_order[np.flatnonzero(~np.isfinite(values[to_corpus_order]))[0]])
            raise LarbError(f"the score in column {bad + 2} is {values[bad]}.", path=path, line=line,
                            fix="give finite numbers only (no NaN or infinity).")
        labels.append(label)
        block.append(values)
        if len(block) == block_rows:
            yield np.stack(block)[:, to_corpus_order]
            block.clear()
    if block:
        yield np.stack(block)[:, to_corpus_order]
    if not labels:
        raise LarbError("the file has a header but no rows.", path=path, fix="write one row per query.")


def _query_rows(path: Path, labels: list[str], ground_truth: GroundTruth) -> np.ndarray:
    try:
        return np.asarray(row_positions(labels, ground_truth))
    except LarbError as exc:
        raise LarbError(exc.detail, path=path, fix=exc.fix) from None


def read_matrix(path: str | Path, ground_truth: GroundTruth, depth: int) -> Ranking:
    """Validate a similarity-matrix file against a task and rank every row to `depth`, one block of
    rows at a time."""
    path = Path(path)
    if depth > len(ground_truth.corpus):
        raise LarbError(f"the task ranks {depth} candidates but its corpus has {len(ground_truth.corpus)}.",
                        path=path)
    labels: list[str] = []
    digest = hashlib.sha256()
    ranked = [top_k_from_scores(block, depth) for block in _blocks(path, ground_truth, labels, digest)]
    indices = np.concatenate(ranked)[_query_rows(path, labels, ground_truth)]
    return Ranking(indices, digest.hexdigest(), path)


def read_scores(path: str | Path, ground_truth: GroundTruth) -> tuple[np.ndarray, str]:
    """The whole matrix (queries x corpus, in the task's orders) and the file's sha256: for scoring
    one file by several protocols, and for the audio-to-text ranking a matrix also gives."""
    path = Path(path)
    labels: list[str] = []
    digest = hashlib.sha256()
    scores = np.concatenate(list(_blocks(path, ground_truth, labels, digest)))
    return scores[_query_rows(path, labels, ground_truth)], digest.hexdigest()


def write_matrix(path: str | Path, ground_truth: GroundTruth, scores: np.ndarray) -> Path:
    """A score matrix in the DCASE 2025 form (rows labelled by query text), for tests and tools."""
    from benchmark.atomic import atomic_write_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", *ground_truth.corpus])
    for label, row in zip(ground_truth.query_texts, scores, strict=True):
        writer.writerow([label, *map(repr, map(float, row))])
    return atomic_write_text(path, buffer.getvalue())
