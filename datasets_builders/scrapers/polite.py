"""An HTTP client that behaves: robots.txt, a delay per host, retries with backoff, a User-Agent."""

from __future__ import annotations

import logging
import time
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from datasets_builders import urls
from datasets_builders.fetchjobs import RateLimiter

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
    site's Crawl-delay if longer), and exponential backoff on 429/5xx and network errors."""

    def __init__(self, *, delay: float = 2.0, retries: int = 4, backoff: float = 2.0, timeout: float = 30.0,
                 user_agent: str = USER_AGENT, respect_robots: bool = True) -> None:
        self.delay, self.retries, self.backoff, self.timeout = delay, retries, backoff, timeout
        self.user_agent, self.respect_robots = user_agent, respect_robots
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._limiters: dict[str, RateLimiter] = {}

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
            delay = parser.crawl_delay(self.user_agent)
            self._limiters[parts.netloc] = RateLimiter(max(self.delay, float(delay or 0)))
        return self._robots[origin]

    def allowed(self, url: str) -> bool:
        return not self.respect_robots or self.robots(url).can_fetch(self.user_agent, url)

    def get(self, url: str) -> Page:
        """Fetch an official `url` (rewritten by $LARB_URL_REWRITE); NotFound / Disallowed / HTTPError."""
        return self._request(urls.resolve(url), check_robots=True)

    def _request(self, url: str, *, check_robots: bool) -> Page:
        if check_robots and not self.allowed(url):
            raise Disallowed(url)
        host = urlsplit(url).netloc
        limiter = self._limiters.setdefault(host, RateLimiter(self.delay))
        for attempt in range(self.retries + 1):
            limiter.wait()
            try:
                response = self.session.get(url, timeout=self.timeout)
            except requests.RequestException:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2 ** attempt)
                continue
            if response.status_code in (404, 410):
                raise NotFound(url)
            if response.status_code in _RETRY_STATUS and attempt < self.retries:
                time.sleep(_retry_after(response) or self.backoff * 2 ** attempt)
                continue
            response.raise_for_status()
            return Page(response.url, response.status_code, response.content,
                        response.headers.get("Content-Type", ""))
        raise requests.HTTPError(f"giving up on {url}")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 300.0) if value.strip().isdigit() else None
