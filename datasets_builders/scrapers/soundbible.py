"""SoundBible (soundbible.com): listing pages `free-sound-effects-N.html`, one page per sound.

Structure (2024-25 layout): a listing links each sound from an `<h3><a href="<id>-<Title>.html">`;
a sound page has the description in the first `<p>` of `section#course-details .col-lg-8`,
the tags as `<li>` links to `tags-<tag>.html` (as a
stray fragment in three rows of the published CSV shows; `<meta name="keywords">` otherwise),
the length in `.total-time`, the licence as a
Creative Commons link, the author after "Recorded by", and the file at
`grab.php?id=<id>&type=wav`.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from bs4 import BeautifulSoup

BASE = "https://soundbible.com/"
SITE = "soundbible"
_SOUND = re.compile(r"(?:^|/)(\d+)-[^/]+\.html$")


def listing_url(page: int) -> str:
    return f"{BASE}free-sound-effects-{page}.html"


def parse_listing(html: str, page_url: str) -> list[str]:
    """Absolute URLs of the sound pages a listing page links to, in page order."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for link in soup.select("h3 a[href]"):
        href = link["href"].strip()
        if _SOUND.search(href):
            absolute = urljoin(BASE, href.split("/")[-1]) if not href.startswith("http") else href
            if absolute not in found:
                found.append(absolute)
    return found


def sound_id(url: str) -> str:
    match = _SOUND.search(url)
    return match.group(1) if match else ""


def parse_sound(html: str, url: str) -> dict[str, object]:
    """The fields of one sound page (title, description, tags, licence, author, download link)."""
    soup = BeautifulSoup(html, "html.parser")
    ident = sound_id(url)
    title = _text(soup.select_one("section#course-details h1")) or _text(soup.select_one("h1"))
    if not title and soup.title:
        title = re.split(r"\s+(?:Sound|\|)", soup.title.get_text(" ", strip=True))[0]
    paragraph = soup.select_one("section#course-details .col-lg-8 p")
    description = _text(paragraph)
    if not description:
        meta = soup.find("meta", attrs={"name": "description"})
        description = meta["content"].strip() if meta and meta.get("content") else ""
    tags = []
    for link in soup.select('a[href*="tags-"]'):  # <li><i class="icofont-sound-wave"></i> <a href="tags-x.html">
        tag = _text(link)
        if tag and tag not in tags:
            tags.append(tag)
    keywords = soup.find("meta", attrs={"name": "keywords"})
    if not tags and keywords and keywords.get("content"):
        tags = [t.strip() for t in keywords["content"].split(",") if t.strip()]
    licence_link = soup.find("a", href=re.compile(r"creativecommons\.org|publicdomain"))
    licence = _text(licence_link) or (licence_link["href"] if licence_link else "")
    if not licence:
        match = re.search(r"(Public Domain|Attribution[^.|\n]*|Sampling Plus[^.|\n]*)", soup.get_text(" "))
        licence = match.group(1).strip() if match else ""
    author_match = re.search(r"Recorded by\s*:?\s*([^\n|]+?)(?:\s{2,}|\||$)", soup.get_text("\n"), re.MULTILINE)
    return {"site": SITE, "id": ident, "view_link": f"{BASE}{url.rsplit('/', 1)[-1]}",
            "download_link": f"{BASE}grab.php?id={ident}&type=wav", "title": title,
            "description": description, "tags": tags, "license": licence,
            "author": author_match.group(1).strip() if author_match else "",
            "length": _text(soup.select_one(".total-time"))}


def _text(node: object) -> str:
    return " ".join(node.get_text(" ", strip=True).split()) if node is not None else ""
