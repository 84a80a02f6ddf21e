"""Extract 7z and (multi-part) ZIP archives into the cache, all or nothing.

Extraction goes to `<dest>.partial` and is renamed to `<dest>` only when every member came
out with a good CRC, with a marker file inside. An interrupted extraction starts that
archive over on the next run; a finished one is never redone. A corrupt or truncated archive
becomes one `LarbError` that names it and says what to do.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from benchmark import assets
from benchmark.errors import LarbError
from datasets_builders.splitzip import SplitZip, ZipFormatError, safe_relative, split_parts

log = logging.getLogger("larb.data")

MARKER = ".larb-extracted.json"

Rename = Callable[[str], "str | None"]


def extracted_root() -> Path:
    """Where extracted archives live in the LARB cache."""
    return assets.cache_dir() / "extracted"


def is_extracted(dest: Path) -> bool:
    return (dest / MARKER).is_file()


def extract(archive: Path, dest: Path, *, rename: Rename | None = None, progress: bool = True) -> Path:
    """Extract `archive` (.7z, .zip, or the .zip of a split archive) into `dest`, once.

    `rename(member name)` maps each member to its path below `dest`, or None to skip it
    (default: keep the archive's own layout)."""
    if is_extracted(dest):
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if archive.suffix.lower() == ".7z":
            count = _extract_7z(archive, tmp, rename, progress)
        else:
            count = _extract_zip(archive, tmp, rename, progress)
    except LarbError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - py7zr, lzma, zlib, OS errors: all mean "unusable archive"
        shutil.rmtree(tmp, ignore_errors=True)
        raise LarbError(
            f"cannot extract {archive.name}: {type(exc).__name__}: {exc}", path=archive,
            fix="the archive is corrupt or incomplete: delete it and run again to download it afresh, "
                "or replace it with the official file.") from None
    (tmp / MARKER).write_text(json.dumps({"archive": archive.name, "members": count}), "utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def _extract_7z(archive: Path, dest: Path, rename: Rename | None, progress: bool) -> int:
    import py7zr
    from tqdm.auto import tqdm

    with py7zr.SevenZipFile(archive, mode="r") as handle:
        names = handle.getnames()
        wanted = {n: rename(n) if rename else n for n in names}
        targets = [n for n, new in wanted.items() if new is not None]
        with tqdm(total=len(targets), desc=f"extracting {archive.name}", unit="file", leave=False,
                  disable=None if progress else True) as bar:
            callback = _progress_7z(bar)
            if rename is None:
                handle.extractall(path=dest, callback=callback)
                return len(names)
            handle.extract(path=dest, targets=targets, callback=callback)
    for name in targets:
        new = safe_relative(wanted[name])
        if new != safe_relative(name) and (dest / name).is_file():
            (dest / new).parent.mkdir(parents=True, exist_ok=True)
            os.replace(dest / name, dest / new)
    return len(targets)


def _progress_7z_class() -> type:
    from py7zr.callbacks import ExtractCallback

    class Progress(ExtractCallback):
        """Advances a tqdm bar by one per extracted file."""

        def __init__(self, bar: object) -> None:
            self.bar = bar

        def report_end(self, processing_file_path: str, wrote_bytes: str) -> None:
            self.bar.update(1)

        def report_start_preparation(self) -> None: ...
        def report_start(self, processing_file_path: str, processing_bytes: str) -> None: ...
        def report_update(self, decompressed_bytes: str) -> None: ...
        def report_warning(self, message: str) -> None: ...
        def report_postprocess(self) -> None: ...

    return Progress


def _progress_7z(bar: object) -> object:
    return _progress_7z_class()(bar)


def _extract_zip(archive: Path, dest: Path, rename: Rename | None, progress: bool) -> int:
    try:
        parts = split_parts(archive)
    except ZipFormatError as exc:
        raise LarbError(f"{archive.name} is not a readable ZIP archive ({exc}).", path=archive,
                        fix="delete it (and its .zNN parts) and run again, or replace it with the "
                            "official file.") from None
    from tqdm.auto import tqdm

    with SplitZip(parts) as handle:
        members = [m for m in handle.members if not m.is_dir]
        count = 0
        for member in tqdm(members, desc=f"extracting {archive.name}", unit="file", leave=False,
                           disable=None if progress else True):
            relative = rename(member.name) if rename else member.name
            if relative is None:
                continue
            try:
                handle.extract(member, dest / safe_relative(relative))
            except ZipFormatError as exc:
                raise LarbError(f"{archive.name} is corrupt: {exc}.", path=archive,
                                fix="delete it (and its .zNN parts) and run again, or replace it with "
                                    "the official file.") from None
            count += 1
    return count


def basename_of(name: str) -> str:
    """Member name without its folders (for archives whose inner prefix is meaningless)."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]
