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

Downloads go through `benchmark.download` (resumable, time-bounded, locked against a second
process, verified before the rename).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from benchmark import plugins
from benchmark.download import MIRROR_ENV, download, file_checksum
from benchmark.errors import LarbError

CACHE_ENV = "LARB_CACHE_DIR"
_CHUNK = 1 << 20


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
            for point in plugins.declared(ENTRY_POINT_GROUP):
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
