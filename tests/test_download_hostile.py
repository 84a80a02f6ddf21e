"""The asset download against servers that misbehave: trickles, stalls, lies about lengths and
ranges, redirect loops; two processes fetching one asset; a cache that cannot be written.

Every failure must be a one-line `LarbError` naming the URL or path with a fix; the `.part` left
behind is a correct prefix of the file or gone, and the final file is never wrong."""

from __future__ import annotations

import fcntl
import hashlib
import http.server
import os
import re
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import pytest

from benchmark import assets, download
from benchmark.assets import Asset
from benchmark.errors import LarbError

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(range(256)) * 80  # 20,480 bytes

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class Server:
    """A loopback HTTP server whose replies are written by one route function per path. It
    records (path, Range header) of each request, answers 503 after `max_requests`, and stops
    itself after `lifetime` seconds."""

    def __init__(self, *, max_requests: int = 30, lifetime: float = 60.0) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10  # seconds to read a request

            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Range")))
                route = owner.routes.get(self.path)
                if len(owner.requests) > max_requests or route is None:
                    self.send_error(503 if route else 404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._timer = threading.Timer(lifetime, self._httpd.shutdown)
        self._timer.daemon = True

    def add(self, route: Route, name: str = "") -> str:
        path = f"/files/{name or uuid.uuid4().hex + '.bin'}"
        self.routes[path] = route
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def ranges(self, url: str) -> list[str | None]:
        """The Range header of each request for `url`."""
        return [asked for path, asked in self.requests if url.endswith(path)]

    def __enter__(self) -> Self:
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()


def reply(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes,
          headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def asked_offset(handler: http.server.BaseHTTPRequestHandler) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range", ""))
    return int(match.group(1)) if match else None


def honest(data: bytes) -> Route:
    """Full replies, 206 for a range, 416 (stating the size) for a range past the end."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        start = asked_offset(handler)
        if start is None:
            reply(handler, 200, data, {"Content-Length": str(len(data))})
        elif start >= len(data):
            reply(handler, 416, b"", {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
        else:
            reply(handler, 206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                                               "Content-Length": str(len(data) - start)})

    return route


def trickle(data: bytes, every: float, at_most: int = 40) -> Route:
    """Announce the whole file, then send one byte every `every` seconds (`at_most` of them)."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        reply(handler, 200, b"", {"Content-Length": str(len(data))})
        for byte in data[:at_most]:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(every)

    return route


def content_length(data: bytes, value: str) -> Route:
    """The whole file under a Content-Length of `value`, then the connection closes."""
    return lambda handler: reply(handler, 200, data, {"Content-Length": value})


def partial_from(data: bytes, offset: int, *, extra: bytes = b"") -> Route:
    """Always a 206 with the bytes from `offset` (whatever was asked) plus `extra`, and no
    Content-Length, so the body ends when the connection closes."""
    return lambda handler: reply(handler, 206, data[offset:] + extra,
                                 {"Content-Range": f"bytes {offset}-{len(data) - 1}/{len(data)}"})


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LARB_CACHE_DIR", str(folder))
    for name in ("LARB_ASSETS_MIRROR", download.STALL_TIMEOUT_ENV, download.DEADLINE_ENV):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def make_asset(cache: Path) -> Iterator[Callable[[str], tuple[Asset, Path]]]:
    """Register a uniquely named asset of PAYLOAD at `url` (the registry is global): the asset
    and where the cache keeps it. Afterwards each is removed, and its cache checked: whatever
    the test did, the `.part` is a correct prefix or gone and the final file right or absent."""
    made: list[tuple[Asset, Path]] = []

    def make(url: str) -> tuple[Asset, Path]:
        asset = assets.register(Asset(f"test/{uuid.uuid4().hex}", url, f"sha256:{hashlib.sha256(PAYLOAD).hexdigest()}"))
        made.append((asset, cache / "assets" / asset.file_name))
        return made[-1]

    yield make
    for asset, cached in made:
        assets.REGISTRY.remove(asset.name)
        assert_sane(cached)


def part_of(cached: Path) -> Path:
    return cached.with_name(cached.name + ".part")


def assert_clear(error: LarbError, *named: str) -> None:
    """One line, naming each of `named`, with a fix."""
    message = str(error)
    assert "\n" not in message and "Fix:" in message, message
    for name in named:
        assert name in message, (name, message)


def assert_sane(cached: Path) -> None:
    """The `.part` is a correct prefix or gone; the final file is right or absent."""
    part = part_of(cached)
    if part.is_file():
        held = part.read_bytes()
        assert held == PAYLOAD[: len(held)] and len(held) <= len(PAYLOAD)
    if cached.exists():
        assert cached.read_bytes() == PAYLOAD


def kept_bytes(error: LarbError) -> int:
    match = re.search(r"([\d,]+) bytes are kept", str(error))
    assert match, str(error)
    return int(match.group(1).replace(",", ""))


# -- slow servers ---------------------------------------------------------------------------


def test_a_trickle_stalls_out_quickly_and_running_again_resumes(server, make_asset, monkeypatch):
    monkeypatch.setenv(download.STALL_TIMEOUT_ENV, "0.3")
    url = server.add(trickle(PAYLOAD, every=0.5))
    asset, cached = make_asset(url)
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert_clear(info.value, url, "stalled: no data for 0.3 s", "resumes", download.STALL_TIMEOUT_ENV)
    kept = kept_bytes(info.value)
    assert 0 < kept < len(PAYLOAD) and part_of(cached).read_bytes() == PAYLOAD[:kept] and not cached.exists()
    server.routes[urlsplit(url).path] = honest(PAYLOAD)
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.ranges(url)[-1] == f"bytes={kept}-" and not part_of(cached).exists()


def test_a_download_past_its_deadline_ends_with_the_bytes_kept(server, cache):
    url = server.add(trickle(PAYLOAD, every=0.05))
    dest = cache / "assets" / "slow.bin"
    with pytest.raises(LarbError) as info:
        download.download(url, dest, progress=False, stall_timeout=1.0, deadline=0.4)
    assert_clear(info.value, url, "did not finish within 0.4 s", "resumes", download.DEADLINE_ENV)
    kept = kept_bytes(info.value)
    assert 0 < kept < 40 and part_of(dest).read_bytes() == PAYLOAD[:kept] and not dest.exists()


@pytest.mark.parametrize("variable", ["LARB_DOWNLOAD_STALL_TIMEOUT", "LARB_DOWNLOAD_DEADLINE"])
@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_timeout_in_the_environment_is_named(server, cache, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    url = server.add(honest(PAYLOAD))
    with pytest.raises(LarbError) as info:
        download.download(url, cache / "assets" / "x.bin", progress=False)
    assert_clear(info.value, f"${variable}", repr(value), "number")
    assert server.requests == []


def test_a_process_holding_the_lock_too_long_is_a_clear_error(server, cache):
    url = server.add(honest(PAYLOAD))
    dest = cache / "assets" / "locked.bin"
    dest.parent.mkdir(parents=True)
    lock = dest.with_name("locked.bin.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(LarbError) as info:
            download.download(url, dest, progress=False, deadline=0.3)
    assert info.value.path == str(lock)
    assert_clear(info.value, str(lock), "another process", "wait for it")
    assert server.requests == [] and not dest.exists()


# -- lies about lengths and ranges ---------------------------------------------------------


@pytest.mark.parametrize("value", ["lots", "-5", "12abc", ""])
def test_a_content_length_that_is_not_a_whole_number_is_taken_as_unknown(server, make_asset, value):
    asset, cached = make_asset(server.add(content_length(PAYLOAD, value)))
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert not part_of(cached).exists()


def test_a_content_length_shorter_than_the_file_fails_its_checksum_and_is_set_aside(server, make_asset):
    url = server.add(content_length(PAYLOAD, str(len(PAYLOAD) // 2)))
    asset, cached = make_asset(url)
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    bad = cached.with_name(cached.name + ".bad")
    assert_clear(info.value, url, "does not match its checksum", str(bad))
    assert bad.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]
    assert not cached.exists() and not part_of(cached).exists()


def test_a_content_length_longer_than_the_file_is_an_interruption_that_resumes(server, make_asset):
    url = server.add(content_length(PAYLOAD, str(len(PAYLOAD) + 100)))
    asset, cached = make_asset(url)
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert_clear(info.value, url, f"stopped early ({len(PAYLOAD):,} of {len(PAYLOAD) + 100:,} bytes kept)", "resumes")
    assert part_of(cached).read_bytes() == PAYLOAD and not cached.exists()
    server.routes[urlsplit(url).path] = honest(PAYLOAD)  # 416: the .part is whole
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.ranges(url) == [None, f"bytes={len(PAYLOAD)}-"] and not part_of(cached).exists()


def test_a_416_stating_another_size_than_the_part_starts_over(server, make_asset):
    url = server.add(honest(PAYLOAD))
    asset, cached = make_asset(url)
    cached.parent.mkdir(parents=True)
    part_of(cached).write_bytes(PAYLOAD + b"junk")  # longer than the file
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.ranges(url) == [f"bytes={len(PAYLOAD) + 4}-", None]


def test_a_200_to_a_range_request_starts_over(server, make_asset):
    url = server.add(content_length(PAYLOAD, str(len(PAYLOAD))))
    asset, cached = make_asset(url)
    cached.parent.mkdir(parents=True)
    part_of(cached).write_bytes(b"stale bytes that are not the file")
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.ranges(url) == ["bytes=33-"] and not part_of(cached).exists()


def test_a_206_from_another_offset_is_not_appended_but_starts_over(server, make_asset):
    wrong = partial_from(PAYLOAD, 5)
    full = honest(PAYLOAD)
    url = server.add(lambda handler: (wrong if handler.headers.get("Range") else full)(handler))
    asset, cached = make_asset(url)
    cached.parent.mkdir(parents=True)
    part_of(cached).write_bytes(PAYLOAD[:1000])
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.ranges(url) == ["bytes=1000-", None]


def test_a_server_that_only_answers_from_another_offset_is_refused(server, make_asset):
    url = server.add(partial_from(PAYLOAD, 5))
    asset, cached = make_asset(url)
    cached.parent.mkdir(parents=True)
    part_of(cached).write_bytes(PAYLOAD[:1000])
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert_clear(info.value, url, f"bytes 5-{len(PAYLOAD) - 1}/{len(PAYLOAD)}", "mirror")
    assert server.ranges(url) == ["bytes=1000-", None]
    assert not part_of(cached).exists() and not cached.exists()
    assert not cached.with_name(cached.name + ".bad").exists()


def test_more_bytes_than_announced_is_an_error_and_nothing_is_kept(server, make_asset):
    url = server.add(partial_from(PAYLOAD, 1000, extra=b"and then some"))
    asset, cached = make_asset(url)
    cached.parent.mkdir(parents=True)
    part_of(cached).write_bytes(PAYLOAD[:1000])
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert_clear(info.value, url, f"more than the {len(PAYLOAD):,} bytes it announced")
    assert not part_of(cached).exists() and not cached.exists()
    assert not cached.with_name(cached.name + ".bad").exists()


def test_a_redirect_loop_is_a_clear_error_naming_the_url(server, make_asset):
    url = server.add(lambda handler: reply(handler, 302, b"", {"Location": handler.path, "Content-Length": "0"}))
    asset, cached = make_asset(url)
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert_clear(info.value, url, "redirects in a loop", "mirror")
    assert 1 < len(server.ranges(url)) <= 11 and not cached.exists() and not part_of(cached).exists()


# -- two processes -------------------------------------------------------------------------

CHILD = """
import resource, sys, time
from benchmark import assets
from benchmark.errors import LarbError
name, url, checksum, size_limit = sys.argv[1:]
assets.register(assets.Asset(name, url, checksum))
assets.get(name)  # loads the built-in registry before saying ready
print("ready", flush=True)
if int(size_limit):
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(size_limit), resource.RLIM_INFINITY))
began = time.monotonic()
try:
    path = assets.fetch(name, progress=False)
except LarbError as exc:
    print(exc, flush=True)
    sys.exit(2)
print(path, time.monotonic() - began, sep="\\t", flush=True)
"""


def start_child(asset: Asset, size_limit: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, asset.name, asset.url, asset.checksum, str(size_limit)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_line(child: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert child.stdout is not None
    readable, _, _ = select.select([child.stdout], [], [], timeout)
    assert readable, "the child process said nothing"
    return child.stdout.readline().strip()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)
    return condition()


def test_two_processes_fetching_one_asset_both_succeed_with_one_download(server, make_asset):
    release = threading.Event()

    def held_halfway(handler: http.server.BaseHTTPRequestHandler) -> None:
        reply(handler, 200, PAYLOAD[: len(PAYLOAD) // 2], {"Content-Length": str(len(PAYLOAD))})
        handler.wfile.flush()
        release.wait(10)
        handler.wfile.write(PAYLOAD[len(PAYLOAD) // 2:])

    url = server.add(held_halfway)
    asset, cached = make_asset(url)
    children = []
    try:
        children.append(start_child(asset))
        assert read_line(children[0]) == "ready"
        assert wait_for(lambda: len(server.ranges(url)) == 1, 30), "the first process never asked"
        children.append(start_child(asset))
        assert read_line(children[1]) == "ready"
        # Give the second time to reach the lock; without one it would ask the server itself.
        wait_for(lambda: len(server.ranges(url)) > 1, 0.5)
        release.set()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        release.set()
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0 and "Traceback" not in err, (out, err)
        assert out.split("\t")[0] == str(cached)
    assert float(outputs[1][0].split("\t")[1]) >= 0.3, "the second process did not wait for the first"
    assert server.ranges(url) == [None]
    assert cached.read_bytes() == PAYLOAD and not part_of(cached).exists()


# -- a cache that cannot be written --------------------------------------------------------


def test_a_cache_folder_under_a_file_is_an_os_error_naming_it(server, make_asset, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LARB_CACHE_DIR", str(blocker))
    asset, _ = make_asset(server.add(honest(PAYLOAD)))
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert info.value.path == str(blocker / "assets")
    assert_clear(info.value, "ENOTDIR", "creating the asset cache folder")
    assert "network" not in str(info.value) and server.requests == []


def test_a_full_disk_is_an_os_error_naming_the_cache_file(server, make_asset):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to stand for a full disk")
    url = server.add(honest(PAYLOAD))
    asset, cached = make_asset(url)
    cached.parent.mkdir(parents=True)
    part_of(cached).symlink_to("/dev/full")  # every write to the .part fails with ENOSPC
    with pytest.raises(LarbError) as info:
        assets.fetch(asset.name, progress=False)
    assert info.value.path == str(part_of(cached))
    assert_clear(info.value, "disk is full", "ENOSPC", url)
    assert "network" not in str(info.value) and "publisher" not in str(info.value)
    assert sorted(p.name for p in cached.parent.iterdir()) == [f"{cached.name}.lock", f"{cached.name}.part"]


def test_a_file_size_limit_is_an_os_error_and_the_part_resumes(server, make_asset):
    url = server.add(honest(PAYLOAD))
    asset, cached = make_asset(url)
    child = start_child(asset, size_limit=10_000)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 2 and "Traceback" not in err, (out, err)
    assert out.startswith("ready\n") and out.count("\n") == 2, out  # "ready", then the one-line error
    assert "EFBIG" in out and "file-size limit" in out and str(part_of(cached)) in out and "network" not in out
    held = part_of(cached).read_bytes()
    assert 0 < len(held) <= 10_000 and held == PAYLOAD[: len(held)] and not cached.exists()
    assert assets.fetch(asset.name, progress=False).read_bytes() == PAYLOAD
    assert server.ranges(url)[-1] == f"bytes={len(held)}-"


def test_a_cache_folder_without_write_permission_is_an_os_error(server, make_asset):
    if os.geteuid() == 0:
        pytest.skip("root writes into a folder whatever its mode; the other cache-fault tests cover this")
    asset, cached = make_asset(server.add(honest(PAYLOAD)))
    cached.parent.mkdir(parents=True)
    cached.parent.chmod(0o500)
    try:
        with pytest.raises(LarbError) as info:
            assets.fetch(asset.name, progress=False)
    finally:
        cached.parent.chmod(0o700)
    assert_clear(info.value, str(cached.parent), "EACCES")
    assert "network" not in str(info.value) and server.requests == []
