"""`larb submission check`: what a reviewer checks, each failure named, the rows a submission adds."""

from __future__ import annotations

import datetime as dt

import pytest

from benchmark.submission_check import check_submission


def _failures(report) -> dict[str, str]:
    return {f.check: f.detail for f in report.findings if not f.ok}


def test_a_good_submission_passes_and_says_where_its_row_goes(make_submission, run_cli, tmp_path):
    make_submission("random-a", seed=1)
    make_submission("perfect", perfect=True)
    candidate = make_submission("candidate", seed=2, links={"paper": "https://arxiv.org/abs/2209.14275"})
    report = check_submission(candidate, make_submission.root)
    assert report.passed, _failures(report)
    (row, position, of), = report.rows
    assert of == 3 and position == (2 if row.scores.means["mAP@10"] > _map(make_submission.root, "random-a") else 3)
    code, out, _ = run_cli("submission", "check", candidate, "--board", make_submission.root)
    assert code == 0 and "rows it adds to the board" in out and f"{position} of 3" in out and "passed." in out


def _map(root, submission_id: str) -> float:
    from benchmark.board import build_board

    rows = build_board(root).task("demo").rows
    return next(r.scores.means["mAP@10"] for r in rows if r.submission.id == submission_id)


@pytest.mark.parametrize("fields, check, message", [
    ({"links": {"paper": "https://arxiv.org/abs/..."}}, "links.paper", "looks like a placeholder"),
    ({"links": {"code": "https://github.com/YOUR_NAME/repo"}}, "links.code", "looks like a placeholder"),
    ({"links": {"paper": "https://example.com/paper.pdf"}}, "links.paper", "looks like a placeholder"),
    ({"links": {"code": "javascript:alert(1)"}}, "links.code", "is not an http(s) address"),
    ({"licence": "MIT-ish"}, "licence", "is not an SPDX licence expression"),
    ({"licence": "mit"}, "licence", "as the SPDX id 'MIT'"),
    ({"date": "2999-01-01"}, "date", "is in the future"),
    ({"parameters": {"total": 10, "trainable": 11}}, "parameters", "exceeds total"),
    ({"parameters": {"total": 10, "trainable": 0}, "training_data": [{"dataset": "demo", "split": "train"}]},
     "parameters", "declares training data but no trainable parameters"),
    ({"ensemble": True}, "ensemble", "declares its ensemble_method"),
    ({"rankings": {"demo": "demo.csv", "folder:mine": "demo.csv"}}, "ranking folder:mine", "not a registered task"),
])
def test_each_problem_is_one_named_failure(make_submission, fields, check, message):
    folder = make_submission("candidate", seed=2, **fields)
    report = check_submission(folder, make_submission.root, today=lambda: dt.date(2026, 12, 2))
    failures = _failures(report)
    assert list(failures) == [check] and message in failures[check]


def test_problems_are_all_reported_at_once_and_the_command_exits_1(make_submission, run_cli):
    folder = make_submission("candidate", seed=2, licence="nope", date="2999-01-01",
                             links={"paper": "https://arxiv.org/abs/..."})
    code, out, _ = run_cli("submission", "check", folder)
    assert code == 1 and out.count("  FAIL  ") == 3 and "failed: fix each FAIL" in out


def test_a_ranking_the_harness_refuses_fails_the_check_with_its_reason(make_submission):
    folder = make_submission("candidate", seed=2)
    (folder / "demo.csv").write_text("caption,file_name_1\nno such caption,x.wav\n", "utf-8")
    failures = _failures(check_submission(folder, make_submission.root))
    assert list(failures) == ["ranking demo"] and "demo.csv" in failures["ranking demo"]


def test_invalid_metadata_is_one_failure_and_a_missing_folder_exits_2(make_submission, run_cli, tmp_path):
    folder = make_submission("candidate", seed=2, team=None)
    failures = _failures(check_submission(folder))
    assert list(failures) == ["metadata"] and "team" in failures["metadata"]
    code, _, err = run_cli("submission", "check", tmp_path / "nowhere")
    assert code == 2 and "not a submission folder" in err and "Traceback" not in err


def test_a_declared_training_log_must_parse(make_submission):
    folder = make_submission("candidate", seed=2, training_log="log.jsonl")
    (folder / "log.jsonl").write_text('{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}\n', "utf-8")
    failures = _failures(check_submission(folder))
    assert list(failures) == ["training_log"] and "line 1" in failures["training_log"]


def test_the_committed_submissions_pass(run_cli):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "submissions"
    code, out, _ = run_cli("submission", "check", *sorted(p for p in root.iterdir() if p.is_dir()), "--board", root)
    assert code == 0 and "FAIL" not in out
