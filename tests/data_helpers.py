"""Fixtures for the dataset-builder tests: tiny audio, archives in the real layouts, and a
loopback HTTP server that the real download code is pointed at (never a stub)."""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
FORMATS = REFERENCE / "formats"


def reference_file(*parts: str) -> Path:
    """A real third-party file from ../shared/reference/formats, or skip the test."""
    import pytest

    path = FORMATS.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"reference file {path} is absent (a fresh clone has no ../shared/reference)")
    return path


def md5(data: bytes | Path) -> str:
    raw = data.read_bytes() if isinstance(data, Path) else data
    return "md5:" + hashlib.md5(raw).hexdigest()


def wav_bytes(seconds: float = 0.05, rate: int = 44_100, channels: int = 1, subtype: str = "PCM_16",
              seed: int = 0, fmt: str = "WAV") -> bytes:
    """A short noise clip, encoded in memory."""
    frames = max(1, int(seconds * rate))
    samples = np.random.default_rng(seed).uniform(-0.5, 0.5, (frames, channels)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def write_wav(path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(**kwargs))
    return path


def make_7z(path: Path, members: dict[str, bytes]) -> Path:
    """A 7z archive holding `members` (arcname -> bytes), as py7zr writes it (LZMA2)."""
    import py7zr

    staging = path.with_name(path.name + ".staging")
    with py7zr.SevenZipFile(path, "w") as archive:
        for name, data in members.items():
            source = staging / name
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(data)
            archive.write(source, name)
    import shutil

    shutil.rmtree(staging)
    return path


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_split_zip(last: Path, members: dict[str, bytes], part_size: int, *, zip64: bool = False,
                    deflate: bool = True) -> list[Path]:
    """A multi-part ZIP in Info-ZIP's split layout: X.z01 ... X.zip, offsets relative to each part,
    local headers never split, file data spanning parts, the central directory in the last part
    (optionally with ZIP64 records, as WavCaps' 5 GB parts need)."""
    parts = [bytearray(b"PK\x07\x08")]  # the split-archive signature opens the first part
    entries = []

    def span(data: bytes) -> None:
        while data:
            room = part_size - len(parts[-1])
            if room <= 0:
                parts.append(bytearray())
                continue
            parts[-1].extend(data[:room])
            data = data[room:]

    for name, raw in members.items():
        if deflate:
            engine = zlib.compressobj(6, zlib.DEFLATED, -15)
            body, method = engine.compress(raw) + engine.flush(), 8
        else:
            body, method = raw, 0
        crc, encoded = zlib.crc32(raw), name.encode("utf-8")
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, method, 0, 0x21, crc, len(body), len(raw),
                             len(encoded), 0) + encoded
        if len(parts[-1]) + len(header) > part_size:
            parts.append(bytearray())
        entries.append((encoded, method, crc, len(body), len(raw), len(parts) - 1, len(parts[-1])))
        parts[-1].extend(header)
        span(body)
    parts.append(bytearray())
    last_disk = len(parts) - 1
    directory = bytearray()
    for encoded, method, crc, csize, usize, disk, offset in entries:
        extra = b""
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, csize, offset)
            csize = usize = offset = 0xFFFFFFFF
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0x800, method, 0, 0x21, crc, csize,
                                 usize, len(encoded), len(extra), 0, disk, 0, 0, offset) + encoded + extra
    cd_offset = len(parts[-1])
    parts[-1].extend(directory)
    n = len(entries)
    if zip64:
        record_offset = len(parts[-1])
        parts[-1].extend(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, last_disk, last_disk, n, n,
                                     len(directory), cd_offset))
        parts[-1].extend(struct.pack("<IIQI", 0x07064B50, last_disk, record_offset, last_disk + 1))
        parts[-1].extend(struct.pack("<IHHHHIIH", 0x06054B50, last_disk, last_disk, 0xFFFF, 0xFFFF,
                                     0xFFFFFFFF, 0xFFFFFFFF, 0))
    else:
        parts[-1].extend(struct.pack("<IHHHHIIH", 0x06054B50, last_disk, last_disk, n, n, len(directory),
                                     cd_offset, 0))
    paths = [last.with_suffix(f".z{i:02d}") for i in range(1, last_disk + 1)] + [last]
    for path, data in zip(paths, parts, strict=True):
        path.write_bytes(bytes(data))
    return paths


Route = bytes | Callable[[BaseHTTPRequestHandler], None]


class Loopback:
    """An HTTP server on 127.0.0.1 in a thread, serving `routes` (path -> bytes or handler).

    Supports HEAD and `Range: bytes=N-` (206). `cut_once[path] = n` makes the first GET of
    that path announce the full length but send only n bytes, as a dropped connection does.
    `log` records (method, path with query, Range header). The server stops itself after
    `lifetime` seconds even if a test forgets it."""

    def __init__(self, routes: dict[str, Route] | None = None, *, cut_once: dict[str, int] | None = None,
                 lifetime: float = 120.0) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.cut_once = dict(cut_once or {})
        self.log: list[tuple[str, str, str | None]] = []
        self.agents: list[str] = []  # the User-Agent of each request
        self.lifetime = lifetime
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                owner._serve(self, head=True)

            def do_GET(self) -> None:
                owner._serve(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self._server.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def requests(self, path_part: str) -> list[tuple[str, str, str | None]]:
        return [entry for entry in self.log if path_part in entry[1]]

    def _serve(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        self.log.append(("HEAD" if head else "GET", handler.path, handler.headers.get("Range")))
        self.agents.append(handler.headers.get("User-Agent", ""))
        route = self.routes.get(handler.path, self.routes.get(urlsplit(handler.path).path))
        if route is None:
            handler.send_error(404, "Not Found")
            return
        if callable(route):
            route(handler)
            return
        data, start, status = route, 0, 200
        requested = handler.headers.get("Range")
        if requested and requested.startswith("bytes="):
            start = int(requested[6:].split("-")[0] or 0)
            if start >= len(data):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.end_headers()
                return
            status = 206
        body = data[start:]
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Type", _content_type(handler.path))
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if head:
            return
        key = urlsplit(handler.path).path
        if key in self.cut_once and not head:
            body = body[:self.cut_once.pop(key)]
            handler.wfile.write(body)
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)


def _content_type(path: str) -> str:
    lowered = urlsplit(path).path.lower()
    for suffix, kind in ((".wav", "audio/wav"), (".flac", "audio/flac"), (".html", "text/html; charset=utf-8"),
                         (".csv", "text/csv"), (".json", "application/json"), (".txt", "text/plain")):
        if lowered.endswith(suffix):
            return kind
    return "application/octet-stream"


def isolate(monkeypatch, tmp_path: Path) -> Path:
    """A private LARB cache, no mirror, no URL rewriting; returns the cache folder."""
    cache = tmp_path / "larb-cache"
    monkeypatch.setenv("LARB_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.delenv("LARB_ASSETS_MIRROR", raising=False)
    monkeypatch.delenv("LARB_URL_REWRITE", raising=False)
    return cache


CLOTHO_METADATA_HEADER = ["file_name", "keywords", "sound_id", "sound_link", "start_end_samples", "manufacturer",
                          "license"]


def clotho_captions_csv(names: list[str], captions_per_file: int = 5) -> bytes:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["file_name"] + [f"caption_{k}" for k in range(1, captions_per_file + 1)])
    for i, name in enumerate(names):
        writer.writerow([name] + [f"Sound {i}, heard in take {k}." for k in range(1, captions_per_file + 1)])
    return buffer.getvalue().encode("utf-8")


def clotho_metadata_csv(names: list[str], delimiter: str = ",", keywords: bool = True) -> bytes:
    """Metadata in the official layout and encoding (ISO-8859-1, accented uploader names)."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    header = CLOTHO_METADATA_HEADER if keywords else [h for h in CLOTHO_METADATA_HEADER if h != "keywords"]
    writer.writerow(header)
    for i, name in enumerate(names):
        row = {"file_name": name, "keywords": "field-recording;bird;café", "sound_id": str(1000 + i),
               "sound_link": f"https://freesound.org/people/Jos\u00e9/sounds/{1000 + i}",
               "start_end_samples": "[11162624, 11932169]" if i % 2 else "", "manufacturer": "Jos\u00e9",
               "license": "http://creativecommons.org/licenses/by/3.0/"}
        writer.writerow([row[h] for h in header])
    return buffer.getvalue().encode("iso-8859-1")
