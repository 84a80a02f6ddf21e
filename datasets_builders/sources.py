"""Official source files of the datasets: declared once, fetched and verified one way.

A `Remote` names a file as its publisher publishes it (URL, checksum, file name). `obtain`
finds a local copy, in this order:

1. the user's `--data-dir` (files as they downloaded them, official names, searched a few
   folders deep): used as given; a checksum mismatch is reported as a warning, because the
   user chose the file;
2. the LARB asset cache, then the mirror folders (`$LARB_ASSETS_MIRROR`): verified;
3. the official URL (through `$LARB_URL_REWRITE`), resumed after an interruption: verified,
   and a download that does not match is set aside, never used.

Pinned remotes are declared in `datasets_builders.remotes`, which the harness's asset registry
reads (so `larb assets list` and the mirror conventions cover them without importing
`datasets`); files the harness already declares, such as the Clotho captions CSVs, are reused
under the harness's asset name.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmark import assets, task_assets
from benchmark.assets import Asset, published_file_name
from benchmark.download import download
from benchmark.errors import LarbError
from datasets_builders import urls

log = logging.getLogger("larb.data")

# file name -> "algo:hex": replaces a remote's published checksum (tests, republished files).
CHECKSUM_OVERRIDES: dict[str, str] = {}

_SEARCH_DEPTH = 3


@dataclass(frozen=True)
class Remote:
    """One official file: its URL, the checksum its publisher gives (None: not pinned)."""

    url: str
    checksum: str | None
    file_name: str = ""
    asset_name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.file_name:
            object.__setattr__(self, "file_name", published_file_name(self.url))

    @property
    def expected(self) -> str | None:
        return CHECKSUM_OVERRIDES.get(self.file_name, self.checksum)

    def asset(self) -> Asset | None:
        """The harness asset of a pinned remote (None when nothing pins it)."""
        if not self.checksum:
            return None
        return Asset(self.asset_name, self.url, self.checksum, file_name=self.file_name, description=self.description)


def declare(asset_name: str, url: str, checksum: str | None, *, file_name: str = "",
            description: str = "") -> Remote:
    """A remote file, known as the harness asset `asset_name` when it is pinned."""
    return Remote(url, checksum, file_name, asset_name, description)


def reuse(asset_name: str) -> Remote:
    """A file the harness already declares (e.g. a ground-truth CSV), under its asset name."""
    asset = task_assets.declared(asset_name)
    return Remote(asset.url, asset.checksum, asset.file_name, asset.name)


def pinned_assets(remotes: Iterable[Remote | None]) -> tuple[Asset, ...]:
    """The harness assets of the pinned remotes, in order, each once; reused ones are left to the harness."""
    own = {r.asset_name: r.asset() for r in remotes if r is not None and r.checksum}
    harness = {a.name for a in task_assets.ASSETS}
    return tuple(asset for name, asset in own.items() if asset is not None and name not in harness)


def checksum_of(path: Path, algorithm: str) -> str:
    return assets.file_checksum(path, algorithm)


def matches(remote: Remote, path: Path) -> bool:
    """Whether `path` holds the bytes `remote` pins (True when it pins nothing)."""
    expected = remote.expected
    if not expected:
        return True
    algorithm, _, digest = expected.partition(":")
    return checksum_of(path, algorithm) == digest.lower()


def find_in_dir(folder: Path, name: str, depth: int = _SEARCH_DEPTH) -> Path | None:
    """`folder/name`, or the first `name` found up to `depth` folders below (sorted, so stable)."""
    level = [folder]
    for _ in range(depth + 1):
        for base in level:
            candidate = base / name
            if candidate.is_file():
                return candidate
        level = sorted(p for base in level for p in _subdirs(base))
    return None


def _subdirs(folder: Path) -> Iterable[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


def local_copy(remote: Remote, data_dir: Path | None) -> Path | None:
    """A copy already on this machine (data dir, cache or mirror), verified; None if absent."""
    if data_dir is not None:
        found = find_in_dir(data_dir, remote.file_name)
        if found is not None:
            if not matches(remote, found):
                log.warning("%s does not match the official checksum %s; using it as given.",
                            found, remote.expected)
            return found
    cached = assets.cache_dir() / "assets" / remote.file_name
    candidates = [cached] + [folder / remote.file_name for folder in assets.mirror_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            _verify(remote, candidate)
            return candidate
    return None


def obtain(remote: Remote, data_dir: Path | None = None, *, progress: bool = True) -> Path:
    """A local copy of `remote`: data dir, cache, mirror, else downloaded (resumably) and verified."""
    found = local_copy(remote, data_dir)
    if found is not None:
        return found
    dest = assets.cache_dir() / "assets" / remote.file_name
    url = urls.resolve(remote.url)
    log.info("downloading %s", url)
    download(url, dest, progress=progress, description=remote.file_name)
    if not remote.expected:
        log.warning("%s is not pinned by its publisher; its sha256 is %s.", remote.file_name,
                    checksum_of(dest, "sha256"))
        return dest
    if not matches(remote, dest):
        bad = dest.with_name(dest.name + ".bad")
        os.replace(dest, bad)
        raise LarbError(
            f"the download of {remote.file_name} from {url} does not match its official checksum "
            f"{remote.expected}; it was set aside as {bad}.",
            path=bad, fix="run again to download it afresh; if it fails again the publisher changed "
                          f"the file: put a verified copy in a mirror folder (${assets.MIRROR_ENV}).")
    return dest


def _verify(remote: Remote, path: Path) -> None:
    if not matches(remote, path):
        raise LarbError(
            f"checksum mismatch for {remote.file_name}: expected {remote.expected}.", path=path,
            fix=f"delete this file (it is corrupt or another version) and run again, or put the "
                f"official file from {remote.url} there.")


def fingerprint(path: Path) -> str:
    """A cheap identity of a local file (name, size, mtime) for completion markers."""
    stat = path.stat()
    return hashlib.sha256(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def index_files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    """Every file below `folder` with one of `suffixes`, by file name (several when names repeat)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in suffixes and path.is_file() and ".partial" not in path.parent.name:
            found.setdefault(path.name, []).append(path)
    return found
