"""Crawl a site into a WavText5K-layout table, resumably, and report changes against the CSV.

State lives in a folder: `listing.json` (listing progress and the sound pages found) and
`pages.jsonl` (one record per sound page, appended and flushed as it is read). Running the
same command again skips everything already read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError
from datasets_builders import urls
from datasets_builders.scrapers import bigsoundbank, soundbible
from datasets_builders.scrapers.polite import Disallowed, NotFound, PoliteClient

log = logging.getLogger("larb.data")

COLUMNS = ["view_link", "download_link", "title", "description", "fname", "tags", "license", "author", "site", "id"]
COMPARED = ("title", "description", "tags")


class State:
    """Resume folder of one crawl."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.listing_path = folder / "listing.json"
        self.pages_path = folder / "pages.jsonl"
        self.listing = json.loads(self.listing_path.read_text("utf-8")) if self.listing_path.is_file() else {
            "next_page": 1, "sounds": [], "complete": False, "visited": []}
        self.pages: dict[str, dict] = {}
        if self.pages_path.is_file():
            for line in self.pages_path.read_text("utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interruption
                    continue
                self.pages[record["page"]] = record

    def save_listing(self) -> None:
        atomic_write_text(self.listing_path, json.dumps(self.listing, indent=1))

    def add_sound(self, url: str) -> None:
        if url not in self.listing["sounds"]:
            self.listing["sounds"].append(url)

    def add_page(self, record: dict) -> None:
        self.pages[record["page"]] = record
        with open(self.pages_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()


def discover_soundbible(client: PoliteClient, state: State, max_pages: int | None) -> None:
    """Walk `free-sound-effects-N.html` until a page lists no sound (or `max_pages` pages)."""
    fetched = 0
    while not state.listing["complete"] and (max_pages is None or fetched < max_pages):
        page = state.listing["next_page"]
        try:
            found = soundbible.parse_listing(client.get(soundbible.listing_url(page)).text,
                                             soundbible.listing_url(page))
        except NotFound:
            found = []
        fetched += 1
        for url in found:
            state.add_sound(url)
        state.listing["next_page"] = page + 1
        state.listing["complete"] = not found
        state.save_listing()


def discover_bigsoundbank(client: PoliteClient, state: State, max_pages: int | None) -> None:
    """Sound pages from the sitemaps in robots.txt; else a walk of the category pages."""
    if state.listing["complete"]:
        return
    robots = client.robots(urls.resolve(bigsoundbank.BASE))
    queue, fetched = list(robots.site_maps() or []), 0
    seen = set(state.listing["visited"])
    while queue and (max_pages is None or fetched < max_pages):
        sitemap = queue.pop(0)
        if sitemap in seen:
            continue
        seen.add(sitemap)
        try:
            pages, nested = bigsoundbank.sitemap_urls(client.get(sitemap).text)
        except NotFound:
            continue
        fetched += 1
        queue += nested
        for url in pages:
            if bigsoundbank.is_sound(url):
                state.add_sound(url)
    if not state.listing["sounds"]:
        queue = [bigsoundbank.BASE]
        while queue and (max_pages is None or fetched < max_pages):
            url = queue.pop(0)
            if url in seen:
                continue
            seen.add(url)
            try:
                sounds, categories = bigsoundbank.page_links(client.get(url).text, url)
            except (NotFound, Disallowed):
                continue
            fetched += 1
            for sound in sounds:
                state.add_sound(sound)
            queue += [c for c in categories if c not in seen]
        state.listing["complete"] = not queue
    else:
        state.listing["complete"] = not queue
    state.listing["visited"] = sorted(seen)
    state.save_listing()


def crawl(site: str, client: PoliteClient, state: State, max_pages: int | None, progress: bool = True) -> None:
    """Read every sound page found and not read yet."""
    module = soundbible if site == "soundbible" else bigsoundbank
    (discover_soundbible if site == "soundbible" else discover_bigsoundbank)(client, state, max_pages)
    todo = [url for url in state.listing["sounds"] if url not in state.pages]
    from tqdm.auto import tqdm

    for url in tqdm(todo, desc=f"reading {site} pages", unit="page", leave=False, disable=None if progress else True):
        try:
            record = {"page": url, "status": "ok", **module.parse_sound(client.get(url).text, url)}
        except NotFound:
            record = {"page": url, "status": "gone"}
        except Disallowed:
            log.info("robots.txt disallows %s; skipped", url)
            continue
        state.add_page(record)


def table_rows(state: State) -> list[dict[str, str]]:
    """The crawl as rows in the WavText5K layout (plus licence, author, site and id)."""
    rows = []
    for record in state.pages.values():
        if record.get("status") != "ok":
            continue
        ident, title = str(record["id"]), str(record["title"])
        fname = f"{ident}.wav" if record["site"] == "bigsoundbank" else f"{title.lower()}_{ident}.wav"
        rows.append({"view_link": record["view_link"], "download_link": record["download_link"], "title": title,
                     "description": record["description"], "fname": fname,
                     "tags": str(record["tags"]) if record["tags"] else "", "license": record["license"],
                     "author": record["author"], "site": record["site"], "id": ident})
    return rows


def write_table(rows: list[dict[str, str]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _key(link: str) -> str:
    return link.split("://", 1)[-1].lower()


def _normal(field: str, value: str) -> object:
    if field == "tags":
        from datasets_builders.wavtext5k import tags_from_cell

        try:
            return sorted(t.strip().lower() for t in tags_from_cell(value))
        except ValueError:
            return [value.strip()]
    return " ".join(value.split())


def compare(published: list[dict[str, str]], scraped: list[dict[str, str]], *, site: str,
            complete: bool) -> dict[str, object]:
    """What changed between the published rows of `site` and a crawl, keyed by download link."""
    host = "soundbible.com" if site == "soundbible" else "bigsoundbank.com"
    old = {_key(r["download_link"]): r for r in published if host in r["download_link"]}
    new = {_key(r["download_link"]): r for r in scraped}
    changed = []
    for key in sorted(old.keys() & new.keys()):
        for field in COMPARED:
            if field == "tags" and site == "bigsoundbank":
                continue  # the published table has no BigSoundBank tags
            before, after = _normal(field, old[key][field]), _normal(field, new[key][field])
            if before != after:
                changed.append({"download_link": new[key]["download_link"], "field": field,
                                "published": old[key][field], "scraped": new[key][field]})
    return {"site": site, "complete_crawl": complete, "published_rows": len(old), "scraped_rows": len(new),
            "unchanged_rows": len((old.keys() & new.keys()) - {_key(c["download_link"]) for c in changed}),
            "added": sorted(new[k]["download_link"] for k in new.keys() - old.keys()),
            "removed": sorted(old[k]["download_link"] for k in old.keys() - new.keys()) if complete else [],
            "changed": changed}


def scrape(site: str, *, output: Path, state: Path | None = None, delay: float = 2.0, max_pages: int | None = None,
           compare_with: Path | None = None, report: Path | None = None, client: PoliteClient | None = None,
           progress: bool = True) -> int:
    """Crawl `site`, write the table to `output` and the change report; return the exit code."""
    from datasets_builders.tables import read_rows
    from datasets_builders.wavtext5k import published_table

    if delay < 0:
        raise LarbError("--delay must not be negative.", fix="pass --delay 2 (seconds between requests).")
    store = State(state or output.with_name(output.name + ".state"))
    crawl(site, client or PoliteClient(delay=delay), store, max_pages, progress)
    rows = table_rows(store)
    write_table(rows, output)
    published = read_rows(Path(compare_with)) if compare_with else read_rows(published_table())
    result = compare(published, rows, site=site, complete=bool(store.listing["complete"]))
    report_path = report or output.with_name(output.stem + ".changes.json")
    atomic_write_text(report_path, json.dumps(result, indent=1, ensure_ascii=False))
    gone = sum(1 for r in store.pages.values() if r.get("status") == "gone")
    print(f"{site}: {len(rows)} sounds read ({gone} pages gone); against the published table: "
          f"{result['unchanged_rows']} unchanged, {len(result['changed'])} field changes, {len(result['added'])} "
          f"new, {len(result['removed'])} removed{'' if result['complete_crawl'] else ' (partial crawl)'}")
    print(f"wrote {output} and {report_path}")
    return 0
