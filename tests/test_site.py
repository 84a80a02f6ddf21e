"""The leaderboard web site: deterministic, offline, escaped, no silent drops, and working in a real
browser (Debian's chromium driven by playwright, opened from file://)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark import stats
from benchmark.board import build_board
from benchmark.site import write_site

CHROMIUM = Path("/usr/bin/chromium")
# The flags this machine's closed network needs (no background connections to Google's hosts).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HISTORY = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_mAP@10": 0.1 * e, "lr": 1e-3}
           for e in range(1, 5)]


@pytest.fixture
def board_root(make_submission, tmp_path):
    """Four submissions on demo: perfect (trained on demo/test, so †), two random (one zero-shot, one
    with a training log), and one that also declares a folder task, which the board cannot score."""
    make_submission("perfect", perfect=True, training_data=[("demo", "test")])
    trained = make_submission("random-trained", seed=1, training_data=[("demo", "train")], training_log="log.jsonl",
                              links={"paper": "https://example.org/paper", "code": "javascript:alert(1)"},
                              description="Uses <script>alert('x')</script> & friends.")
    (trained / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in HISTORY), "utf-8")
    make_submission("random-zero", seed=2)
    odd = make_submission("with-folder-task", seed=3, rankings={"demo": "demo.csv", "folder:mine": "demo.csv"})
    assert odd.is_dir()
    return make_submission.root


@pytest.fixture
def site(board_root, tmp_path) -> Path:
    return write_site(build_board(board_root), tmp_path / "site")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rebuilds_are_byte_identical_and_every_page_exists(board_root, site, tmp_path):
    again = write_site(build_board(board_root), tmp_path / "again")
    first = _files(site)
    assert first == _files(again)
    pages = set(first)
    assert {"index.html", "assets/site.js", "assets/site.css", "plots/demo.svg", "submissions/perfect.html",
            "queries/demo/random-zero.html", "compare/demo/index.html", "plots/training-random-trained.svg",
            "compare/demo/perfect+random-trained.html"} <= pages
    # 4 scored systems: 6 pairs, each written once, the better-placed first
    assert len([p for p in pages if p.startswith("compare/demo/") and "+" in p]) == 6
    rewritten = write_site(build_board(board_root), site)  # a rebuild in place replaces the old site
    assert _files(rewritten) == first


def test_nothing_is_fetched_from_the_network(site):
    for name, content in _files(site).items():
        if not name.endswith((".html", ".css", ".js", ".svg")):
            continue
        text = content.decode("utf-8")
        # the only absolute URLs are the submissions' own links (and the SVG namespace ids)
        for attribute, url in re.findall(r'\b(src|href)="([^"]*)"', text):
            assert not url.startswith(("http:", "https:", "//")) or (
                attribute == "href" and url == "https://example.org/paper"), (name, url)
        assert "@import" not in text and "url(http" not in text


def test_untrusted_metadata_is_escaped_and_only_http_links_are_links(site):
    page = (site / "submissions/random-trained.html").read_text("utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; friends" in page
    assert 'href="https://example.org/paper"' in page
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page  # shown as text


def test_a_ranking_the_board_cannot_score_is_listed_and_fails_the_check(board_root, site, run_cli, tmp_path):
    index = (site / "index.html").read_text("utf-8")
    assert 'id="not-scored"' in index and "folder:mine" in index and "not a registered task" in index
    board_md = tmp_path / "board.md"
    assert run_cli("leaderboard", "--submissions", board_root, "--output", board_md)[0] == 0
    text = board_md.read_text("utf-8")
    assert "## Not scored" in text and "`with-folder-task` | folder:mine" in text
    code, _, err = run_cli("leaderboard", "--submissions", board_root, "--output", board_md, "--check")
    assert code == 1 and "not scored: with-folder-task on folder:mine: not a registered task" in err
    # the same board without that submission passes
    shutil.rmtree(board_root / "with-folder-task")
    run_cli("leaderboard", "--submissions", board_root, "--output", board_md)
    assert run_cli("leaderboard", "--submissions", board_root, "--output", board_md, "--check")[0] == 0


def test_reported_only_figures_have_their_own_section_without_rescoring_columns(site):
    index = (site / "index.html").read_text("utf-8")
    section = index.split('id="task-dcase2022-task6b__challenge-evaluation"')[1].split("</section>")[0]
    assert "0.061" in section and "ground truth LARB does not have" in section
    assert "reproduced here" not in section
    clotho = index.split('id="task-clotho-v2.1__evaluation"')[1].split("</section>")[0]
    assert "reproduced here" in clotho and "<th class=\"sortable\">R@50</th>" in clotho  # CLAP's R@50 is shown


def test_a_ranking_the_validator_refuses_is_listed_with_its_reason(make_submission):
    folder = make_submission("broken", seed=1)
    (folder / "demo.csv").write_text("caption,file_name_1\n", "utf-8")
    board = build_board(make_submission.root)
    assert [(u.submission_id, u.task_id) for u in board.unscored] == [("broken", "demo")]
    assert board.unscored[0].reason and not board.task("demo").rows


def test_comparison_counts_and_p_value_come_from_the_per_query_scores(board_root, site):
    board = build_board(board_root)
    rows = {r.submission.id: r for r in board.task("demo").rows}
    a, b = rows["perfect"].scores.per_query["mAP@10"], rows["random-trained"].scores.per_query["mAP@10"]
    page = (site / "compare/demo/perfect+random-trained.html").read_text("utf-8")
    assert f'id="won">{int((a > b).sum())}<' in page and f'id="lost">{int((a < b).sum())}<' in page
    assert f"p = {stats.paired_randomization_test(a, b):.4f}" in page


def test_audio_players_link_the_task_audio_relatively(board_root, tmp_path, run_cli):
    from benchmark.tasks import demo_folder

    audio = demo_folder("test")
    code, out, err = run_cli("leaderboard", "--submissions", board_root, "--output", tmp_path / "b.md",
                             "--site", tmp_path / "with-audio", "--audio-root", f"demo={audio}")
    assert code == 0, err
    page = tmp_path / "with-audio/queries/demo/perfect.html"
    sources = re.findall(r'<audio controls preload="none" src="([^"]+)"', page.read_text("utf-8"))
    assert sources and all((page.parent / s).resolve().is_file() for s in sources)
    assert all(not s.startswith("/") for s in sources)
    plain = (tmp_path / "b.md").parent / "site-plain"
    run_cli("leaderboard", "--submissions", board_root, "--output", tmp_path / "b.md", "--site", plain)
    assert "<audio" not in (plain / "queries/demo/perfect.html").read_text("utf-8")


def test_a_failed_build_keeps_the_old_site_and_a_foreign_folder_is_never_replaced(board_root, site, monkeypatch,
                                                                                   tmp_path, run_cli):
    from benchmark import site as site_module

    before = _files(site)
    monkeypatch.setattr(site_module.SiteBuilder, "_comparisons", lambda self, board: (_ for _ in ()).throw(OSError(
        28, "No space left on device")))
    code, _, err = run_cli("leaderboard", "--submissions", board_root, "--output", tmp_path / "b.md", "--site", site)
    assert code == 2 and "the disk is full" in err and "Traceback" not in err
    assert _files(site) == before and not [p for p in site.parent.iterdir() if ".partial-" in p.name]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", "utf-8")
    code, _, err = run_cli("leaderboard", "--submissions", board_root, "--output", tmp_path / "b.md",
                           "--site", foreign)
    assert code == 2 and "only a folder that LARB wrote" in err and (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("second_line", ['{"epoch": 2}', json.dumps({**HISTORY[1], "val_mAP@10": True}),
                                         "[" * 100_000 + "]" * 100_000])
def test_a_bad_training_log_is_one_error_naming_the_line(board_root, run_cli, tmp_path, second_line):
    log = board_root / "random-trained" / "log.jsonl"
    log.write_text(json.dumps(HISTORY[0]) + "\n" + second_line + "\n", "utf-8")
    code, _, err = run_cli("leaderboard", "--submissions", board_root, "--output", tmp_path / "b.md",
                           "--site", tmp_path / "s")
    assert code == 2 and "log.jsonl, line 2" in err and "Traceback" not in err


def test_site_options_are_checked_before_anything_is_written(board_root, run_cli, tmp_path):
    board = tmp_path / "b.md"
    for args, message in ((["--audio-root", tmp_path], "--audio-root is for the site"),
                          (["--site", tmp_path / "s", "--check"], "--check compares leaderboard.md only"),
                          (["--site", tmp_path / "s", "--audio-root", tmp_path / "none"],
                           "--audio-root is not a folder")):
        code, _, err = run_cli("leaderboard", "--submissions", board_root, "--output", board, *args)
        assert code == 2 and message in err and not board.exists()


# -- in a real browser -------------------------------------------------------------------------------


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run does: apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    """A page that records console errors, uncaught exceptions and any request that is not file://."""
    context = browser.new_context()
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(f"exception: {e}"))
    page.on("request", lambda r: None if r.url.startswith("file://") else page.problems.append(f"request {r.url}"))
    yield page
    context.close()


def _board_ids(page) -> list[str]:
    return page.eval_on_selector_all("#board-demo tbody tr:not([hidden])",
                                     "rows => rows.map(r => r.dataset.submission)")


def test_the_site_works_in_chromium_from_file_urls(site, page):
    page.goto((site / "index.html").as_uri())
    ranked = _board_ids(page)
    assert ranked[0] == "perfect" and sorted(ranked) == ["perfect", "random-trained", "random-zero", "with-folder-task"]
    assert page.locator("#not-scored").is_visible() and "folder:mine" in page.inner_text("#unscored")
    # sort by the main metric: ascending, then descending
    header = page.locator("#board-demo thead th", has_text="mAP@10 [95% CI]")
    header.click()
    assert _board_ids(page) == ranked[::-1] and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert _board_ids(page) == ranked
    # filters: zero-shot systems only, then trained on demo/train only, then hide the † row
    page.select_option("#filter-training", "zero-shot")
    assert _board_ids(page) == [i for i in ranked if i in ("random-zero", "with-folder-task")]
    page.select_option("#filter-training", "all")
    page.select_option("#filter-dataset", "demo/train")
    assert _board_ids(page) == ["random-trained"]
    page.select_option("#filter-dataset", "any")
    page.check("#filter-contaminated")
    assert "perfect" not in _board_ids(page) and len(_board_ids(page)) == 3
    page.select_option("#filter-show", "reported")
    assert not page.locator("#board-demo").is_visible()
    page.select_option("#filter-show", "both")
    assert page.locator("#board-demo").is_visible()
    assert page.evaluate("document.querySelector('img.plot').naturalWidth") > 0  # the SVG plot loaded

    # a submission page, with its training curves
    page.click("#board-demo a[href='submissions/random-trained.html']")
    assert page.title().startswith("random-trained")
    assert page.locator("#training-curves").is_visible()
    assert page.evaluate("document.getElementById('training-curves').naturalWidth") > 0
    assert "best validation mAP@10 0.4000 at epoch 4" in page.inner_text("main")
    assert page.locator("a", has_text="javascript:alert(1)").count() == 0

    # its query browser: worst first, then a search
    page.click("a:has-text('Browse its')")
    scores = page.eval_on_selector_all("#queries tbody tr", "rows => rows.map(r => parseFloat(r.dataset.score))")
    page.click("#sort-worst")
    worst_first = page.eval_on_selector_all("#queries tbody tr", "rows => rows.map(r => parseFloat(r.dataset.score))")
    assert worst_first == sorted(scores) and worst_first != scores
    first_caption = page.inner_text("#queries tbody tr:first-child td:nth-child(2)").splitlines()[0]
    page.fill("#query-search", first_caption.lower())
    shown = page.eval_on_selector_all("#queries tbody tr:not([hidden])", "rows => rows.length")
    assert 1 <= shown < len(scores) and page.inner_text("#query-count") == str(shown)

    # a comparison
    page.goto((site / "submissions/perfect.html").as_uri())
    page.click("a:has-text('compare with random-zero')")
    assert page.title().startswith("perfect vs. random-zero")
    won, lost = int(page.inner_text("#won")), int(page.inner_text("#lost"))
    assert won > 0 and lost == 0 and "significant" in page.inner_text("main")
    assert page.problems == []


def test_query_hits_in_the_browser_match_the_ground_truth(site, page, board_root):
    board = build_board(board_root)
    row = next(r for r in board.task("demo").rows if r.submission.id == "random-zero")
    gt = row.evaluation.task.ground_truth
    expected = sum(int(gt.corpus[int(i)] in gt.relevance[q])
                   for q, ranked in zip(gt.query_ids, row.evaluation.ranking.indices[:, :10], strict=True)
                   for i in ranked)
    page.goto((site / "queries/demo/random-zero.html").as_uri())
    assert page.locator("#queries li.hit").count() == expected
    ap = np.array(page.eval_on_selector_all("#queries tbody tr", "rows => rows.map(r => parseFloat(r.dataset.score))"))
    assert np.allclose(ap, row.scores.per_query["mAP@10"], atol=1e-9)
    assert page.problems == []
