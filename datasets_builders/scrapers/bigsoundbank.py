"""BigSoundBank (bigsoundbank.com): sound pages `detail-NNNN-<slug>.html`, files `UPLOAD/wav/NNNN.wav`.

Sound pages are found through the sitemaps that robots.txt declares (standard XML sitemaps,
nested indexes allowed), falling back to a walk of the category pages (`<slug>-sNNNN.html`).
The page fields are read from the title heading, the description and keywords meta tags
(falling back to the first paragraph of the main content) and any Creative Commons / CC0
mention. The WavText5K crawl's HTML selectors were never published; these are the site's
standard elements and are checked by the change report against the published table.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin
from xml.etree import ElementTree

from bs4 import BeautifulSoup

BASE = "https://bigsoundbank.com/"
SITE = "bigsoundbank"
_DETAIL = re.compile(r"detail-(\d{4,5})-[^/?#]+\.html$")
_CATEGORY = re.compile(r"-s\d{4}\.html$")


def is_sound(url: str) -> bool:
    return bool(_DETAIL.search(url))


def sound_id(url: str) -> str:
    match = _DETAIL.search(url)
    return match.group(1) if match else ""


def sitemap_urls(xml: str) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap or sitemap index."""
    try:
        root = ElementTree.fromstring(xml.encode("utf-8"))
    except ElementTree.ParseError:
        return [], []
    pages, nested = [], []
    for entry in root:
        kind = entry.tag.rsplit("}", 1)[-1]
        for child in entry:
            if child.tag.rsplit("}", 1)[-1] == "loc" and child.text:
                (nested if kind == "sitemap" else pages).append(child.text.strip())
    return pages, nested


def page_links(html: str, page_url: str) -> tuple[list[str], list[str]]:
    """(sound pages, category pages) linked from a page, absolute, in order, on this site only."""
    soup = BeautifulSoup(html, "html.parser")
    sounds, categories = [], []
    for link in soup.find_all("a", href=True):
        absolute = urljoin(page_url, link["href"].strip()).split("#")[0]
        if not absolute.startswith(page_url.split("/", 3)[0] + "//" + page_url.split("/", 3)[2]):
            continue
        if is_sound(absolute) and absolute not in sounds:
            sounds.append(absolute)
        elif _CATEGORY.search(absolute) and absolute not in categories:
            categories.append(absolute)
    return sounds, categories


def parse_sound(html: str, url: str) -> dict[str, object]:
    soup = BeautifulSoup(html, "html.parser")
    ident = sound_id(url)
    title = _text(soup.select_one("h1"))
    if not title:
        og = soup.find("meta", attrs={"property": "og:title"})
        title = og["content"].strip() if og and og.get("content") else ""
    meta = soup.find("meta", attrs={"name": "description"}) or soup.find("meta", attrs={"property": "og:description"})
    description = meta["content"].strip() if meta and meta.get("content") else ""
    if not description:
        description = _text(soup.select_one("main p") or soup.select_one("article p"))
    keywords = soup.find("meta", attrs={"name": "keywords"})
    tags = [t.strip() for t in keywords["content"].split(",") if t.strip()] if keywords and keywords.get(
        "content") else []
    text = soup.get_text(" ")
    licence = "CC0" if re.search(r"\bCC0\b|creativecommons\.org/publicdomain/zero", str(soup)) else ""
    if not licence:
        match = re.search(r"(Creative Commons[^.|\n]*|Attribution[^.|\n]*)", text)
        licence = match.group(1).strip() if match else ""
    return {"site": SITE, "id": ident, "view_link": f"{BASE}{url.rsplit('/', 1)[-1]}",
            "download_link": f"{BASE}UPLOAD/wav/{ident}.wav", "title": title, "description": description,
            "tags": tags, "license": licence, "author": "", "length": ""}


def _text(node: object) -> str:
    return " ".join(node.get_text(" ", strip=True).split()) if node is not None else ""
