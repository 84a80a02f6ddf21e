"""The asset cache: every file LARB fetches from outside goes through here.

An asset is registered by name, official URL and checksum. `fetch(name)` returns a local,
verified path, looking in this order:

1. the cache (`$LARB_CACHE_DIR`, default `~/.cache/larb`), verified;
2. the mirror folders (`$LARB_ASSETS_MIRROR`, several separated by `os.pathsep`), which hold
   assets under their published file names (`Asset.file_name`), verified, used in place;
3. the official URL: downloaded into the cache with a progress bar, resumed from a `.part`
   file after an interruption (HTTP Range), verified, then renamed into place.

A checksum mismatch is a `LarbError` that names the file and what to do; nothing is
re-downloaded behind the user's back. Model repositories (`kind="repo"`) are folders: the
mirror holds them under their repository name and the checksum covers one pinned file
inside them (`check_file`).

Downloads distrust the server and bound the wait:

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
- Processes take turns on one file through `<file>.lock` in the cache folder (flock, POSIX),
  held while downloading, verifying and renaming; a process that waited uses the file the
  other put in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import math
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from benchmark.errors import LarbError, os_error

CACHE_ENV = "LARB_CACHE_DIR"
MIRROR_ENV = "LARB_ASSETS_MIRROR"
STALL_TIMEOUT_ENV = "LARB_DOWNLOAD_STALL_TIMEOUT"
DEADLINE_ENV = "LARB_DOWNLOAD_DEADLINE"
DEFAULT_STALL_TIMEOUT = 60.0
DEFAULT_DEADLINE = 6 * 3600.0
USER_AGENT = "larb-asset-cache/0.1 (+https://github.com/larb-benchmark/larb)"
_CHUNK = 1 << 20
_LOCK_POLL = 0.1  # seconds between tries of a lock another process holds
_DIGITS = re.compile(r"[0-9]+")
_CONTENT_RANGE = re.compile(r"bytes\s+([0-9]+)-([0-9]+)/([0-9]+|\*)")
_UNSATISFIABLE_RANGE = re.compile(r"bytes\s+\*/([0-9]+)")


@dataclass(frozen=True)
class Asset:
    """A file (or model repository folder) fetched from outside, pinned by checksum.

    `checksum` is `"<algorithm>:<hex>"` with algorithm md5 or sha256 (the one the publisher
    gives). `file_name` defaults to the last segment of the URL path.
    """

    name: str
    url: str
    checksum: str
    file_name: str = ""
    kind: Literal["file", "repo"] = "file"
    check_file: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        algorithm, _, digest = self.checksum.partition(":")
        if algorithm not in ("md5", "sha256") or not digest:
            raise ValueError(f"asset {self.name}: checksum must be 'md5:<hex>' or 'sha256:<hex>'")
        if not self.file_name:
            object.__setattr__(self, "file_name", published_file_name(self.url))
        if self.kind == "repo" and not self.check_file:
            raise ValueError(f"asset {self.name}: a repo asset names the file its checksum covers")


def published_file_name(url: str) -> str:
    """The last segment of the URL path, the name a mirror holds the file under."""
    return Path(urlparse(url).path).name


ENTRY_POINT_GROUP = "larb.assets"


class AssetRegistry:
    """Assets by name: those declared through the `larb.assets` entry points ("module:attr" naming
    a sequence of `Asset`s: LARB's own parts and outside packages alike), read once and lazily so
    that listing them imports no torch, plus any registered at run time (`register`)."""

    def __init__(self) -> None:
        self._assets: dict[str, Asset] | None = None

    def _loaded(self) -> dict[str, Asset]:
        if self._assets is None:
            self._assets = {}
            for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                try:
                    declared = point.load()
                except ImportError:  # a part whose own imports are missing is not installed
                    continue
                for asset in declared:
                    self.add(asset)
        return self._assets

    def add(self, asset: Asset) -> Asset:
        """Add an asset; a second asset with the same name or mirror file name is a bug."""
        known = self._loaded()
        if asset.name in known and known[asset.name] != asset:
            raise ValueError(f"asset {asset.name!r} registered twice with different contents")
        for other in known.values():
            if other.name != asset.name and other.file_name == asset.file_name:
                raise ValueError(
                    f"assets {other.name!r} and {asset.name!r} share the mirror file name "
                    f"{asset.file_name!r}; declare a distinct file_name")
        known[asset.name] = asset
        return asset

    def remove(self, name: str) -> None:
        """Forget an asset registered at run time (a test's own)."""
        self._loaded().pop(name, None)

    def get(self, name: str) -> Asset:
        try:
            return self._loaded()[name]
        except KeyError:
            raise LarbError(f"unknown asset {name!r}.",
                            fix="run 'larb assets list' to see the registered ones.") from None

    def all(self) -> list[Asset]:
        return sorted(self._loaded().values(), key=lambda a: a.name)


REGISTRY = AssetRegistry()


def register(asset: Asset) -> Asset:
    """Add an asset at run time (declare a package's assets through the entry point instead)."""
    return REGISTRY.add(asset)


def get(name: str) -> Asset:
    """The registered asset called `name`."""
    return REGISTRY.get(name)


def registered() -> list[Asset]:
    """All registered assets, sorted by name."""
    return REGISTRY.all()


def cache_dir() -> Path:
    """Where downloaded assets live."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "larb"


def mirror_dirs() -> list[Path]:
    """The offline mirror folders, in the order they are searched."""
    raw = os.environ.get(MIRROR_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def file_checksum(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(asset: Asset, path: Path) -> None:
    """Raise a clear error when `path` does not hold the pinned bytes of `asset`."""
    algorithm, _, expected = asset.checksum.partition(":")
    target = path / asset.check_file if asset.kind == "repo" else path
    if asset.kind == "file" and not path.is_file():
        raise LarbError(f"asset {asset.name!r} should be a file, but this is "
                        f"{'a folder' if path.is_dir() else 'not a regular file'}.", path=path,
                        fix="move it away and run again to fetch the file.")
    if not target.is_file():
        raise LarbError(f"asset {asset.name!r} is incomplete: {asset.check_file!r} is missing.",
                        path=path, fix="delete the folder and fetch it again.")
    actual = file_checksum(target, algorithm)
    if actual != expected.lower():
        raise LarbError(
            f"checksum mismatch for asset {asset.name!r}: expected {algorithm} {expected}, got {actual}.",
            path=target,
            fix=f"delete this file (it is corrupt or a different version) and run again, or put the "
                f"official file from {asset.url} there.")


def _cache_path(asset: Asset) -> Path:
    return cache_dir() / "assets" / asset.file_name


def _mirror_path(asset: Asset) -> Path | None:
    for folder in mirror_dirs():
        candidate = folder / asset.file_name
        if candidate.exists():
            return candidate
    return None


def locate(name: str) -> Path | None:
    """Where the asset is held locally (cache, then mirror), unverified; None if it is not."""
    asset = get(name)
    cached = _cache_path(asset)
    return cached if cached.exists() else _mirror_path(asset)


def fetch(name: str, *, progress: bool = True) -> Path:
    """A local, verified copy of the asset: cache, then mirror, then the official URL."""
    asset = get(name)
    cached = _cache_path(asset)
    if cached.exists():
        verify(asset, cached)
        return cached
    mirrored = _mirror_path(asset)
    if mirrored is not None:
        verify(asset, mirrored)
        return mirrored
    if asset.kind == "repo":
        return _download_repo(asset, cached)
    return download(asset.url, cached, progress=progress, description=asset.name, checksum=asset.checksum)


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


def _download_repo(asset: Asset, dest: Path) -> Path:
    """Fetch a model repository from the Hugging Face Hub into the cache, then verify it."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise LarbError(f"asset {asset.name!r} is a model repository and needs huggingface-hub.",
                        fix="pip install 'larb[baselines]', or put the folder in a mirror "
                            f"(${MIRROR_ENV}/{asset.file_name}).") from None
    repo_id = urlparse(asset.url).path.strip("/")
    tmp = dest.with_name(dest.name + ".part")
    try:
        snapshot_download(repo_id=repo_id, local_dir=tmp)
    except Exception as exc:  # noqa: BLE001 - the hub client raises many types; all mean "not reachable"
        raise LarbError(f"cannot download model repository {repo_id} ({type(exc).__name__}).",
                        fix=f"check your network, or put the folder in a mirror (${MIRROR_ENV}/"
                            f"{asset.file_name}).") from None
    verify(asset, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def describe(assets: Iterable[Asset]) -> list[dict[str, str]]:
    """Rows for `larb assets list`."""
    return [{"name": a.name, "url": a.url, "checksum": a.checksum, "mirror file": a.file_name}
            for a in assets]
