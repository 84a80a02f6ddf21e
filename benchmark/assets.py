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
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from benchmark.errors import LarbError

CACHE_ENV = "LARB_CACHE_DIR"
MIRROR_ENV = "LARB_ASSETS_MIRROR"
USER_AGENT = "larb-asset-cache/0.1 (+https://github.com/larb-benchmark/larb)"
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


_REGISTRY: dict[str, Asset] = {}


def register(asset: Asset) -> Asset:
    """Add an asset; a second asset with the same name or mirror file name is a bug."""
    if asset.name in _REGISTRY and _REGISTRY[asset.name] != asset:
        raise ValueError(f"asset {asset.name!r} registered twice with different contents")
    for other in _REGISTRY.values():
        if other.name != asset.name and other.file_name == asset.file_name:
            raise ValueError(
                f"assets {other.name!r} and {asset.name!r} share the mirror file name "
                f"{asset.file_name!r}; declare a distinct file_name")
    _REGISTRY[asset.name] = asset
    return asset


def get(name: str) -> Asset:
    """The registered asset called `name`."""
    _load_builtin_assets()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LarbError(f"unknown asset {name!r}.", fix="run 'larb assets list' to see the registered ones.")


def registered() -> list[Asset]:
    """All registered assets, sorted by name."""
    _load_builtin_assets()
    return sorted(_REGISTRY.values(), key=lambda a: a.name)


def _load_builtin_assets() -> None:
    # The task registry declares the ground-truth assets; importing it registers them.
    import benchmark.tasks  # noqa: F401


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
    download(asset.url, cached, progress=progress, description=asset.name)
    try:
        verify(asset, cached)
    except LarbError:
        # A fresh download that fails verification is not kept: the next run must not trust it.
        bad = cached.with_name(cached.name + ".bad")
        os.replace(cached, bad)
        raise LarbError(
            f"the download of asset {asset.name!r} from {asset.url} does not match its checksum "
            f"{asset.checksum}; it was kept as {bad} for inspection.",
            fix="the publisher may have changed the file; report it, or place a verified copy in "
                f"a mirror folder (${MIRROR_ENV}).") from None
    return cached


def download(url: str, dest: Path, *, progress: bool = True, description: str = "",
             timeout: float = 60.0) -> Path:
    """Download `url` to `dest` atomically, resuming a previous partial download.

    The bytes go to `dest.part`; an interrupted run leaves it, and the next run asks the
    server for the rest with an HTTP Range header (starting over when the server ignores it).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already whole
            os.replace(part, dest)
            return dest
        raise LarbError(f"download failed with HTTP {exc.code}: {url}",
                        fix=f"check your network, or put the file in a mirror folder (${MIRROR_ENV}).") from None
    except (urllib.error.URLError, OSError) as exc:
        raise LarbError(f"cannot reach {url} ({exc}).",
                        fix=f"check your network, or put the file in a mirror folder (${MIRROR_ENV}).") from None
    with response:
        resumed = have and response.status == 206
        mode = "ab" if resumed else "wb"
        start = have if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        bar = _progress_bar(total, start, description or dest.name) if progress else None
        try:
            with open(part, mode) as handle:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, truncated chunk
            size = part.stat().st_size if part.exists() else 0
            raise LarbError(f"the download of {url} was interrupted after {size:,} bytes ({exc}).",
                            fix="run the same command again; it resumes where it stopped.") from None
        finally:
            if bar is not None:
                bar.close()
    if total is not None and part.stat().st_size != total:
        raise LarbError(f"the download of {url} stopped early ({part.stat().st_size} of {total} bytes).",
                        fix="run the same command again; it resumes where it stopped.")
    os.replace(part, dest)
    return dest


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
