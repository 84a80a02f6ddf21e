"""Read ZIP archives, including multi-part ("split") ones, in pure Python.

WavCaps ships `X.z01 ... X.zNN` plus `X.zip` (Info-ZIP `zip -s`, ZIP64). `zipfile` refuses
archives that span several disks, and concatenating the parts does not help because every
offset in a split archive is relative to the start of its own part. This reader keeps the
parts apart, maps (disk, offset) to a position across them, and streams each member out
with its CRC checked, so nothing has to be joined into a second 500 GB file first.

Nothing in an archive is trusted: a member is inflated in bounded chunks and stopped as soon
as it passes the size its central directory declares, a member (or the whole archive) that
declares more than MAX_RATIO times its compressed size is refused before it is read, and so
are names that are absolute or climb out with `..`, and symbolic links.
"""

from __future__ import annotations

import bisect
import bz2
import os
import re
import stat
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

_EOCD = struct.Struct("<IHHHHIIH")
_EOCD64_LOCATOR = struct.Struct("<IIQI")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_SIG_EOCD, _SIG_LOCATOR, _SIG_EOCD64 = 0x06054B50, 0x07064B50, 0x06064B50
_SIG_CENTRAL, _SIG_LOCAL = 0x02014B50, 0x04034B50
_DRIVE = re.compile(r"[A-Za-z]:")
_CHUNK = 1 << 20

# The most a member may inflate to, as a multiple of its compressed size. Real data (audio, FLAC,
# text) stays far below 100x; deflate cannot exceed about 1030x even on a run of one byte, so 1000x
# refuses only near-constant data, which is what a decompression bomb is made of. bzip2 and LZMA
# reach millions to one on the same data, so the cap matters most there.
MAX_RATIO = 1000
# Below this many bytes a member cannot be a bomb whatever its ratio (a short silent clip, an
# empty-ish text file): the ratio cap applies only above it.
RATIO_MIN_BYTES = 1 << 20


class ZipFormatError(Exception):
    """The archive is not a readable ZIP (truncated, corrupt, a part missing, or unsupported)."""


@dataclass(frozen=True)
class Member:
    """One entry of the central directory."""

    name: str
    disk: int
    offset: int
    compressed_size: int
    size: int
    crc: int
    method: int
    flags: int
    mode: int  # the Unix mode bits of the external attributes (0 when the archive has none)

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def is_symlink(self) -> bool:
        return stat.S_IFMT(self.mode) == stat.S_IFLNK


def count_parts(last_part: Path) -> int:
    """How many parts the archive whose last part (`.zip`) this is has, from its end record."""
    return _end_record(last_part)[0] + 1


def split_parts(last_part: Path) -> list[Path]:
    """All parts of an archive, in order, given its `.zip` (the last part): X.z01, X.z02, ..., X.zip.

    The number of parts is read from the `.zip`'s end record, so a missing part is detected."""
    disks = _end_record(last_part)[0] + 1
    parts = [last_part.with_suffix(f".z{i:02d}") for i in range(1, disks)] + [last_part]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise ZipFormatError(f"{len(missing)} of the {disks} parts are missing, e.g. {missing[0]}")
    return parts


class SplitZip:
    """A ZIP archive made of one or more parts (X.z01 ... X.zip), read without joining them."""

    def __init__(self, parts: list[Path]) -> None:
        self.parts = [Path(p) for p in parts]
        self._sizes = [p.stat().st_size for p in self.parts]
        self._starts = [sum(self._sizes[:i]) for i in range(len(self.parts))]
        self._handles: dict[int, BinaryIO] = {}
        self.members = self._read_central_directory()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- positions across parts -------------------------------------------------------------

    def _absolute(self, disk: int, offset: int) -> int:
        if disk >= len(self.parts):
            raise ZipFormatError(f"a record points into part {disk + 1}, but only {len(self.parts)} parts exist")
        return self._starts[disk] + offset

    def _read(self, position: int, length: int) -> bytes:
        out = bytearray()
        for chunk in self._iter_range(position, length):
            out += chunk
        return bytes(out)

    def _iter_range(self, position: int, length: int, chunk: int = _CHUNK) -> Iterator[bytes]:
        total = sum(self._sizes)
        if position < 0 or position + length > total:
            raise ZipFormatError("a record points past the end of the archive (truncated?)")
        while length > 0:
            index = bisect.bisect_right(self._starts, position) - 1
            want = min(length, chunk, self._starts[index] + self._sizes[index] - position)
            try:
                handle = self._handles.get(index)
                if handle is None:  # closed in close()
                    handle = self._handles[index] = open(self.parts[index], "rb")  # noqa: SIM115
                handle.seek(position - self._starts[index])
                data = handle.read(want)
            except OSError as exc:  # reading faults stay apart from writing ones (see extract)
                reason = exc.strerror or exc
                raise ZipFormatError(f"cannot read {self.parts[index].name} ({reason})") from None
            if len(data) != want:
                raise ZipFormatError(f"{self.parts[index].name} is shorter than expected (truncated?)")
            yield data
            position += want
            length -= want

    # -- directory ------------------------------------------------------------------------

    def _read_central_directory(self) -> list[Member]:
        last = len(self.parts) - 1
        disk_no, cd_disk, total, cd_size, cd_offset, eocd_pos = _end_record(self.parts[last])
        if disk_no != last:
            raise ZipFormatError(f"the archive has {disk_no + 1} parts but {len(self.parts)} were given")
        if 0xFFFF in (cd_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset):
            cd_disk, total, cd_size, cd_offset = self._zip64_end(eocd_pos)
        data = self._read(self._absolute(cd_disk, cd_offset), cd_size)
        members, pos = [], 0
        for _ in range(total):
            if pos + _CENTRAL.size > len(data):
                raise ZipFormatError("the central directory is truncated")
            (sig, _made, _need, flags, method, _time, _date, crc, csize, usize, name_len, extra_len,
             comment_len, disk, _iattr, eattr, offset) = _CENTRAL.unpack_from(data, pos)
            if sig != _SIG_CENTRAL:
                raise ZipFormatError("bad central directory entry")
            pos += _CENTRAL.size
            raw_name = data[pos:pos + name_len]
            extra = data[pos + name_len:pos + name_len + extra_len]
            pos += name_len + extra_len + comment_len
            usize, csize, offset, disk = _zip64_extra(extra, usize, csize, offset, disk)
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
            members.append(Member(name, disk, offset, csize, usize, crc, method, flags, eattr >> 16))
        return members

    def _zip64_end(self, eocd_pos: int) -> tuple[int, int, int, int]:
        last = self.parts[-1]
        with open(last, "rb") as handle:
            handle.seek(eocd_pos - _EOCD64_LOCATOR.size)
            locator = handle.read(_EOCD64_LOCATOR.size)
        sig, disk, offset, _disks = _EOCD64_LOCATOR.unpack(locator)
        if sig != _SIG_LOCATOR:
            raise ZipFormatError("ZIP64 end locator missing")
        record = self._read(self._absolute(disk, offset), _EOCD64.size)
        sig, _size, _made, _need, _disk_no, cd_disk, _n_here, total, cd_size, cd_offset = _EOCD64.unpack(record)
        if sig != _SIG_EOCD64:
            raise ZipFormatError("ZIP64 end record missing")
        return cd_disk, total, cd_size, cd_offset

    # -- members --------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse the archive before anything is written: any unsafe file member, or members that
        declare more than MAX_RATIO times the archive's own size in all (members sharing data)."""
        files = [m for m in self.members if not m.is_dir]
        for member in files:
            check_member(member)
        declared, size = sum(m.size for m in files), sum(self._sizes)
        if too_inflated(declared, size):
            raise ZipFormatError(f"its members declare {declared} bytes in all, over {MAX_RATIO} times the "
                                 f"archive's {size} bytes")

    def iter_member(self, member: Member) -> Iterator[bytes]:
        """The uncompressed bytes of `member`, in chunks of at most about 1 MiB whatever it inflates to.

        Stops with ZipFormatError as soon as the output passes the size the central directory
        declares (a member that lies about its size costs one chunk, not its whole output), and on
        a bad CRC. Since the output never passes the declared size, and that is at most MAX_RATIO
        times the compressed size, the actual ratio is capped too."""
        check_member(member)
        start = self._absolute(member.disk, member.offset)
        header = self._read(start, _LOCAL.size)
        sig, *_rest, name_len, extra_len = _LOCAL.unpack(header)
        if sig != _SIG_LOCAL:
            raise ZipFormatError(f"bad local header for member {member.name!r}")
        data_start = start + _LOCAL.size + name_len + extra_len
        crc, size = 0, 0
        for out in _inflate(member, self._iter_range(data_start, member.compressed_size)):
            size += len(out)
            if size > member.size:
                raise ZipFormatError(f"member {member.name!r} inflates past the {member.size} bytes its "
                                     "central directory declares")
            crc = zlib.crc32(out, crc)
            yield out
        if crc != member.crc or size != member.size:
            raise ZipFormatError(f"member {member.name!r} is corrupt (CRC or size mismatch)")

    def extract(self, member: Member, target: Path) -> Path:
        """Write one member to `target` (via a temporary file, so a failure leaves nothing).

        A fault of the archive is a ZipFormatError (reading faults too); an OSError can only come
        from writing, so the caller can blame the disk, not the archive."""
        tmp = target.with_name(target.name + ".tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.writelines(self.iter_member(member))
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def extract_all(self, dest: Path, rename: Callable[[str], str | None] = lambda name: name) -> list[Path]:
        """Extract every file member whose `rename(name)` is not None, to `dest / rename(name)`."""
        self.check()
        written = []
        for member in self.members:
            if member.is_dir:
                continue
            relative = rename(member.name)
            if relative is None:
                continue
            written.append(self.extract(member, dest / safe_relative(relative)))
        return written


def too_inflated(size: int, compressed: int) -> bool:
    """Whether `size` bytes from `compressed` bytes is a ratio no honest archive has (see MAX_RATIO)."""
    return size > RATIO_MIN_BYTES and size > MAX_RATIO * max(compressed, 1)


def check_member(member: Member) -> None:
    """Refuse (ZipFormatError) a member that is unsafe to extract, from its central-directory entry alone."""
    safe_relative(member.name)
    if member.is_symlink:
        raise ZipFormatError(f"member {member.name!r} is a symbolic link, which LARB never extracts (the "
                             "official archives hold plain files only)")
    if member.flags & 0x1:
        raise ZipFormatError(f"member {member.name!r} is encrypted")
    if too_inflated(member.size, member.compressed_size):
        raise ZipFormatError(f"member {member.name!r} declares {member.size} bytes from "
                             f"{member.compressed_size} compressed, over the {MAX_RATIO}x a real file "
                             "reaches (a decompression bomb?)")


def safe_relative(name: str) -> Path:
    """`name` as a relative path that cannot escape the extraction folder.

    Refuses what is absolute on any system (`/x`, `\\x`, `C:x`, `C:\\x`), climbs with `..` (either
    slash), is empty, or holds a NUL, rather than quietly rewriting it to something else."""
    unified = name.replace("\\", "/")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or unified.startswith("/") or _DRIVE.match(unified) or "\0" in name:
        raise ZipFormatError(f"member {name!r} has an unsafe name (absolute, with .., or empty)")
    return Path(*parts)


def _end_record(path: Path) -> tuple[int, int, int, int, int, int]:
    """(disk number, central directory disk, entries, cd size, cd offset, position) of the end record."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        start = max(0, size - (_EOCD.size + 0xFFFF))
        handle.seek(start)
        tail = handle.read()
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + _EOCD.size > len(tail):
        raise ZipFormatError(f"{path.name} has no ZIP end record (truncated or not a ZIP)")
    _sig, disk_no, cd_disk, _here, total, cd_size, cd_offset, _comment = _EOCD.unpack_from(tail, pos)
    return disk_no, cd_disk, total, cd_size, cd_offset, start + pos


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int, disk: int) -> tuple[int, int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + length]
        pos += 4 + length
        if tag != 0x0001:
            continue
        at = 0
        if usize == 0xFFFFFFFF:
            (usize,), at = struct.unpack_from("<Q", body, at), at + 8
        if csize == 0xFFFFFFFF:
            (csize,), at = struct.unpack_from("<Q", body, at), at + 8
        if offset == 0xFFFFFFFF:
            (offset,), at = struct.unpack_from("<Q", body, at), at + 8
        if disk == 0xFFFF:
            (disk,) = struct.unpack_from("<I", body, at)
    return usize, csize, offset, disk


def _inflate(member: Member, compressed: Iterator[bytes]) -> Iterator[bytes]:
    """`member`'s uncompressed bytes, in pieces of at most _CHUNK (plus a final flush of at most one
    deflate match), however small the input that produces them."""
    if member.method == 0:
        yield from compressed
    elif member.method == 8:
        engine = zlib.decompressobj(-15)
        try:
            for data in compressed:
                while data and not engine.eof:
                    yield engine.decompress(data, _CHUNK)
                    data = engine.unconsumed_tail
            yield engine.flush()
        except zlib.error as exc:
            raise ZipFormatError(f"member {member.name!r} is corrupt ({exc})") from None
    elif member.method == 12:
        bz = bz2.BZ2Decompressor()
        try:
            for data in compressed:
                while not bz.eof and (data or not bz.needs_input):
                    yield bz.decompress(data, _CHUNK)
                    data = b""
        except (OSError, EOFError) as exc:  # bz2 reports bad data as OSError: it is the archive's fault
            raise ZipFormatError(f"member {member.name!r} is corrupt ({exc})") from None
    else:
        raise ZipFormatError(f"member {member.name!r} uses compression method {member.method}, which is not "
                             "supported")
