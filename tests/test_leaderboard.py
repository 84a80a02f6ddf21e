"""leaderboard.md: determinism, --check, the † mark, tie marking, metadata errors."""

from __future__ import annotations

from pathlib import Path

from conftest import PAIR, SINGLE
from conftest import reported_member as _member

from benchmark import board, leaderboard

REPO = Path(__file__).resolve().parents[1]


def rows_of(markdown: str) -> dict[str, str]:
    """submission id -> its table row."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("|") and "`" in line:
            rows[line.split("`")[1]] = line
    return rows


def test_build_is_deterministic(make_submission, run_cli, tmp_path):
    make_submission("random-a", seed=1)
    make_submission("perfect", perfect=True)
    first = leaderboard.build(make_submission.root)
    assert first == leaderboard.build(make_submission.root)
    assert first.startswith("# LARB leaderboard") and "## demo (v1)" in first
    assert list(rows_of(first)) == ["perfect", "random-a"]  # best first
    out = tmp_path / "board.md"
    assert run_cli("leaderboard", "--submissions", make_submission.root, "--output", out)[0] == 0
    data = out.read_bytes()
    assert run_cli("leaderboard", "--submissions", make_submission.root, "--output", out)[0] == 0
    assert out.read_bytes() == data == first.encode("utf-8")


def test_reported_figures_are_kept_apart(make_submission):
    make_submission("random-a")
    text = leaderboard.build(make_submission.root)
    assert "## clotho-v2.1/evaluation (v1)" in text and "Reported by their authors" in text
    clotho = text.split("## clotho-v2.1/evaluation (v1)")[1].split("\n## ")[0]
    challenge = text.split("## dcase2022-task6b/challenge-evaluation (v1)")[1].split("\n## ")[0]
    assert "Pellegrini, DCASE 2022 Task 6b technical report, Table 1 (development-testing split)" in clotho
    assert "| 0.068 " in clotho and "| 0.061 " in challenge  # each column on its own test set, as printed
    assert "challenge evaluation set" not in clotho and "never rescored" in challenge
    assert "reproduced here" not in challenge  # nothing can be rescored on a reported-only task


def test_check_detects_a_stale_file(make_submission, run_cli, tmp_path):
    make_submission("random-a")
    out = tmp_path / "board.md"
    code, _, err = run_cli("leaderboard", "--check", "--submissions", make_submission.root, "--output", out)
    assert code == 1 and "stale" in err  # missing
    run_cli("leaderboard", "--submissions", make_submission.root, "--output", out)
    code, out_text, _ = run_cli("leaderboard", "--check", "--submissions", make_submission.root,
                                "--output", out)
    assert code == 0 and "up to date" in out_text
    out.write_text(out.read_text("utf-8").replace("random-a", "random-b"), "utf-8")
    code, _, err = run_cli("leaderboard", "--check", "--submissions", make_submission.root, "--output", out)
    assert code == 1 and "stale" in err and len(err.strip().splitlines()) == 1
    make_submission("random-c", seed=3)  # a new submission makes a fresh file stale too
    run_cli("leaderboard", "--submissions", make_submission.root, "--output", out)
    make_submission("random-d", seed=4)
    assert run_cli("leaderboard", "--check", "--submissions", make_submission.root, "--output", out)[0] == 1


def test_dagger_marks_training_on_the_evaluation_data(make_submission):
    make_submission("on-test", seed=1, training_data=[("demo", "test")])
    make_submission("on-train", seed=2, training_data=[("demo", "train")])
    make_submission("zero-shot", seed=3)
    rows = rows_of(leaderboard.build(make_submission.root))
    assert "`on-test` †" in rows["on-test"]
    assert "†" not in rows["on-train"] and "†" not in rows["zero-shot"]
    assert "demo train" in rows["on-train"] and "none (zero-shot)" in rows["zero-shot"]


def test_identical_rankings_are_tied(make_submission):
    make_submission("copy-a", seed=7)
    make_submission("copy-b", seed=7)
    rows = rows_of(leaderboard.build(make_submission.root))
    assert "tied (p=1.00)" in rows["copy-b"]
    assert "tied" not in rows["copy-a"]  # the first row is compared with nothing


def test_perfect_and_random_are_not_tied(make_submission):
    make_submission("perfect", perfect=True)
    make_submission("random", seed=1)
    rows = rows_of(leaderboard.build(make_submission.root))
    assert "tied" not in rows["random"] and "p=0.0001" in rows["random"]
    assert "1.0000 [1.0000, 1.0000]" in rows["perfect"]


def test_missing_metadata_field_exits_2(make_submission, run_cli, tmp_path):
    make_submission("no-team", team=None)
    code, _, err = run_cli("leaderboard", "--submissions", make_submission.root,
                           "--output", tmp_path / "b.md")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'team' is a required property" in err and "metadata.yaml" in err
    assert not (tmp_path / "b.md").exists()


def test_id_differing_from_folder_exits_2(make_submission, run_cli, tmp_path):
    make_submission("folder-name", id="other-name")
    code, _, err = run_cli("leaderboard", "--submissions", make_submission.root,
                           "--output", tmp_path / "b.md")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "id 'other-name' differs from the folder name 'folder-name'" in err


def test_bad_field_value_names_the_field(make_submission, run_cli, tmp_path):
    make_submission("bad-params", parameters={"total": -1, "trainable": 0})
    code, _, err = run_cli("leaderboard", "--submissions", make_submission.root,
                           "--output", tmp_path / "b.md")
    assert code == 2 and "metadata field parameters/total" in err


def test_committed_leaderboard_is_fresh(run_cli, full_mirror):
    """The CI rule: leaderboard.md equals a fresh rebuild from submissions/."""
    code, _, err = run_cli("leaderboard", "--check", "--submissions", REPO / "submissions",
                           "--output", REPO / "leaderboard.md")
    assert code == 0, err


def test_the_board_puts_the_best_reproducing_run_beside_the_reported_figure(make_submission, monkeypatch):
    make_submission("ntxent-perfect", perfect=True, baselines=[_member("panns-sbert-cnn14", loss="ntxent")])
    make_submission("ntxent-random", seed=3, baselines=[_member("panns-sbert-cnn14", loss="ntxent")])
    make_submission("max-random", seed=4, baselines=[_member("panns-sbert-cnn14", loss="triplet-max")])
    monkeypatch.setattr(board, "load_reported", lambda: {"demo": [SINGLE, PAIR]})
    text = leaderboard.build(make_submission.root)
    single = next(line for line in text.splitlines() if line.startswith("| PANNs CNN14 + SBERT, NT-Xent"))
    assert "`ntxent-perfect`" in single and "| 1.0000 (+0.7710)" in single
    pair = next(line for line in text.splitlines() if line.startswith("| an ensemble"))
    assert "not yet" in pair
    # a reported row says "not yet" until a run declares its configuration
    assert "| not yet |" in leaderboard.build(make_submission.root.parent / "none").replace("  ", "")
