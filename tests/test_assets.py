"""The asset cache against a loopback HTTP server: download, verification, caching, resume,
checksum errors, mirrors, and `larb assets list`."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import threading
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmark import assets
from benchmark.assets import Asset
from benchmark.errors import LarbError

PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes


@dataclass
class Served:
    """What the loopback server serves and what it was asked."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    honour_range: bool = True
    truncate: bool = False  # announce the full length, send half, hang up
    base: str = ""

    def add(self, name: str, data: bytes) -> str:
        self.files[f"/files/{name}"] = data
        return f"{self.base}/files/{name}"


class _Handler(http.server.BaseHTTPRequestHandler):
    served: Served

    def do_GET(self) -> None:
        served = self.server.served  # type: ignore[attr-defined]
        served.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = served.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and served.honour_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        data = body[start:]
        self.wfile.write(data[: len(data) // 2] if served.truncate else data)
        if served.truncate:
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.served = Served(base=f"http://127.0.0.1:{httpd.server_address[1]}")  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd.served  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LARB_CACHE_DIR", str(folder))
    monkeypatch.delenv("LARB_ASSETS_MIRROR", raising=False)
    return folder


@pytest.fixture
def make_asset():
    """Register a uniquely named test asset (the registry is global); removed afterwards."""
    names = []

    def make(url: str, data: bytes, algorithm: str = "sha256") -> Asset:
        digest = hashlib.new(algorithm, data).hexdigest()
        asset = Asset(f"test/{uuid.uuid4().hex}", url, f"{algorithm}:{digest}")
        names.append(asset.name)
        return assets.register(asset)

    yield make
    for name in names:
        assets.REGISTRY.remove(name)


@pytest.fixture
def served_asset(server, make_asset, cache):
    file_name = f"{uuid.uuid4().hex}.bin"
    asset = make_asset(server.add(file_name, PAYLOAD), PAYLOAD)
    assert asset.file_name == file_name
    return asset, cache / "assets" / file_name


def test_fetch_downloads_verifies_and_caches(server, served_asset):
    asset, cached = served_asset
    path = assets.fetch(asset.name, progress=False)
    assert path == cached and path.read_bytes() == PAYLOAD
    assert len(server.requests) == 1 and "range" not in server.requests[0]
    assert server.requests[0]["user-agent"].startswith("larb-asset-cache/")
    assert assets.fetch(asset.name, progress=False) == cached
    assert len(server.requests) == 1  # the second fetch came from the cache
    assert not cached.with_name(cached.name + ".part").exists()


def test_md5_checksums_are_accepted(server, make_asset, cache):
    asset = make_asset(server.add("md5-asset.bin", PAYLOAD), PAYLOAD, "md5")
    assert asset.checksum.startswith("md5:")
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD


def test_download_resumes_from_a_part_file(server, served_asset):
    asset, cached = served_asset
    cached.parent.mkdir(parents=True)
    half = len(PAYLOAD) // 2
    cached.with_name(cached.name + ".part").write_bytes(PAYLOAD[:half])
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert [r.get("range") for r in server.requests] == [f"bytes={half}-"]
    assert not cached.with_name(cached.name + ".part").exists()


def test_download_starts_over_when_the_server_ignores_range(server, served_asset):
    asset, cached = served_asset
    server.honour_range = False
    cached.parent.mkdir(parents=True)
    cached.with_name(cached.name + ".part").write_bytes(b"stale bytes")
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.requests[0]["range"] == "bytes=11-"


def test_an_interrupted_download_is_a_clear_error_and_resumes(server, served_asset):
    asset, cached = served_asset
    server.truncate = True
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert asset.url in str(info.value) and "run the same command again" in str(info.value)
    part = cached.with_name(cached.name + ".part")
    assert 0 < part.stat().st_size < len(PAYLOAD) and not cached.exists()
    server.truncate = False
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={len(PAYLOAD) // 2}-"


def test_a_reset_connection_is_a_clear_error_and_resumes(server, served_asset, monkeypatch):
    asset, cached = served_asset
    real_urlopen = urllib.request.urlopen

    def reset_after_1000_bytes(*args, **kwargs):
        response = real_urlopen(*args, **kwargs)
        first = response.read(1000)
        chunks = iter([first])

        def read(amount=-1):
            try:
                return next(chunks)
            except StopIteration:
                raise ConnectionResetError(104, "Connection reset by peer") from None

        response.read = response.read1 = read  # the download reads with read1
        return response

    monkeypatch.setattr(urllib.request, "urlopen", reset_after_1000_bytes)
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert asset.url in str(info.value) and "run the same command again" in str(info.value)
    part = cached.with_name(cached.name + ".part")
    assert part.read_bytes() == PAYLOAD[:1000] and not cached.exists()
    monkeypatch.setattr(urllib.request, "urlopen", real_urlopen)
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == "bytes=1000-"


def test_checksum_mismatch_of_a_download(server, make_asset, cache):
    url = server.add("changed.bin", b"the publisher changed this file")
    asset = make_asset(url, PAYLOAD)
    cached = cache / "assets" / "changed.bin"
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    message = str(info.value)
    bad = cached.with_name("changed.bin.bad")
    assert asset.name in message and url in message and "does not match its checksum" in message
    assert str(bad) in message and "Fix:" in message and "mirror" in message
    assert not cached.exists() and bad.read_bytes() == b"the publisher changed this file"
    with pytest.raises(LarbError):  # not trusted on the next run either
        assets.fetch(asset.name, progress=False)
    assert not cached.exists()


def test_a_corrupted_cached_file_is_an_error_not_a_silent_download(server, served_asset):
    asset, cached = served_asset
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"corrupt")
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    error = info.value
    assert error.path == str(cached) and str(cached) in str(error)
    assert "checksum mismatch" in str(error) and "delete this file" in error.fix
    assert server.requests == [] and cached.read_bytes() == b"corrupt"


def test_mirror_folder_is_used_in_place(server, served_asset, tmp_path, monkeypatch):
    asset, cached = served_asset
    empty, mirror = tmp_path / "empty-mirror", tmp_path / "mirror"
    empty.mkdir()
    mirror.mkdir()
    (mirror / asset.file_name).write_bytes(PAYLOAD)
    monkeypatch.setenv("LARB_ASSETS_MIRROR", os.pathsep.join([str(empty), str(mirror)]))
    assert assets.fetch(asset.name, progress=False) == mirror / asset.file_name
    assert server.requests == [] and not cached.exists()


def test_locate_finds_the_mirror_then_the_cache_without_downloading(server, served_asset, tmp_path,
                                                                    monkeypatch):
    asset, cached = served_asset
    assert assets.locate(asset.name) is None
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / asset.file_name).write_bytes(PAYLOAD)
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(mirror))
    assert assets.locate(asset.name) == mirror / asset.file_name
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(PAYLOAD)
    assert assets.locate(asset.name) == cached
    assert server.requests == []


def test_a_corrupted_mirror_file_is_an_error(server, served_asset, tmp_path, monkeypatch):
    asset, _ = served_asset
    (tmp_path / asset.file_name).write_bytes(PAYLOAD[:-1])
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(tmp_path))
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert info.value.path == str(tmp_path / asset.file_name) and "checksum mismatch" in str(info.value)
    assert server.requests == []


def test_http_error_is_a_clear_error(server, make_asset, cache):
    asset = make_asset(f"{server.base}/files/missing.bin", PAYLOAD)
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert "HTTP 404" in str(info.value) and "LARB_ASSETS_MIRROR" in str(info.value)


def test_unknown_asset():
    with pytest.raises(LarbError, match="unknown asset 'no/such-asset'.*larb assets list"):
        assets.fetch("no/such-asset")


def test_register_refuses_conflicts(make_asset):
    asset = make_asset("http://127.0.0.1:9/files/conflict-test.bin", b"x")
    with pytest.raises(ValueError, match="registered twice"):
        assets.register(Asset(asset.name, asset.url, "sha256:" + "0" * 64))
    with pytest.raises(ValueError, match="share the mirror file name"):
        assets.register(Asset("test/other-name", "http://127.0.0.1:9/elsewhere/conflict-test.bin",
                              asset.checksum))
    with pytest.raises(ValueError, match="checksum must be"):
        Asset("test/bad-checksum", "http://127.0.0.1:9/a.bin", "crc32:1234")


def test_published_file_name_ignores_the_query_string():
    url = "https://zenodo.org/records/1/files/a%20b.csv?download=1"
    assert assets.published_file_name(url) == "a%20b.csv"
    assert assets.get("clotho-v2.1/captions-evaluation").file_name == "clotho_captions_evaluation.csv"


def test_assets_list_prints_every_asset(run_cli):
    code, out, _ = run_cli("assets", "list")
    assert code == 0
    registered = assets.registered()
    assert len(registered) >= 10
    for asset in registered:
        for value in (asset.name, asset.url, asset.checksum, asset.file_name):
            assert value in out, value
    code, out, _ = run_cli("assets", "list", "--json")
    rows = json.loads(out)
    assert rows == assets.describe(registered)
    assert set(rows[0]) == {"name", "url", "checksum", "mirror file"}


def test_assets_list_shows_every_part_without_importing_torch_or_datasets():
    """The registry reads the `larb.assets` declarations, which import neither torch nor datasets."""
    import subprocess
    import sys

    code = ("import json, sys, io, contextlib\n"
            "from benchmark.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    main(['assets', 'list', '--json'])\n"
            "print(json.dumps({'names': [r['name'] for r in json.loads(out.getvalue())],\n"
            "                  'heavy': sorted(m for m in ('torch', 'datasets') if m in sys.modules)}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    report = json.loads(done.stdout)
    assert report["heavy"] == []
    for name in ("clotho-v2.1/captions-evaluation", "efficientat/mn04_as", "sentence-transformers/all-MiniLM-L6-v2",
                 "panns/cnn14", "passt/passt_s_swa_p16_128_ap476", "clotho-v2.1/clotho_audio_evaluation.7z",
                 "wavtext5k/table", "macs/MACS.yaml"):
        assert name in report["names"]
