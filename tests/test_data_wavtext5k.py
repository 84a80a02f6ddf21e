"""WavText5K builder and the SoundBible / BigSoundBank scrapers, against pages written in the
sites' structure and served from a loopback server; the real table parsed whole."""

from __future__ import annotations

import csv
import io
import json

import datasets
import pytest
from data_helpers import Loopback, isolate, md5, reference_file, wav_bytes

from benchmark.errors import LarbError
from datasets_builders import sources
from datasets_builders.build import build
from datasets_builders.scrapers.polite import PoliteClient
from datasets_builders.scrapers.run import scrape
from datasets_builders.wavtext5k import caption, read_table, select_rows

HEADER = ["view_link", "download_link", "title", "description", "fname", "tags"]
ROWS = [
    ["https://bigsoundbank.com/detail-0100-forest.html", "https://bigsoundbank.com/UPLOAD/wav/0100.wav", "Forest",
     "Birds singing, drive away, fly.", "0100.wav", ""],
    ["https://bigsoundbank.com/detail-1624-robot-vacuum.html", "https://bigsoundbank.com/UPLOAD/wav/1624.wav",
     "Robot vacuum, back to the base\r\n", "Start and stop a vacuum cleaner.", "1624.wav", ""],
    ["https://soundbible.com/2219-Airplane-Landing-Airport.html", "https://soundbible.com/grab.php?id=2219&type=wav",
     "Airplane Landing Airport", " Large commercial airplane landing at an airport runway.",
     "airplane landing airport_0.wav", "['airport', 'runway', 'landing']"],
    ["https://soundbible.com/2218-Service-Bell-Help.html", "https://soundbible.com/grab.php?id=2218&type=wav",
     "Service Bell Help", " Customer ringing service bell in need of help in a store.", "service bell help_1.wav",
     ("['bell', 'service', <li><i class=\"icofont-sound-wave icofont-1x\"></i> <a href=\"tags-help.html\">help</a>"
      "</li>, 'help']")],
]


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def table_bytes(rows: list[list[str]] = ROWS) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@pytest.fixture
def env(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    monkeypatch.setitem(sources.CHECKSUM_OVERRIDES, "WavText5K.csv", md5(table_bytes()))
    return tmp_path


def rewrite(monkeypatch, server: Loopback) -> None:
    monkeypatch.setenv("LARB_URL_REWRITE", " ".join([
        f"https://raw.githubusercontent.com/microsoft/WavText5K/={server.url}/gh/",
        f"https://soundbible.com/={server.url}/sb/", f"https://bigsoundbank.com/={server.url}/bsb/"]))


def test_builds_from_the_sites_politely(env, monkeypatch):
    routes = {
        "/gh/7f1243befcba524009655747f5088b1573b7db95/WavText5K.csv": table_bytes(),
        "/robots.txt": b"User-agent: *\nDisallow: /sb/private/\n",
        "/bsb/UPLOAD/wav/0100.wav": wav_bytes(seconds=0.3, rate=44_100, channels=2, seed=1),
        "/bsb/UPLOAD/wav/1624.wav": b"<html><body>Sound not found</body></html>",  # an error page, not audio
        "/sb/grab.php?id=2219&type=wav": wav_bytes(seconds=0.2, rate=22_050, seed=3),
    }  # grab.php?id=2218 is not served: a 404
    with Loopback(routes) as server:
        rewrite(monkeypatch, server)
        result = build("wavtext5k", sample_rate=48_000, output=env / "out", options={"delay": "0"})
        build("wavtext5k", output=env / "out2", options={"delay": "0", "caption": "title"})
        audio_requests = [p for _, p, _ in server.log if "UPLOAD" in p or "grab" in p]
    train = result["train"]
    assert train["file_name"] == ["0100.wav", "1624.wav", "airplane landing airport_0.wav", "service bell help_1.wav"]
    assert train["captions"][0] == ["Forest. Birds singing, drive away, fly."]
    assert train["captions"][1] == ["Robot vacuum, back to the base. Start and stop a vacuum cleaner."]
    assert train[2]["tags"] == ["airport", "runway", "landing"] and train[3]["tags"] == ["bell", "service", "help"]
    assert train[0]["sampling_rate"] == 48_000 and train[0]["channels"] == 2
    assert train[2]["sampling_rate"] == 48_000 and train[2]["duration"] == pytest.approx(0.2)
    assert train[1]["audio"] is None and train[1]["download_status"].startswith("unavailable: not audio")
    assert train[3]["audio"] is None and "404" in train[3]["download_status"]
    assert train["site"] == ["bigsoundbank", "bigsoundbank", "soundbible", "soundbible"]
    titles = datasets.load_from_disk(str(env / "out2"))["train"]["captions"]
    assert titles[2] == ["Airplane Landing Airport"]
    assert len(audio_requests) == 4  # the second build asked for nothing again


def test_caption_modes():
    assert caption("Dog bark.", " A dog barks twice.") == "Dog bark. A dog barks twice."
    assert caption("Dog bark", "", "title_description") == "Dog bark"
    assert caption("", "Only words", "title_description") == "Only words"
    assert caption("Robot vacuum\r\n", "x", "title") == "Robot vacuum"
    assert caption("T", " Described here.", "description") == "Described here."


def test_real_table_parses_whole():
    rows = read_table(reference_file("wavtext5k", "WavText5K.csv"))
    assert len(rows) == 4525
    assert sum(r["site"] == "bigsoundbank" for r in rows) == 2467
    assert sum(r["site"] == "soundbible" for r in rows) == 2058
    assert sum("\r\n" in r["title"] for r in rows) == 2
    assert all(r["fname"].endswith(".wav") for r in rows)
    atlatl = next(r for r in rows if "atlatl" in r["tags"])  # one of the 3 cells with an HTML fragment
    assert "bow and arrow" in atlatl["tags"] and not any("<" in t for t in rows_tags(rows))
    assert all(r["description"].startswith(" ") for r in rows if r["site"] == "soundbible")
    assert sum(not caption(r["title"], r["description"]) for r in rows) == 5  # 5 untitled BigSoundBank rows
    described = select_rows(rows)  # the build's default: the paper's 4,348 pairs with both fields
    assert len(described) == 4348 and all(r["title"].strip() and r["description"].strip() for r in described)
    assert select_rows(rows, "all") == rows


def rows_tags(rows: list[dict]) -> list[str]:
    return [t for r in rows for t in r["tags"]]


def test_broken_tags_cell_names_its_line(tmp_path):
    bad = ROWS[:2] + [ROWS[2][:5] + ["['airport', unquoted]"]]
    (tmp_path / "t.csv").write_bytes(table_bytes(bad))
    with pytest.raises(LarbError) as caught:
        read_table(tmp_path / "t.csv")
    assert caught.value.line == 4


# -- scrapers -----------------------------------------------------------------------------

def soundbible_listing(*sounds: tuple[str, str]) -> bytes:
    items = "".join(f'<div class="col-md-6"><div class="sound-item"><h3><a href="{href}">{title}</a></h3>'
                    f'<div class="sound-meta">Length: 0:14</div></div></div>' for href, title in sounds)
    return (f'<html><head><title>Free Sound Effects | SoundBible.com</title></head><body><section class="sounds">'
            f'<div class="container"><div class="row">{items}</div></div></section></body></html>').encode()


def soundbible_page(title: str, description: str, tags: list[str], licence: str = "Attribution 3.0") -> bytes:
    tag_items = "".join(f'<li><i class="icofont-sound-wave icofont-1x"></i> <a href="tags-{t}.html">{t}</a></li>'
                        for t in tags)
    return f"""<html><head><title>{title} Sound | Free Sound Effects | SoundBible.com</title>
<meta name="keywords" content="{','.join(tags)}"><meta name="description" content="{description}"></head>
<body><section id="course-details"><div class="container"><div class="row">
<div class="col-lg-8"><h1>{title}</h1><p>{description}</p>
<div id="ag1"><div class="the-media"><audio><source src="mp3/{title}.mp3" type="audio/mp3"></audio></div></div>
<span class="total-time">0:14</span></div>
<div class="col-lg-4"><ul class="tags">{tag_items}</ul>
<p>Recorded by Daniel Simion</p>
<p>License: <a href="https://creativecommons.org/licenses/by/3.0/">{licence}</a></p></div>
</div></div></section></body></html>""".encode()


def test_soundbible_scrape_resumes_respects_robots_and_reports_changes(env, tmp_path, monkeypatch):
    routes = {
        "/robots.txt": b"User-agent: *\nDisallow: /sb/2000-\n",
        "/sb/free-sound-effects-1.html": soundbible_listing(("2219-Airplane-Landing-Airport.html",
                                                             "Airplane Landing Airport"),
                                                            ("2000-Secret.html", "Secret")),
        "/sb/free-sound-effects-2.html": soundbible_listing(("2218-Service-Bell-Help.html", "Service Bell Help"),
                                                            ("2300-New-Sound.html", "New Sound"),
                                                            ("2301-Gone.html", "Gone")),
        "/sb/free-sound-effects-3.html": soundbible_listing(),
        "/sb/2219-Airplane-Landing-Airport.html": soundbible_page(
            "Airplane Landing Airport", "Large commercial airplane landing at an airport runway.",
            ["airport", "runway", "landing"]),
        "/sb/2218-Service-Bell-Help.html": soundbible_page(
            "Service Bell Help", "A customer rings a bell.", ["bell", "service", "help"]),
        "/sb/2300-New-Sound.html": soundbible_page("New Sound", "Brand new.", ["new"], "Public Domain"),
    }
    published = tmp_path / "published.csv"
    published.write_bytes(table_bytes())
    output = tmp_path / "sb.csv"
    with Loopback(routes) as server:
        rewrite(monkeypatch, server)
        client = PoliteClient(delay=0, retries=0)
        scrape("soundbible", output=output, max_pages=1, compare_with=published, client=client, progress=False)
        first = json.loads((tmp_path / "sb.changes.json").read_text())
        scrape("soundbible", output=output, compare_with=published, client=PoliteClient(delay=0, retries=0),
               progress=False)
        asked = [p for _, p, _ in server.log]
    assert first["complete_crawl"] is False and first["removed"] == []
    assert not any("2000-Secret" in p for p in asked), "robots.txt disallows it"
    assert asked.count("/sb/2219-Airplane-Landing-Airport.html") == 1, "resumed, not read twice"
    assert asked.count("/sb/free-sound-effects-1.html") == 1
    rows = read_csv(output)
    assert [r["id"] for r in rows] == ["2219", "2218", "2300"]
    plane = rows[0]
    assert plane["download_link"] == "https://soundbible.com/grab.php?id=2219&type=wav"
    assert plane["tags"] == "['airport', 'runway', 'landing']" and plane["author"] == "Daniel Simion"
    assert plane["license"] == "Attribution 3.0" and rows[2]["license"] == "Public Domain"
    report = json.loads((tmp_path / "sb.changes.json").read_text())
    assert report["complete_crawl"] is True and report["unchanged_rows"] == 1
    assert report["added"] == ["https://soundbible.com/grab.php?id=2300&type=wav"]
    assert [(c["field"], c["scraped"]) for c in report["changed"]] == [("description", "A customer rings a bell.")]
    table = read_table(output)  # a refreshed table is a valid WavText5K table
    assert [r["site"] for r in table] == ["soundbible"] * 3


def test_bigsoundbank_scrape_from_sitemaps(env, tmp_path, monkeypatch):
    detail = """<html><head><title>{t} - BigSoundBank</title><meta name="description" content="{d}">
<meta name="keywords" content="forest,birds"></head><body><main><h1>{t}</h1><p>{d}</p>
<a href="https://bigsoundbank.com/UPLOAD/wav/{i}.wav">WAV</a> <p>Licence: CC0 (public domain)</p>
</main></body></html>"""
    routes = {
        "/robots.txt": b"User-agent: *\nDisallow: /bsb/detail-0999\nSitemap: https://bigsoundbank.com/sitemap.xml\n",
        "/bsb/sitemap.xml": b"<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                            b"<sitemap><loc>https://bigsoundbank.com/"
                            b"sitemap-sounds.xml</loc></sitemap></sitemapindex>",
        "/bsb/sitemap-sounds.xml": b"<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                                   b"<url><loc>https://bigsoundbank.com/detail-0100-forest.html</loc></url>"
                                   b"<url><loc>https://bigsoundbank.com/detail-0999-private.html</loc></url>"
                                   b"<url><loc>https://bigsoundbank.com/barking-dogs-s0288.html</loc></url></urlset>",
        "/bsb/detail-0100-forest.html": detail.format(t="Forest", d="Birds singing in a forest.", i="0100").encode(),
    }
    published = tmp_path / "published.csv"
    published.write_bytes(table_bytes())
    with Loopback(routes) as server:
        rewrite(monkeypatch, server)
        scrape("bigsoundbank", output=tmp_path / "bsb.csv", compare_with=published,
               client=PoliteClient(delay=0, retries=0), progress=False)
        asked = [p for _, p, _ in server.log]
    assert "/bsb/detail-0999-private.html" not in asked
    rows = read_csv(tmp_path / "bsb.csv")
    assert len(rows) == 1 and rows[0]["fname"] == "0100.wav" and rows[0]["license"] == "CC0"
    assert rows[0]["download_link"] == "https://bigsoundbank.com/UPLOAD/wav/0100.wav"
    report = json.loads((tmp_path / "bsb.changes.json").read_text())
    assert report["removed"] == ["https://bigsoundbank.com/UPLOAD/wav/1624.wav"]
    assert [(c["field"], c["published"]) for c in report["changed"]] == [
        ("description", "Birds singing, drive away, fly.")]


def test_polite_client_backs_off_and_retries(env, monkeypatch):
    from datasets_builders.scrapers.polite import NotFound

    calls = {"n": 0}

    def flaky(handler) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            handler.send_response(503)
            handler.send_header("Retry-After", "0")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = b"<html><h3><a href='7-Dog.html'>Dog</a></h3></html>"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    routes = {"/sb/free-sound-effects-1.html": flaky, "/robots.txt": b"User-agent: *\nCrawl-delay: 0\n"}
    with Loopback(routes) as server:
        rewrite(monkeypatch, server)
        client = PoliteClient(delay=0, retries=3, backoff=0.01)
        page = client.get("https://soundbible.com/free-sound-effects-1.html")
        assert calls["n"] == 3 and "7-Dog.html" in page.text
        with pytest.raises(NotFound):
            client.get("https://soundbible.com/free-sound-effects-99.html")
    assert server.log[0][1] == "/robots.txt", "robots.txt is read first"
    assert server.agents and all(agent.startswith("larb-scraper/") for agent in server.agents)
