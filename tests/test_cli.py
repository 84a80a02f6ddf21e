"""The `larb` command line: demo, tasks, evaluate, validate, compare, and user errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest

from benchmark import demo, tasks
from benchmark.results import result_schema
from benchmark.tasks import get_task, task_ids

REPO = Path(__file__).resolve().parents[1]
LARB = Path(sys.executable).with_name("larb")


@pytest.fixture
def demo_gt():
    return get_task("demo").ground_truth


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty asset cache and no loaded tasks (restored afterwards)."""
    monkeypatch.setenv("LARB_CACHE_DIR", str(tmp_path / "fresh-cache"))
    tasks._load_registered.cache_clear()
    yield tmp_path / "fresh-cache"
    tasks._load_registered.cache_clear()


def test_demo_runs_from_a_fresh_cache(fresh_cache, run_cli, monkeypatch):
    # the harness alone: live runs offered by installed plug-ins are tested by their owners
    monkeypatch.setattr(demo, "plugins", SimpleNamespace(declared=lambda group: []))
    code, out, err = run_cli("demo", "--submissions", REPO / "submissions")
    assert code == 0, err
    assert "demo task: 300 captions, 60 generated clips" in out
    assert (fresh_cache / "demo" / "v1-test" / "captions.csv").is_file()
    chance = [line for line in out.splitlines() if "`demo-random`" in line]
    assert len(chance) == 1 and "Chance level (uniform random, seed 0)" in chance[0]
    main_cell = chance[0].split("|")[4]
    assert 0 < float(main_cell.split()[0]) < 0.15  # chance mAP@10 on 60 clips is about 0.05


def test_demo_skips_a_plug_in_whose_extra_is_missing(run_cli, monkeypatch):
    class Missing:
        name = "needs-torch"

        def load(self):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(demo, "plugins", SimpleNamespace(declared=lambda group: [Missing()]))
    code, out, _ = run_cli("demo", "--submissions", REPO / "submissions")
    assert code == 0 and "(needs-torch: skipped, torch is not installed)" in out and "`demo-random`" in out


def test_demo_outside_the_repository_says_the_kept_submissions_are_left_out(run_cli, monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "plugins", SimpleNamespace(declared=lambda group: []))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli("demo")
    assert code == 0 and "(no submissions/ folder here" in out and "run from the repository root" in out
    assert "0 systems scored" in out


def test_tasks_lists_every_task(run_cli, shared_mirror):
    code, out, _ = run_cli("tasks")
    assert code == 0
    for task_id in task_ids():
        assert task_id in out
    clotho = next(line for line in out.splitlines() if line.startswith("clotho-v2.1/evaluation "))
    assert "5225" in clotho and "1045" in clotho
    code, out, _ = run_cli("tasks", "--json")
    listed = {row["task"]: row for row in json.loads(out)}
    assert set(listed) == set(task_ids())
    assert listed["demo"]["queries"] == 300
    assert listed["clotho-v2.1/evaluation-graded"]["main metric"] == "nDCG@10"


def test_tasks_queries(run_cli, demo_gt):
    code, out, _ = run_cli("tasks", "--queries", "demo")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 300
    assert lines[0] == f"{demo_gt.query_ids[0]}\t{demo_gt.query_texts[0]}"


def test_evaluate_json(run_cli, write_ranking, demo_gt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_ranking(tmp_path / "my-system.csv", demo_gt, seed=2)
    code, out, err = run_cli("evaluate", path, "--task", "demo", "--json")
    assert code == 0, err
    record = json.loads(out)
    jsonschema.validate(record, result_schema())
    assert record["submission"]["id"] == "my-system" and record["task"]["id"] == "demo"
    written = tmp_path / "results" / "my-system" / "demo.json"
    assert json.loads(written.read_text("utf-8")) == record


def test_evaluate_table_and_submission_folder(run_cli, tmp_path):
    out_path = tmp_path / "r.json"
    code, out, _ = run_cli("evaluate", REPO / "submissions" / "demo-random", "--task", "demo",
                           "--output", out_path)
    assert code == 0
    assert "demo-random on demo (v1), 300 queries" in out and "95% CI (jackknife)" in out
    assert json.loads(out_path.read_text("utf-8"))["submission"]["id"] == "demo-random"


def test_evaluate_folder_task(run_cli, tmp_path, write_csv, make_wav):
    folder = tmp_path / "mine"
    names = [f"clip{i:02d}.wav" for i in range(12)]
    write_csv(folder / "captions.csv", ["file_name", "caption_1"],
              [[n, f"Sound number {i}."] for i, n in enumerate(names)])
    for n in names:
        make_wav(folder / n)
    ranking = write_csv(tmp_path / "run.csv", ["caption", *(f"fname_{i}" for i in range(1, 11))],
                        [[f"Sound number {i}.", n, *[m for m in names if m != n][:9]]
                         for i, n in enumerate(names)])
    code, out, err = run_cli("evaluate", ranking, "--task", folder, "--json", "--output", tmp_path / "r.json")
    assert code == 0, err
    record = json.loads(out)
    assert record["task"]["id"] == "folder:mine" and record["metrics"]["mAP@10"] == 1.0


def test_validate_writes_nothing(run_cli, write_ranking, demo_gt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_ranking(tmp_path / "run.csv", demo_gt)
    code, out, _ = run_cli("validate", path, "--task", "demo")
    assert code == 0 and out.startswith("OK: ") and "300 queries" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv"]


def _compare_rows(out: str) -> dict[str, list[str]]:
    """The table rows of `larb compare`, by label: [value, interval]."""
    rows = {}
    for line in out.splitlines()[3:]:
        if line.startswith("paired"):
            break
        label, value, interval = re.match(r"(.+?)\s{2,}(\S+)\s+(\[.*\])$", line).groups()
        rows[label] = [value, interval]
    return rows


def test_compare_prints_both_systems_the_difference_with_its_interval_and_the_p_value(
        run_cli, write_ranking, demo_gt, tmp_path):
    perfect = write_ranking(tmp_path / "perfect.csv", demo_gt, perfect=True)
    random_a = write_ranking(tmp_path / "random_a.csv", demo_gt, seed=1)
    code, out, _ = run_cli("compare", perfect, random_a, "--task", "demo")
    assert code == 0 and out.startswith("mAP@10 on demo, 300 paired queries")
    rows = _compare_rows(out)
    assert list(rows) == ["perfect", "random_a", "difference (perfect - random_a)"]
    assert rows["perfect"] == ["1.0000", "[1.0000, 1.0000]"]
    difference = float(rows["difference (perfect - random_a)"][0])
    low, high = map(float, rows["difference (perfect - random_a)"][1].strip("[]").split(", "))
    assert low < difference < high and difference == pytest.approx(1 - float(rows["random_a"][0]), abs=1e-4)
    assert "p = 0.0001 (significant at 0.05" in out


def test_compare_labels_two_submissions_of_the_same_name_by_path(run_cli, write_ranking, demo_gt, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_ranking(tmp_path / "a" / "run.csv", demo_gt, seed=1)
    second = write_ranking(tmp_path / "b" / "run.csv", demo_gt, seed=2)
    code, out, _ = run_cli("compare", first, second, "--task", "demo", "--metric", "R@10")
    assert code == 0 and list(_compare_rows(out))[:2] == [str(first), str(second)]
    code, out, _ = run_cli("compare", first, first, "--task", "demo", "--metric", "R@10")
    assert code == 0 and "p = 1.0000 (not significant at 0.05" in out


def test_compare_refuses_a_metric_the_task_does_not_have(run_cli, write_ranking, demo_gt, tmp_path):
    path = write_ranking(tmp_path / "run.csv", demo_gt, seed=1)
    code, _, err = run_cli("compare", path, path, "--task", "demo", "--metric", "mAP@16")
    assert code == 2 and "task demo has no metric 'mAP@16'" in err and "mAP@10, R@1, R@5, R@10" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "missing.csv", "--task", "demo"], "ranking file not found"),
    (["evaluate", "missing.csv", "--task", "no-such-task"], "unknown task 'no-such-task'"),
    (["evaluate", str(REPO / "submissions" / "demo-random"), "--task", "demo-train"],
     "the submission has no ranking for task demo-train"),
])
def test_user_errors_exit_2_with_one_line(run_cli, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert err.startswith("larb: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert "Fix:" in err and not (tmp_path / "results").exists()


def _larb(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LARB), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=os.environ.copy(), check=False)


def test_console_script_on_a_bad_csv(write_ranking, demo_gt, tmp_path):
    if not LARB.exists():
        pytest.skip(f"the larb console script is not installed beside {sys.executable}")
    path = write_ranking(tmp_path / "bad.csv", demo_gt)
    lines = path.read_text("utf-8").splitlines()
    lines[7] = lines[7].rsplit(",", 1)[0]  # line 8 loses its tenth candidate
    path.write_text("\n".join(lines) + "\n", "utf-8")
    result = _larb("evaluate", path, "--task", "demo", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"larb: error: {path}, line 8: expected 12 cells, found 11.")
    assert not (tmp_path / "results").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_console_script_version_and_tasks(tmp_path):
    if not LARB.exists():
        pytest.skip(f"the larb console script is not installed beside {sys.executable}")
    result = _larb("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("larb ")
    result = _larb("tasks", cwd=tmp_path)
    assert result.returncode == 0 and "demo-train" in result.stdout


def test_a_missing_optional_dependency_is_one_line_and_exit_2(monkeypatch, capsys):
    from benchmark import cli

    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(cli, "_cmd_tasks", needs_torch)
    assert cli.main(["tasks"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch" in err and "pip install 'larb[all]'" in err
    assert "Traceback" not in err


def test_help_lists_every_command_and_evaluate_imports_no_plug_in(tmp_path):
    """`larb --help` loads every command group; `larb evaluate` loads none (no torch, no datasets)."""
    shown = subprocess.run([sys.executable, "-m", "benchmark.cli", "--help"], capture_output=True, text=True,
                           check=False)
    assert shown.returncode == 0, shown.stderr
    for command in ("demo", "tasks", "validate", "evaluate", "compare", "leaderboard", "baseline", "data"):
        assert f"    {command}" in shown.stdout, command
    probe = ("import sys; from benchmark.cli import main; "
             f"code = main(['evaluate', {str(REPO / 'submissions' / 'demo-random')!r}, '--task', 'demo', "
             f"'--output', {str(tmp_path / 'r.json')!r}]); "
             "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'baselines', 'datasets_builders', "
             "'torch', 'datasets'}))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stderr
