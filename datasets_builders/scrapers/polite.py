"""An HTTP client that behaves: robots.txt, a delay per host, retries with backoff, a User-Agent."""

from __future__ import annotations

import logging
import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from datasets_builders import urls

log = logging.getLogger("larb.data")

USER_AGENT = "larb-scraper/0.1 (research dataset builder; +https://github.com/larb-benchmark/larb)"
_RETRY_STATUS = (429, 500, 502, 503, 504)


class NotFound(Exception):
    """HTTP 404 or 410: the page or file is gone."""


class Disallowed(Exception):
    """robots.txt forbids this URL to our User-Agent."""


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    content: bytes
    content_type: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class PoliteClient:
    """GET with robots.txt checks, at most one request per `delay` seconds per host (or the
    site's Crawl-delay if longer), and exponential backoff on 429/5xx and network errors.

    Every request to a host waits its turn, robots.txt included. Redirects are followed here,
    not by requests, so that each hop is checked against its own host's robots.txt and delay;
    more than `max_redirects` hops, or a loop, is a `requests.TooManyRedirects`."""

    def __init__(self, *, delay: float = 2.0, retries: int = 4, backoff: float = 2.0, timeout: float = 30.0,
                 user_agent: str = USER_AGENT, respect_robots: bool = True, max_redirects: int = 5) -> None:
        self.delay, self.retries, self.backoff, self.timeout = delay, retries, backoff, timeout
        self.user_agent, self.respect_robots, self.max_redirects = user_agent, respect_robots, max_redirects
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._limiters: dict[str, _HostLimiter] = {}

    def robots(self, url: str) -> urllib.robotparser.RobotFileParser:
        """The robots.txt rules of `url`'s site (a real URL, already rewritten)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
            try:
                response = self._request(origin + "/robots.txt", check_robots=False)
                parser.parse(response.text.splitlines())
            except NotFound:
                parser.parse([])  # no robots.txt: everything allowed
            except requests.RequestException as exc:
                log.warning("cannot read %s/robots.txt (%s); not crawling that site", origin, exc)
                parser.parse(["User-agent: *", "Disallow: /"])
            self._robots[origin] = parser
            self._limiter(parts.netloc).lengthen(float(parser.crawl_delay(self.user_agent) or 0))
        return self._robots[origin]

    def allowed(self, url: str) -> bool:
        return not self.respect_robots or self.robots(url).can_fetch(self.user_agent, url)

    def get(self, url: str) -> Page:
        """Fetch an official `url` (rewritten by $LARB_URL_REWRITE); NotFound / Disallowed / HTTPError."""
        return self._request(urls.resolve(url), check_robots=True)

    def _limiter(self, host: str) -> _HostLimiter:
        return self._limiters.setdefault(host, _HostLimiter(self.delay))

    def _request(self, url: str, *, check_robots: bool) -> Page:
        """GET `url`, following redirects one hop at a time (robots.txt itself is not checked
        against robots.txt, but waits its host's turn like any request)."""
        hops = [url]
        while True:
            if check_robots and not self.allowed(url):
                raise Disallowed(url if len(hops) == 1 else f"{url} (redirected from {hops[0]})")
            response = self._send(url)
            if not response.is_redirect:
                break
            target = urljoin(url, response.headers["Location"])
            if urlsplit(target).scheme not in ("http", "https"):
                raise requests.exceptions.InvalidURL(f"{url} redirects to {target}, which is not http(s)")
            if target in hops:
                raise requests.TooManyRedirects(f"redirect loop: {' -> '.join([*hops, target])}")
            if len(hops) > self.max_redirects:
                raise requests.TooManyRedirects(f"more than {self.max_redirects} redirects from {hops[0]}")
            hops.append(target)
            url = target
        if response.status_code in (404, 410):
            raise NotFound(url)
        response.raise_for_status()
        return Page(url, response.status_code, response.content, response.headers.get("Content-Type", ""))

    def _send(self, url: str) -> requests.Response:
        """One GET without following redirects, in the host's turn, retried with backoff."""
        limiter = self._limiter(urlsplit(url).netloc)
        for attempt in range(self.retries + 1):
            limiter.wait()
            try:
                response = self.session.get(url, timeout=self.timeout, allow_redirects=False)
            except requests.RequestException:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2 ** attempt)
                continue
            if response.status_code in _RETRY_STATUS and attempt < self.retries:
                time.sleep(_retry_after(response) or self.backoff * 2 ** attempt)
                continue
            return response
        raise requests.HTTPError(f"giving up on {url}")


class _HostLimiter:
    """Spaces the starts of requests to one host by at least `interval` seconds, across threads.

    Unlike `fetchjobs.RateLimiter` it remembers the last start, not the next, so a Crawl-delay
    learnt from robots.txt also spaces the first page from the robots.txt request."""

    def __init__(self, interval: float) -> None:
        self.interval = max(0.0, interval)
        self._lock = threading.Lock()
        self._last: float | None = None

    def lengthen(self, interval: float) -> None:
        with self._lock:
            self.interval = max(self.interval, interval)

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = now if self._last is None else max(now, self._last + self.interval)
            self._last = start
        if start > now:
            time.sleep(start - now)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 300.0) if value.strip().isdigit() else None
