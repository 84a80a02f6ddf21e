"""Downloading one file into the cache: resumable, bounded in time, distrustful of the server.

- `$LARB_DOWNLOAD_STALL_TIMEOUT` (seconds, default 60): no byte for that long ends the download;
  `$LARB_DOWNLOAD_DEADLINE` (seconds, default 6 hours): one download ends after that long in
  all (checked between reads). Either way the bytes received are kept and running again
  resumes. A value that is not a positive number is a `LarbError` naming the variable.
- A Content-Length that is not a whole number (non-numeric, negative) is taken as unknown, as
  http.client does: the body is read to its end and only the checksum judges it. More bytes
  than the reply announced is an error, and nothing is kept.
- A resumed download is appended only when the reply is a 206 whose Content-Range starts
  where the `.part` ends. A 200 (or a 206 from byte 0) starts over; a 206 from elsewhere, or a
  416 that states another size than the `.part`, discards the `.part` and asks again from zero.
- Redirect loops and OS faults while writing the cache (disk full, read-only, file-size limit)
  are `LarbError`s naming the URL or the cache path; only a resumable `.part` is left behind.
- Processes take turns on one file through `<file>.lock` beside it (flock, POSIX), held while
  downloading, verifying and renaming; a process that waited uses the file the other put in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import LarbError, os_error

MIRROR_ENV = "LARB_ASSETS_MIRROR"  # named in the messages: the offline way round a failed download
_CHUNK = 1 << 20


STALL_TIMEOUT_ENV = "LARB_DOWNLOAD_STALL_TIMEOUT"


DEADLINE_ENV = "LARB_DOWNLOAD_DEADLINE"


DEFAULT_STALL_TIMEOUT = 60.0


DEFAULT_DEADLINE = 6 * 3600.0


USER_AGENT = "larb-asset-cache/0.1 (+https://github.com/larb-benchmark/larb)"


_LOCK_POLL = 0.1  # seconds between tries of a lock another process holds


_DIGITS = re.compile(r"[0-9]+")


_CONTENT_RANGE = re.compile(r"bytes\s+([0-9]+)-([0-9]+)/([0-9]+|\*)")


_UNSATISFIABLE_RANGE = re.compile(r"bytes\s+\*/([0-9]+)")


def file_checksum(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, *, progress: bool = True, description: str = "", checksum: str = "",
             stall_timeout: float | None = None, deadline: float | None = None) -> Path:
    """Download `url` to `dest` atomically, resuming a previous partial download.

    The bytes go to `dest.part`; an interrupted run leaves it, and the next run asks the server
    for the rest with an HTTP Range header (see the module docstring for what is trusted). With
    `checksum` ("md5:<hex>" or "sha256:<hex>") the bytes are verified before the rename, so
    `dest` never holds a wrong file. `<dest>.lock` is held throughout: a `dest` that exists once
    the lock is held was just fetched by another process and is kept (checked against
    `checksum`). `stall_timeout` and `deadline` (seconds) default to their environment variables.
    """
    timing = _Timing.start(
        stall_timeout if stall_timeout is not None else _seconds(STALL_TIMEOUT_ENV, DEFAULT_STALL_TIMEOUT),
        deadline if deadline is not None else _seconds(DEADLINE_ENV, DEFAULT_DEADLINE))
    label = description or dest.name
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, dest.parent, doing=f"creating the asset cache folder for {label}") from None
    part = dest.with_name(dest.name + ".part")
    with _cache_lock(dest, timing):
        if _size(dest) is not None:
            if checksum and not _has_checksum(dest, checksum):
                raise LarbError(f"checksum mismatch for {label}: the file another process put in place is "
                                f"not {checksum}.", path=dest,
                                fix="delete this file (it is corrupt or a different version) and run again.")
            return dest
        # With no .part to continue, _receive succeeds or raises, so this starts over at most once.
        while not _receive(url, part, _size(part) or 0, timing, label if progress else ""):
            _remove(part)
        if checksum and not _has_checksum(part, checksum):
            # A download that fails verification is set aside: the next run must not trust or resume it.
            bad = dest.with_name(dest.name + ".bad")
            _cache_call(os.replace, part, bad, doing=f"setting aside the download of {label}")
            raise LarbError(
                f"the download of {label!r} from {url} does not match its checksum {checksum}; it was "
                f"kept as {bad} for inspection.",
                fix="the publisher may have changed the file; report it, or place a verified copy in a "
                    f"mirror folder (${MIRROR_ENV}).")
        _cache_call(os.replace, part, dest, doing=f"putting the download of {label} in place")
    return dest


@dataclass(frozen=True)
class _Timing:
    """The time limits of one download: seconds without a byte, and seconds in all."""

    stall: float
    deadline: float
    give_up_at: float  # time.monotonic() at which the deadline passes

    @classmethod
    def start(cls, stall: float, deadline: float) -> _Timing:
        return cls(stall, deadline, time.monotonic() + deadline)

    def passed(self) -> bool:
        return time.monotonic() > self.give_up_at


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable `name`, else `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise LarbError(f"bad ${name} value {raw!r}: it is a number of seconds.",
                        fix=f"set {name} to a number greater than 0 (e.g. 60), or unset it.")
    return value


@contextlib.contextmanager
def _cache_lock(dest: Path, timing: _Timing) -> Iterator[None]:
    """Hold `<dest>.lock` (flock) so that one process at a time downloads, verifies and renames
    `dest`; waiting ends at the deadline, so a stuck process cannot hang the others forever.

    The lock file stays: deleting it would let a waiting process lock a file nobody else sees."""
    path = dest.with_name(dest.name + ".lock")
    try:
        handle = open(path, "a")  # noqa: SIM115 - held for the whole block; closing it releases the lock
    except OSError as exc:
        raise os_error(exc, path, doing="locking the asset cache") from None
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if timing.passed():
                    raise LarbError(f"another process has been downloading {dest.name} for over "
                                    f"{timing.deadline:g} s (it holds this lock file).", path=path,
                                    fix="wait for it to finish, or stop it and run again.") from None
                time.sleep(_LOCK_POLL)
            except OSError as exc:
                raise os_error(exc, path, doing="locking the asset cache") from None
        yield


def _receive(url: str, part: Path, have: int, timing: _Timing, bar_label: str) -> bool:
    """Fetch what `part` lacks (a progress bar when `bar_label`); False when the reply cannot
    continue it and the caller must start over.

    Only a 206 whose Content-Range starts at `have` is appended; a 200 (or a 206 from byte 0)
    replaces the part; a 206 from anywhere else is never spliced on."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timing.stall)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # whole already, or longer than the file: the stated size tells
            return _unsatisfiable_size(exc.headers.get("Content-Range", "")) == have
        if 300 <= exc.code < 400:
            raise LarbError(f"{url} redirects in a loop, too many times or to a place that may not be "
                            f"followed (HTTP {exc.code} from {exc.url}).",
                            fix="report it to the publisher, or put the file in a mirror folder "
                                f"(${MIRROR_ENV}).") from None
        raise LarbError(f"download failed with HTTP {exc.code}: {url}",
                        fix=f"check your network, or put the file in a mirror folder (${MIRROR_ENV}).") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise LarbError(f"cannot reach {url} ({exc}).",
                        fix=f"check your network, or put the file in a mirror folder (${MIRROR_ENV}).") from None
    with response:
        content_range = response.headers.get("Content-Range", "")
        start, total = _reply_span(response.status, content_range, response.headers.get("Content-Length", ""))
        if start not in (0, have):
            if have:
                return False
            raise LarbError(f"the server of {url} answered a download from the start with bytes from "
                            f"elsewhere (Content-Range {content_range!r}); nothing was kept.",
                            fix=f"try again later, or put the file in a mirror folder (${MIRROR_ENV}).")
        kept, overflow = start, False
        bar = _progress_bar(total, start, bar_label) if bar_label else None
        try:
            with open(part, "ab" if start else "wb") as handle:
                while chunk := _read(response, url, kept, timing):
                    if total is not None and kept + len(chunk) > total:
                        overflow = True
                        break
                    handle.write(chunk)
                    kept += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except OSError as exc:
            raise os_error(exc, part, doing=f"writing the download of {url} to the asset cache") from None
        finally:
            if bar is not None:
                bar.close()
    if overflow:
        _remove(part)
        raise LarbError(f"the server of {url} sent more than the {total:,} bytes it announced; nothing was kept.",
                        fix=f"run again; if it happens again, put the file in a mirror folder (${MIRROR_ENV}).")
    if total is not None and kept < total:
        raise LarbError(f"the download of {url} stopped early ({kept:,} of {total:,} bytes kept).",
                        fix="run the same command again; it resumes where it stopped.")
    return True


def _reply_span(status: int, content_range: str, content_length: str) -> tuple[int | None, int | None]:
    """(offset of the body's first byte, size of the whole file) as a reply states them: the
    offset is None for a 206 without a usable Content-Range, the size None when unknown.

    A Content-Length that is not a whole number is taken as absent, as http.client does."""
    if status != 206:
        return 0, int(content_length) if _DIGITS.fullmatch(content_length.strip()) else None
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    if match is None:
        return None, None
    first, last, size = match.groups()
    return int(first), int(size) if size != "*" else int(last) + 1


def _unsatisfiable_size(content_range: str) -> int | None:
    """The file size a 416 reply states (`bytes */SIZE`), or None."""
    match = _UNSATISFIABLE_RANGE.fullmatch(content_range.strip())
    return int(match.group(1)) if match else None


def _read(response: http.client.HTTPResponse, url: str, kept: int, timing: _Timing) -> bytes:
    """The next bytes the server sent (b"" at the end). read1 returns as soon as any arrive, so a
    trickle cannot outlast the deadline by more than one stall timeout."""
    resume = "run the same command again; it resumes where it stopped"
    if timing.passed():
        raise LarbError(f"the download of {url} did not finish within {timing.deadline:g} s; "
                        f"{kept:,} bytes are kept.", fix=f"{resume} (a slow server may need a longer "
                                                         f"${DEADLINE_ENV}).")
    try:
        return response.read1(_CHUNK)
    except TimeoutError:
        raise LarbError(f"the download of {url} stalled: no data for {timing.stall:g} s; {kept:,} bytes "
                        "are kept.", fix=f"{resume} (a slow server may need a longer ${STALL_TIMEOUT_ENV}).") from None
    except (OSError, http.client.HTTPException) as exc:  # reset, truncated body or chunk
        raise LarbError(f"the download of {url} was interrupted after {kept:,} bytes ({exc}).",
                        fix=f"{resume}.") from None


def _has_checksum(path: Path, checksum: str) -> bool:
    algorithm, _, expected = checksum.partition(":")
    try:
        return file_checksum(path, algorithm) == expected.lower()
    except OSError as exc:
        raise os_error(exc, path, doing="verifying a file of the asset cache") from None


def _size(path: Path) -> int | None:
    """The size of a cache file, None when there is none."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, path, doing="reading the asset cache") from None


def _remove(path: Path) -> None:
    _cache_call(path.unlink, missing_ok=True, doing="removing an unusable partial download")


def _cache_call(function: Callable[..., object], *args: object, doing: str, **kwargs: object) -> None:
    """Run a file operation on the cache, an OS fault becoming a `LarbError` that names the path."""
    try:
        function(*args, **kwargs)
    except OSError as exc:
        raise os_error(exc, doing=doing) from None


def _progress_bar(total: int | None, initial: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=description, leave=False, disable=None)
