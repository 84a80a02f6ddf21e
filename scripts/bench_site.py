"""The web site's weight and load time, measured in one run.

Builds the site for a board (default: the committed `submissions/`; with `--clotho`, a board of
the real DCASE 2022 baseline ranking of clotho-v2.1/evaluation and a shuffled copy of it, 5,225
queries each, from ../shared/reference), then reports the build time, the bytes per kind of page
(all of it: the site fetches nothing else), and the load time of the index, a query browser and a
comparison in headless Chromium from file:// (navigation start to the load event, median of 5).

Usage: python scripts/bench_site.py [--clotho] [--submissions DIR]
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "scoring" / "dcase2022_baseline_clotho_evaluation.output.csv"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def clotho_board(root: Path) -> Path:
    """Two submissions on clotho-v2.1/evaluation: the real DCASE 2022 baseline ranking, and its rows
    with the candidates of each row shuffled (a worse system with the same files)."""
    with REFERENCE.open(newline="", encoding="utf-8") as file:
        header, *rows = list(csv.reader(file))
    rng = random.Random(0)
    shuffled = [[row[0], *rng.sample(row[1:], len(row) - 1)] for row in rows]
    for sub_id, table in (("dcase2022-baseline", rows), ("shuffled", shuffled)):
        folder = root / sub_id
        folder.mkdir(parents=True)
        with (folder / "ranking.csv").open("w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows([header, *table])
        metadata = {"id": sub_id, "team": "bench", "system": sub_id, "description": "bench", "ensemble": False,
                    "parameters": {"total": 1, "trainable": 1}, "date": "2026-01-01", "licence": "MIT",
                    "training_data": [{"dataset": "clotho-v2.1", "split": "development"}],
                    "rankings": {"clotho-v2.1/evaluation": "ranking.csv"}}
        (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata), "utf-8")
    return root


def load_times(site: Path, pages: list[str]) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    times: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        for name in pages:
            samples = []
            for _ in range(5):
                page.goto((site / name).as_uri(), wait_until="load")
                samples.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
            times[name] = statistics.median(samples)
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", default=str(REPO / "submissions"))
    parser.add_argument("--clotho", action="store_true", help="the real 5,225-query Clotho ranking (needs ../shared)")
    args = parser.parse_args()
    from benchmark.board import build_board
    from benchmark.site import write_site

    with tempfile.TemporaryDirectory() as work:
        root = clotho_board(Path(work) / "subs") if args.clotho else Path(args.submissions)
        start = time.perf_counter()
        board = build_board(root)
        scored = time.perf_counter()
        site = write_site(board, Path(work) / "site")
        built = time.perf_counter()
        print(f"board scored in {scored - start:.2f} s, site written in {built - scored:.2f} s")
        sizes: dict[str, list[int]] = defaultdict(list)
        for path in site.rglob("*"):
            if path.is_file():
                kind = path.relative_to(site).parts[0] if len(path.relative_to(site).parts) > 1 else path.name
                sizes[kind].append(path.stat().st_size)
        total = sum(sum(v) for v in sizes.values())
        print(f"site: {sum(len(v) for v in sizes.values())} files, {total / 1024:.0f} KiB in all")
        for kind, values in sorted(sizes.items()):
            print(f"  {kind:12s} {len(values):4d} files, largest {max(values) / 1024:8.1f} KiB")
        task = board.tasks[-1] if not args.clotho else next(t for t in board.tasks if t.rows)
        first, second = task.rows[0].submission.id, task.rows[1].submission.id
        from benchmark.site import slug

        pages = ["index.html", f"queries/{slug(task.id)}/{first}.html",
                 f"compare/{slug(task.id)}/{first}+{second}.html"]
        for name, ms in load_times(site, pages).items():
            size = (site / name).stat().st_size / 1024
            print(f"load {name}: {size:.0f} KiB, {ms:.0f} ms (headless Chromium, file://)")


if __name__ == "__main__":
    main()
