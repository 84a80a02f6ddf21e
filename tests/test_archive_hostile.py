"""Hostile archives: bombs, slips, links, truncation and a full disk, every archive built here.

Each case must end in one `LarbError` naming the archive and the member, with nothing written
outside the extraction folder, no `.partial` left, and (for bombs) little memory used; honest
archives must still come out whole.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import os
import stat
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import py7zr
import pytest
import tqdm.auto  # noqa: F401 - imported before memory is traced, as extraction imports it
from data_helpers import make_7z, make_zip, write_split_zip

from benchmark.errors import LarbError
from datasets_builders import archives, splitzip
from datasets_builders.splitzip import MAX_RATIO, RATIO_MIN_BYTES, SplitZip, ZipFormatError, safe_relative

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
# What one extraction may allocate at its peak, whatever the archive. (Opening a 7z alone costs py7zr
# about 16 MiB: liblzma allocates the dictionary the header's coder declares.)
MEMORY_BUDGET = 32 * MIB


# -- helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """One ZIP member exactly as written: compressed bytes and whatever sizes it claims."""

    name: str
    body: bytes
    size: int  # the uncompressed size the central directory declares
    crc: int = 0
    method: int = 8
    mode: int = stat.S_IFREG | 0o644
    shares: int | None = None  # index of an earlier member whose local header and data it reuses


def craft_zip(path: Path, members: list[Raw]) -> Path:
    """A single-part ZIP written byte by byte, so sizes, modes and offsets can lie."""
    out, directory, offsets = bytearray(), bytearray(), []
    for member in members:
        if member.shares is not None:
            offsets.append(offsets[member.shares])
            continue
        offsets.append(len(out))
        name = member.name.encode("utf-8")
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, member.method, 0, 0x21, member.crc,
                           len(member.body), member.size, len(name), 0) + name + member.body
    for member, offset in zip(members, offsets, strict=True):
        name = member.name.encode("utf-8")
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0x800, member.method, 0, 0x21,
                                 member.crc, len(member.body), member.size, len(name), 0, 0, 0, 0,
                                 member.mode << 16, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(out), 0)
    path.write_bytes(bytes(out + directory + end))
    return path


def compressed_zeros(mib: int, method: int = 8) -> tuple[bytes, int]:
    """`mib` MiB of zeros deflated (8) or bzip2ed (12), and their CRC, never holding them whole."""
    engine = zlib.compressobj(9, zlib.DEFLATED, -15) if method == 8 else bz2.BZ2Compressor()
    block, body, crc = bytes(MIB), bytearray(), 0
    for _ in range(mib):
        body += engine.compress(block)
        crc = zlib.crc32(block, crc)
    return bytes(body + engine.flush()), crc


def zeros_file(path: Path, size: int) -> Path:
    """A file of `size` zero bytes (sparse: costs neither memory nor disk)."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def make_7z_raw(path: Path, sources: dict[str, Path], *, plain_header: bool = False) -> Path:
    """A 7z of files already on disk (arcname -> file), as py7zr writes it; symlinks are stored as links."""
    with py7zr.SevenZipFile(path, "w") as archive:
        if plain_header:
            archive.set_encoded_header_mode(False)
        for name, source in sources.items():
            archive.write(source, name)
    return path


def rename_in_7z(path: Path, old: str, new: str) -> None:
    """Rewrite a member name in a 7z's plain header (what py7zr refuses to write) and fix both CRCs."""
    data = bytearray(path.read_bytes())
    offset, size, _crc = struct.unpack_from("<QQI", data, 12)
    start = 32 + offset
    header = bytes(data[start:start + size])
    before, after = old.encode("utf-16-le"), new.encode("utf-16-le")
    assert len(before) == len(after) and header.count(before) == 1
    header = header.replace(before, after)
    data[start:start + size] = header
    struct.pack_into("<I", data, 28, zlib.crc32(header))
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:32])))
    path.write_bytes(bytes(data))


def tree(root: Path) -> set[str]:
    """Every path below `root` (files, folders, links), relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@contextlib.contextmanager
def peak_allocation() -> Iterator[list[int]]:
    """The peak bytes Python allocated inside the block, in a one-item list filled at its end."""
    peak = [0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def refused(archive: Path, tmp_path: Path, **kwargs: object) -> str:
    """Extract `archive` to tmp_path/out, expecting a LarbError that leaves tmp_path as it was."""
    before = tree(tmp_path)
    with pytest.raises(LarbError) as caught:
        archives.extract(archive, tmp_path / "out", progress=False, **kwargs)
    message = str(caught.value)
    assert str(archive) in message and "Fix:" in message
    assert tree(tmp_path) == before, "nothing may be left, in the folder or outside it"
    return message


# -- ZIP --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [8, 12], ids=["deflate", "bzip2"])
def test_zip_member_that_lies_about_its_size_costs_one_chunk(tmp_path, method):
    body, crc = compressed_zeros(50, method)  # 50 MiB of zeros, declared as 1000 bytes
    archive = craft_zip(tmp_path / "bomb.zip", [Raw("audio/zeros.wav", body, 1000, crc, method)])
    with peak_allocation() as peak:
        message = refused(archive, tmp_path)
    assert "'audio/zeros.wav' inflates past the 1000 bytes" in message
    assert peak[0] < MEMORY_BUDGET, f"the bomb allocated {peak[0] / MIB:.0f} MiB"


def test_split_zip_member_that_lies_about_its_size_is_refused(tmp_path):
    members = {"a.flac": bytes(3 * MIB), "b.flac": b"ok"}
    parts = write_split_zip(tmp_path / "Split.zip", members, part_size=1000)
    assert len(parts) > 2
    last = bytearray(parts[-1].read_bytes())
    entry = last.index(b"PK\x01\x02")
    assert struct.unpack_from("<I", last, entry + 24)[0] == 3 * MIB
    struct.pack_into("<I", last, entry + 24, 1000)  # the central directory now says 1000 bytes
    parts[-1].write_bytes(bytes(last))
    message = refused(parts[-1], tmp_path)
    assert "Split.zip is corrupt or unsafe" in message and "'a.flac' inflates past the 1000 bytes" in message


def test_zip_member_with_an_honest_but_impossible_ratio_is_refused_unread(tmp_path, monkeypatch):
    archive = tmp_path / "ratio.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle, handle.open("zeros.wav", "w") as out:
        for _ in range(8):
            out.write(bytes(MIB))
    with zipfile.ZipFile(archive) as handle:
        info = handle.getinfo("zeros.wav")
    assert info.file_size > MAX_RATIO * info.compress_size, "the test needs a ratio above the cap"
    reads: list[str] = []
    real_iter_member = SplitZip.iter_member

    def iter_member(self: SplitZip, member: splitzip.Member) -> Iterator[bytes]:
        reads.append(member.name)
        return real_iter_member(self, member)

    monkeypatch.setattr(SplitZip, "iter_member", iter_member)
    message = refused(archive, tmp_path)
    assert f"'zeros.wav' declares {info.file_size} bytes from {info.compress_size} compressed" in message
    assert f"{MAX_RATIO}x" in message and not reads, "refused before any member is extracted"


def test_zip_members_sharing_one_stream_are_refused_as_a_whole(tmp_path):
    """Each member passes alone (1 MiB, not over RATIO_MIN_BYTES), but 64 point at the same data."""
    body, crc = compressed_zeros(1)
    members = [Raw("m0.wav", body, RATIO_MIN_BYTES, crc)]
    members += [Raw(f"m{i}.wav", body, RATIO_MIN_BYTES, crc, shares=0) for i in range(1, 64)]
    archive = craft_zip(tmp_path / "overlap.zip", members)
    message = refused(archive, tmp_path)
    assert f"its members declare {64 * MIB} bytes in all" in message


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "..\\evil.txt", "C:\\evil.txt",
                                  "C:evil.txt", "\\\\server\\share\\evil.txt", "ABSOLUTE/outside/evil.txt"])
def test_zip_member_that_would_leave_the_folder_is_refused(tmp_path, name):
    name = name.replace("ABSOLUTE", str(tmp_path))  # an absolute path that a slip could really reach
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("fine.txt", b"first")
        handle.writestr(zipfile.ZipInfo(name), b"gotcha")
    with zipfile.ZipFile(archive) as handle:
        assert handle.namelist()[1] == name, "zipfile must have stored the name as given"
    message = refused(archive, tmp_path)
    assert f"member {name!r} has an unsafe name" in message
    assert not list(tmp_path.parent.glob("evil.txt")) and not (tmp_path / "outside").exists()


def test_zip_symlink_member_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("outside the folder")
    link = zipfile.ZipInfo("audio/link.wav")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("audio/real.wav", b"RIFF")
        handle.writestr(link, "../../secret.txt")
    message = refused(archive, tmp_path)
    assert "member 'audio/link.wav' is a symbolic link" in message
    assert not [p for p in tmp_path.rglob("*") if p.is_symlink()]


@pytest.mark.parametrize("where", ["tail", "middle"])
def test_truncated_zip_names_the_archive(tmp_path, where):
    archive = make_zip(tmp_path / "cut.zip", {"a.wav": os.urandom(200_000), "b.wav": os.urandom(200_000)})
    data = archive.read_bytes()
    archive.write_bytes(data[:len(data) // 2] if where == "tail" else data[:100_000] + data[200_000:])
    message = refused(archive, tmp_path)
    assert "cut.zip is not a readable ZIP archive" in message and "truncated" in message


def test_truncated_part_of_a_split_zip_names_it(tmp_path):
    parts = write_split_zip(tmp_path / "Big.zip", {"a.flac": os.urandom(5000), "b.flac": os.urandom(5000)},
                            part_size=4000)
    parts[1].write_bytes(parts[1].read_bytes()[:1000])
    message = refused(parts[-1], tmp_path)
    assert "Big.zip is corrupt or unsafe" in message and "truncated" in message


@pytest.mark.parametrize("name, reason", [
    ("../x", "climbs"), ("a/../../x", "climbs"), ("..\\x", "climbs"), ("/etc/x", "absolute"),
    ("\\etc\\x", "absolute"), ("C:\\x", "drive"), ("C:/x", "drive"), ("c:x", "drive"),
    ("\\\\server\\share\\x", "UNC"), ("", "empty"), ("./", "empty"), ("a\0b", "NUL")])
def test_safe_relative_refuses_names_that_escape(name, reason):
    with pytest.raises(ZipFormatError, match="unsafe name"):
        safe_relative(name)


def test_safe_relative_keeps_honest_names():
    assert safe_relative("a/b.wav") == Path("a/b.wav")
    assert safe_relative("./a//b.wav") == Path("a/b.wav")
    assert safe_relative("a\\b.wav") == Path("a/b.wav")
    assert safe_relative("a..b/c.wav") == Path("a..b/c.wav")


# -- 7z ---------------------------------------------------------------------------------------


def test_7z_bomb_is_refused_from_its_header(tmp_path):
    archive = make_7z_raw(tmp_path / "bomb.7z", {"audio/zeros.wav": zeros_file(tmp_path / "zeros", 8 * MIB)})
    (tmp_path / "zeros").unlink()
    with peak_allocation() as opening, py7zr.SevenZipFile(archive) as handle:
        (info,) = handle.list()
    assert info.uncompressed > MAX_RATIO * info.compressed, "the test needs a ratio above the cap"
    with peak_allocation() as peak:
        message = refused(archive, tmp_path)
    assert f"member 'audio/zeros.wav' declares {8 * MIB} bytes" in message and "refusing" in message
    # Decompressing anything would take a second dictionary and an output buffer: refusing costs
    # no more than opening the archive.
    assert peak[0] < min(MEMORY_BUDGET, opening[0] + 2 * MIB)


def test_7z_over_the_total_cap_is_refused(tmp_path, monkeypatch):
    archive = make_7z(tmp_path / "big.7z", {"a.wav": os.urandom(3000), "b.wav": os.urandom(3000)})
    monkeypatch.setattr(archives, "MAX_7Z_TOTAL", 5000)
    message = refused(archive, tmp_path)
    assert "big.7z declares 6000 bytes in all" in message


@pytest.mark.parametrize("hostile", ["../evil.txt", "a/../../../evil.txt", "ABSOLUTE/outside/evil.txt"])
def test_7z_member_that_would_leave_the_folder_is_refused(tmp_path, hostile):
    hostile = hostile.replace("ABSOLUTE", str(tmp_path))
    honest = hostile.replace(".", "x").replace("/", "y", 1)  # as long, and a name py7zr agrees to write
    staged = tmp_path / "staged.txt"
    staged.write_bytes(b"gotcha")
    archive = make_7z_raw(tmp_path / "slip.7z", {honest: staged}, plain_header=True)
    staged.unlink()
    rename_in_7z(archive, honest, hostile)
    with py7zr.SevenZipFile(archive) as handle:
        assert handle.getnames() == [hostile]
    message = refused(archive, tmp_path)
    assert f"member {hostile!r} has an unsafe name" in message
    assert not list(tmp_path.parent.glob("evil.txt")) and not (tmp_path / "outside").exists()


def test_7z_symlink_member_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("outside the folder")
    (tmp_path / "stage").mkdir()
    os.symlink("../secret.txt", tmp_path / "stage" / "link.wav")
    archive = make_7z_raw(tmp_path / "link.7z", {"link.wav": tmp_path / "stage" / "link.wav"})
    with py7zr.SevenZipFile(archive) as handle:
        assert [info.is_symlink for info in handle.list()] == [True]
    message = refused(archive, tmp_path)
    assert "member 'link.wav' is a symbolic link" in message
    assert [p for p in tmp_path.rglob("*") if p.is_symlink()] == [tmp_path / "stage" / "link.wav"]


def test_truncated_7z_names_the_archive(tmp_path):
    archive = make_7z(tmp_path / "cut.7z", {"a.wav": os.urandom(100_000)})
    data = archive.read_bytes()
    archive.write_bytes(data[:len(data) // 2])
    message = refused(archive, tmp_path)
    assert "cannot extract cut.7z" in message and "corrupt or incomplete" in message


# -- writing faults ---------------------------------------------------------------------------


class FullDisk:
    """A file that takes `room` bytes and then fails as a full disk does (or raises `fault`)."""

    def __init__(self, real: object, room: int, fault: BaseException) -> None:
        self.real, self.room, self.fault = real, room, fault

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.real.write(data[:self.room])
            self.room = 0
            raise self.fault
        self.room -= len(data)
        return self.real.write(data)

    def writelines(self, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self.real.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def honest(tmp_path: Path, kind: str) -> Path:
    members = {"audio/a.wav": os.urandom(300_000), "audio/b.wav": os.urandom(300_000)}
    if kind == "7z":
        return make_7z(tmp_path / "honest.7z", members)
    return make_zip(tmp_path / "honest.zip", members)


def fill_disk_after(monkeypatch, kind: str, room: int, fault: BaseException) -> None:
    """Make every file the extraction writes fail after `room` bytes; reading stays real."""
    module = archives if kind == "7z" else splitzip

    def fake_open(path, mode="r", *args, **kwargs):
        real = open(path, mode, *args, **kwargs)  # noqa: SIM115 - closed by the code under test
        return FullDisk(real, room, fault) if "w" in mode else real

    monkeypatch.setattr(module, "open", fake_open, raising=False)


@pytest.mark.parametrize("kind", ["zip", "7z"])
def test_full_disk_is_blamed_on_the_disk_not_the_archive(tmp_path, monkeypatch, kind):
    archive = honest(tmp_path, kind)
    fill_disk_after(monkeypatch, kind, 100_000, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    before = tree(tmp_path)
    with pytest.raises(LarbError) as caught:
        archives.extract(archive, tmp_path / "out", progress=False)
    message = str(caught.value)
    assert f"extracting {archive.name} failed: the disk is full (ENOSPC)" in message
    assert str(tmp_path / "out.partial" / "audio") in message, "names the path being written"
    assert "corrupt" not in message and "download" not in message
    assert tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["zip", "7z"])
def test_interrupted_extraction_leaves_nothing(tmp_path, monkeypatch, kind):
    archive = honest(tmp_path, kind)
    fill_disk_after(monkeypatch, kind, 100_000, KeyboardInterrupt())
    before = tree(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        archives.extract(archive, tmp_path / "out", progress=False)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["zip", "7z"])
def test_file_size_limit_is_reported_as_such(tmp_path, kind):
    """A real fault, not a stub: RLIMIT_FSIZE in a child makes write() fail with EFBIG (CPython
    ignores SIGXFSZ)."""
    archive = honest(tmp_path, kind)
    child = textwrap.dedent("""
        import resource, sys
        from pathlib import Path
        from benchmark.errors import LarbError
        from datasets_builders import archives
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        limit = 100_000 if hard == resource.RLIM_INFINITY else min(100_000, hard)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            archives.extract(Path(sys.argv[1]), Path(sys.argv[2]), progress=False)
        except LarbError as exc:
            print(exc)
            sys.exit(2)
    """)
    before = tree(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", child, str(archive), str(tmp_path / "out")], check=False,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"extracting {archive.name} failed: the file is larger than this process may write" in done.stdout
    assert "(EFBIG)" in done.stdout and "corrupt" not in done.stdout
    assert tree(tmp_path) == before


# -- honest archives --------------------------------------------------------------------------


HONEST = {"clips/a.wav": os.urandom(3 * MIB + 17), "clips/deep/b.wav": b"RIFF" * 1000, "empty.txt": b"",
          "silence.wav": bytes(512 * 1024)}


def test_honest_zip_extracts_whole(tmp_path):
    archive = tmp_path / "honest.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr(zipfile.ZipInfo("clips/"), b"")
        for name, data in HONEST.items():
            handle.writestr(name, data)
    with SplitZip([archive]) as handle:
        member = next(m for m in handle.members if m.name == "clips/a.wav")
        assert max(len(chunk) for chunk in handle.iter_member(member)) <= MIB
    out = archives.extract(archive, tmp_path / "out", progress=False)
    assert {n: (out / n).read_bytes() for n in HONEST} == HONEST and archives.is_extracted(out)
    flat = archives.extract(archive, tmp_path / "flat", progress=False,
                            rename=lambda n: archives.basename_of(n) if n.endswith(".wav") else None)
    assert sorted(p.name for p in flat.iterdir()) == [archives.MARKER, "a.wav", "b.wav", "silence.wav"]
    assert (flat / "b.wav").read_bytes() == HONEST["clips/deep/b.wav"]
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.rglob("*.tmp"))


def test_honest_7z_extracts_whole(tmp_path):
    archive = make_7z(tmp_path / "honest.7z", HONEST)
    out = archives.extract(archive, tmp_path / "out", progress=False)
    assert {n: (out / n).read_bytes() for n in HONEST} == HONEST and archives.is_extracted(out)
    flat = archives.extract(archive, tmp_path / "flat", progress=False,
                            rename=lambda n: archives.basename_of(n) if n.endswith(".wav") else None)
    assert sorted(p.name for p in flat.iterdir()) == [archives.MARKER, "a.wav", "b.wav", "silence.wav"]
    assert (flat / "a.wav").read_bytes() == HONEST["clips/a.wav"]
    assert not list(tmp_path.glob("*.partial"))
