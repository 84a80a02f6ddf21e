"""Extract 7z and (multi-part) ZIP archives into the cache, all or nothing.

Extraction goes to `<dest>.partial` and is renamed to `<dest>` only when every member came
out with a good CRC, with a marker file inside. An interrupted or failed extraction leaves
nothing behind (the next run starts that archive over); a finished one is never redone.

An archive is not trusted: members that are absolute, climb out with `..`, are symbolic
links, or declare far more data than they hold are refused before anything is written, and
every member is written by LARB itself, in bounded chunks, to a path below the folder. A
corrupt, truncated or hostile archive becomes one `LarbError` that names it and its member;
a fault while writing (disk full, read-only) names the disk instead of blaming the archive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmark import assets
from benchmark.errors import LarbError, os_error
from datasets_builders.splitzip import (
    MAX_RATIO,
    SplitZip,
    ZipFormatError,
    safe_relative,
    split_parts,
    too_inflated,
)

log = logging.getLogger("larb.data")

MARKER = ".larb-extracted.json"

# The most a 7z archive may unpack to in all. The largest 7z LARB reads (Clotho v2.1 development
# audio) unpacks to about 7.5 GB; 64 GiB leaves room for any official file and still refuses a
# header that declares enough to fill the disk.
MAX_7Z_TOTAL = 64 << 30

_FIX = "delete it and download the official file again (run again to fetch it afresh)."
_FIX_ZIP = ("delete it (and its .zNN parts) and download the official file again (run again to fetch it "
            "afresh).")

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
    doing = f"extracting {archive.name}"
    try:
        with _writing(tmp, doing):
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        if archive.suffix.lower() == ".7z":
            count = _extract_7z(archive, tmp, rename, progress)
        else:
            count = _extract_zip(archive, tmp, rename, progress)
        with _writing(dest, doing):
            (tmp / MARKER).write_text(json.dumps({"archive": archive.name, "members": count}), "utf-8")
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
    except BaseException as exc:  # nothing half-written may stay, whatever stopped the extraction
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, LarbError) or not isinstance(exc, Exception):
            raise
        # Writing faults are LarbErrors by now, so what is left is py7zr, lzma or zlib on a bad archive.
        raise LarbError(f"cannot extract {archive.name}: {type(exc).__name__}: {exc}", path=archive,
                        fix=f"the archive is corrupt or incomplete: {_FIX}") from None
    return dest


@contextlib.contextmanager
def _writing(path: Path, doing: str) -> Iterator[None]:
    """An OSError in here is the destination's (disk full, file too large, read-only, no permission):
    say so, naming `path`, rather than calling the archive corrupt."""
    try:
        yield
    except OSError as exc:
        raise os_error(exc, path, doing=doing) from None


def _refuse(archive: Path, member: str, problem: str) -> LarbError:
    """The error for a hostile member: the archive and the member named, and a fresh download as the fix."""
    return LarbError(f"{archive.name}: member {member!r} {problem}; refusing to extract it.", path=archive,
                     fix=_FIX)


def _extract_7z(archive: Path, dest: Path, rename: Rename | None, progress: bool) -> int:
    import py7zr
    from tqdm.auto import tqdm

    # Given a file object rather than a path, py7zr decompresses one folder at a time instead of one
    # thread per folder, each holding an output chunk of up to 128 MB.
    with (open(archive, "rb") as raw,
          py7zr.SevenZipFile(raw, mode="r", max_extract_size=MAX_7Z_TOTAL) as handle):
        infos = handle.list()
        _check_7z(archive, infos, archive.stat().st_size)
        names = [info.filename for info in infos if not info.is_directory]
        wanted = {name: rename(name) if rename else name for name in names}
        targets = {name: new for name, new in wanted.items() if new is not None}
        files = _Files(dest.absolute(), {safe_relative(n): safe_relative(new) for n, new in targets.items()},
                       f"extracting {archive.name}")
        with tqdm(total=len(targets), desc=f"extracting {archive.name}", unit="file", leave=False,
                  disable=None if progress else True) as bar:
            try:
                handle.extract(path=files.root, targets=list(targets), callback=_progress_7z(bar),
                               factory=files)
            finally:
                files.discard()
    return len(targets)


def _check_7z(archive: Path, infos: list[Any], archive_size: int) -> None:
    """Refuse a hostile 7z from its header, before anything is decompressed.

    py7zr already refuses absolute and `..` names and keeps symlinks inside the folder, but it
    strips a leading `/` quietly and would still create links; LARB's archives hold plain files,
    so anything else is refused outright, with the member named. Sizes: in a solid block only the
    first member has a compressed size (the block's), so the ratio is checked per block."""
    seen: set[Path] = set()
    blocks: list[tuple[int, list[Any]]] = []  # (compressed size of a block, its members)
    for info in infos:
        if info.is_directory:
            continue
        if info.is_symlink:
            raise _refuse(archive, info.filename, "is a symbolic link (official archives hold plain files)")
        try:
            key = safe_relative(info.filename)
        except ZipFormatError:
            raise _refuse(archive, info.filename, "has an unsafe name (absolute, or with ..)") from None
        if key in seen:
            raise _refuse(archive, info.filename, "appears twice")
        seen.add(key)
        if info.uncompressed == 0:
            continue
        if info.compressed is not None or not blocks:
            blocks.append((info.compressed or 0, []))
        blocks[-1][1].append(info)
    total = 0
    for compressed, members in blocks:
        declared = sum(m.uncompressed for m in members)
        total += declared
        if too_inflated(declared, compressed):
            largest = max(members, key=lambda m: m.uncompressed).filename
            raise _refuse(archive, largest, f"declares {declared} bytes (with its solid block) from "
                                            f"{compressed} compressed, over the {MAX_RATIO}x a real file "
                                            "reaches (a decompression bomb?)")
    if total > MAX_7Z_TOTAL or too_inflated(total, archive_size):
        raise LarbError(f"{archive.name} declares {total} bytes in all, more than LARB unpacks from a "
                        f"{archive_size}-byte 7z (at most {MAX_7Z_TOTAL} bytes, and {MAX_RATIO}x the "
                        "archive).", path=archive, fix=_FIX)


class _Files:
    """py7zr's writer factory: each member is written by LARB to its own path below `root`, so py7zr
    creates no file, folder or link itself, and a write fault names the disk."""

    def __init__(self, root: Path, targets: dict[Path, Path], doing: str) -> None:
        self.root, self.targets, self.doing = root, targets, doing
        self.made: list[_File] = []

    def create(self, filename: str) -> _File:
        """py7zr asks for `root / member name`: write it to `root / rename(member name)` instead."""
        member = safe_relative(Path(filename).relative_to(self.root).as_posix())
        made = _File(self.root / self.targets[member], self.doing)
        self.made.append(made)
        return made

    def discard(self) -> None:
        """Close what a failed extraction left open (py7zr closes a member only once it is complete);
        the folder is deleted next, so a fault here adds nothing."""
        for made in self.made:
            with contextlib.suppress(OSError):
                made.file.close()


class _File:
    """One 7z member being written, with the part of py7zr's Py7zIO protocol that extraction uses."""

    def __init__(self, path: Path, doing: str) -> None:
        self.path, self.doing = path, doing
        with _writing(path, doing):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "wb")  # noqa: SIM115 - closed by close(), or by _Files.discard()

    def write(self, data: bytes | bytearray) -> int:
        with _writing(self.path, self.doing):
            return self.file.write(data)

    def seekable(self) -> bool:
        """No: py7zr would rewind a seekable product after its last write, which a file needs not."""
        return False

    def close(self) -> None:
        with _writing(self.path, self.doing):
            self.file.close()


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
        handle = SplitZip(split_parts(archive))
    except ZipFormatError as exc:
        raise LarbError(f"{archive.name} is not a readable ZIP archive ({exc}).", path=archive,
                        fix=_FIX_ZIP) from None
    from tqdm.auto import tqdm

    doing = f"extracting {archive.name}"
    with handle:
        members = [m for m in handle.members if not m.is_dir]
        count = 0
        try:
            handle.check()
            for member in tqdm(members, desc=doing, unit="file", leave=False,
                               disable=None if progress else True):
                relative = rename(member.name) if rename else member.name
                if relative is None:
                    continue
                target = dest / safe_relative(relative)
                with _writing(target, doing):  # SplitZip raises OSError only for writing
                    handle.extract(member, target)
                count += 1
        except ZipFormatError as exc:
            raise LarbError(f"{archive.name} is corrupt or unsafe: {exc}.", path=archive,
                            fix=_FIX_ZIP) from None
    return count


def basename_of(name: str) -> str:
    """Member name without its folders (for archives whose inner prefix is meaningless)."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]
