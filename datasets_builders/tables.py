"""Reading the publishers' CSV files faithfully, with errors that name the file and line."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import LarbError
from benchmark.untrusted import decode_utf8


def read_text(path: Path) -> str:
    """UTF-8 (BOM tolerated) when the bytes are UTF-8, else ISO-8859-1 (Clotho v2/v2.1 metadata).

    A real ISO-8859-1 file with accented letters is practically never valid UTF-8, so the
    first decoding that succeeds is the right one; pure ASCII reads the same either way."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def read_rows(path: Path, *, delimiter: str = ",", required: tuple[str, ...] = (),
              text: str | None = None) -> list[dict[str, str]]:
    """Rows of a CSV as dicts, every row checked to have the header's number of cells."""
    text = read_text(path) if text is None else text
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise LarbError("the file is empty.", path=path, line=1, fix="restore the official file.")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise LarbError(f"the header lacks the column(s) {', '.join(missing)}.", path=path, line=1,
                        fix=f"this is not the expected file; the header must hold {', '.join(required)}.")
    rows = []
    with malformed_csv(path, reader):
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise LarbError(f"expected {len(header)} cells, found {len(row)}.", path=path,
                                line=reader.line_num, fix="restore the official file (a caption may have lost "
                                                          "its quotes).")
            rows.append(dict(zip(header, row, strict=True)))
    return rows


@contextlib.contextmanager
def malformed_csv(path: Path, reader) -> Iterator[None]:
    """A `csv.Error` (a cell over the field limit, a NUL byte) as one `LarbError` with its line."""
    try:
        yield
    except csv.Error as exc:
        raise LarbError(f"malformed CSV ({exc}).", path=path, line=reader.line_num,
                        fix="restore the official file; no cell of it is over "
                            f"{csv.field_size_limit():,} characters.") from None


def wide_captions(path: Path) -> list[tuple[str, list[str]]]:
    """(file name, captions) from a Clotho captions CSV, as the harness reads it (cells verbatim)."""
    text = decode_utf8(path.read_bytes(), path, fix="restore the official file.")
    reader = csv.reader(io.StringIO(text, newline=""))
    with malformed_csv(path, reader):
        header = next(reader, None)
        if not header or header[0].strip() != "file_name":
            raise LarbError("not a Clotho captions CSV: the first column must be 'file_name'.", path=path,
                            line=1, fix="use the official clotho_captions_<split>.csv.")
        columns = [i for i, name in enumerate(header) if name.strip().startswith("caption_")]
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise LarbError(f"expected {len(header)} cells, found {len(row)}.", path=path,
                                line=reader.line_num, fix="restore the official file.")
            rows.append((row[0], [row[i] for i in columns]))
    return rows
