"""Redirect official URLs to another server (an internal mirror, or a test's loopback server).

The builders keep the real publisher URLs in their code. `LARB_URL_REWRITE` holds
`PREFIX=REPLACEMENT` pairs separated by whitespace; the longest matching prefix wins, e.g.
`LARB_URL_REWRITE="https://zenodo.org/=http://mirror.lan/zenodo/"`.
"""

from __future__ import annotations

import os
import re

from benchmark.errors import LarbError

REWRITE_ENV = "LARB_URL_REWRITE"
_PAIR = re.compile(r"^(.+?)=([A-Za-z][A-Za-z0-9+.-]*://\S*)$")


def rewrites() -> list[tuple[str, str]]:
    """The configured (prefix, replacement) pairs, longest prefix first."""
    pairs = []
    for item in os.environ.get(REWRITE_ENV, "").split():
        # the separator is the first "=" that is followed by a URL scheme, so prefixes may hold "="
        match = _PAIR.match(item)
        if match is None:
            raise LarbError(f"bad ${REWRITE_ENV} entry {item!r}.",
                            fix="write PREFIX=REPLACEMENT pairs (the replacement a URL) separated by spaces.")
        pairs.append((match.group(1), match.group(2)))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def resolve(url: str) -> str:
    """The URL to actually contact for an official `url`."""
    for prefix, replacement in rewrites():
        if url.startswith(prefix):
            return replacement + url[len(prefix):]
    return url
