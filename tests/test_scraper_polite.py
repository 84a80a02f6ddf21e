"""The polite client against loopback "hosts" (one server per port): the crawl delay holds for
every request to a host, robots.txt included, and a redirect is followed only after the target
host's robots.txt was read and obeyed, in that host's turn. Times are taken on the server side."""

from __future__ import annotations

import http.server
import itertools
import threading
import time
from typing import Self

import pytest
import requests

from datasets_builders.scrapers.polite import Disallowed, PoliteClient

DELAY = 0.2
TOLERANCE = 0.03  # the gaps are measured where the requests arrive, after some scheduling jitter
ALLOW_ALL = b"User-agent: *\nAllow: /\n"

Reply = tuple[int, dict[str, str], bytes]


def page(body: bytes) -> Reply:
    return 200, {"Content-Type": "text/plain"}, body


def redirect(location: str) -> Reply:
    return 302, {"Location": location}, b""


class Host:
    """A loopback HTTP server standing for one web host, answering from `routes` (path -> reply)
    and logging when each request arrived. It answers 503 after `max_requests` requests and stops
    itself after `lifetime` seconds, so a client gone wrong cannot keep it busy."""

    def __init__(self, routes: dict[str, Reply] | None = None, *, max_requests: int = 40,
                 lifetime: float = 30.0) -> None:
        self.routes = dict(routes or {})
        self.log: list[tuple[float, str]] = []  # (time.monotonic() on arrival, path)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.log.append((time.monotonic(), self.path))
                status, headers, body = (owner.routes.get(self.path, (404, {}, b"not found"))
                                         if len(owner.log) <= max_requests else (503, {}, b"enough"))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._timer = threading.Timer(lifetime, self._server.shutdown)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return [path for _, path in self.log]

    def gaps(self) -> list[float]:
        """Seconds between the arrivals of consecutive requests."""
        times = [at for at, _ in self.log]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(autouse=True)
def _no_rewrites(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LARB_URL_REWRITE", raising=False)


def client(delay: float = DELAY, **options: int) -> PoliteClient:
    return PoliteClient(delay=delay, retries=0, timeout=5.0, **options)


def test_robots_txt_and_every_page_are_spaced_by_the_delay():
    with Host({"/robots.txt": page(ALLOW_ALL), "/a": page(b"a"), "/b": page(b"b")}) as host:
        polite = client()
        assert polite.get(f"{host.url}/a").content == b"a"
        assert polite.get(f"{host.url}/b").content == b"b"
    assert host.paths == ["/robots.txt", "/a", "/b"]
    assert all(gap >= DELAY - TOLERANCE for gap in host.gaps()), host.gaps()


def test_a_crawl_delay_also_spaces_the_first_page_from_robots_txt():
    # robotparser reads whole seconds only, so this one waits a second
    with Host({"/robots.txt": page(b"User-agent: *\nCrawl-delay: 1\n"), "/a": page(b"a")}) as host:
        client(delay=0.01).get(f"{host.url}/a")
    assert host.paths == ["/robots.txt", "/a"]
    assert host.gaps()[0] >= 1.0 - TOLERANCE


def test_a_redirect_to_another_host_reads_its_robots_txt_and_waits_its_turn():
    with (Host({"/robots.txt": page(ALLOW_ALL), "/landing": page(b"landed")}) as other,
          Host({"/robots.txt": page(ALLOW_ALL), "/go": redirect(f"{other.url}/landing")}) as first):
        result = client().get(f"{first.url}/go")
    assert result.url == f"{other.url}/landing" and result.content == b"landed"
    assert first.paths == ["/robots.txt", "/go"] and other.paths == ["/robots.txt", "/landing"]
    assert first.gaps()[0] >= DELAY - TOLERANCE and other.gaps()[0] >= DELAY - TOLERANCE
    assert other.log[0][0] > first.log[-1][0]  # the target's robots.txt is read after the redirect


def test_a_redirect_the_target_hosts_robots_txt_disallows_is_refused():
    with (Host({"/robots.txt": page(b"User-agent: *\nDisallow: /private\n")}) as other,
          Host({"/robots.txt": page(ALLOW_ALL), "/go": redirect(f"{other.url}/private/x")}) as first,
          pytest.raises(Disallowed) as info):
        client(delay=0.01).get(f"{first.url}/go")
    assert f"{other.url}/private/x" in str(info.value) and f"redirected from {first.url}/go" in str(info.value)
    assert first.paths == ["/robots.txt", "/go"] and other.paths == ["/robots.txt"]


def test_a_redirect_within_the_host_is_checked_against_robots_txt():
    routes = {"/robots.txt": page(b"User-agent: *\nDisallow: /secret\n"), "/go": redirect("/secret")}
    with Host(routes) as host, pytest.raises(Disallowed, match="/secret"):
        client(delay=0.01).get(f"{host.url}/go")
    assert host.paths == ["/robots.txt", "/go"]


def test_a_redirect_loop_is_refused_clearly():
    routes = {"/robots.txt": page(ALLOW_ALL), "/a": redirect("/b"), "/b": redirect("/a")}
    with Host(routes) as host, pytest.raises(requests.TooManyRedirects) as info:
        client(delay=0.01).get(f"{host.url}/a")
    assert str(info.value) == f"redirect loop: {host.url}/a -> {host.url}/b -> {host.url}/a"
    assert host.paths == ["/robots.txt", "/a", "/b"]


def test_redirect_hops_are_bounded():
    routes = {"/robots.txt": page(ALLOW_ALL), **{f"/r{i}": redirect(f"/r{i + 1}") for i in range(20)}}
    with (Host(routes) as host,
          pytest.raises(requests.TooManyRedirects, match=f"more than 3 redirects from {host.url}/r0")):
        client(delay=0.01, max_redirects=3).get(f"{host.url}/r0")
    assert host.paths == ["/robots.txt", "/r0", "/r1", "/r2", "/r3"]
