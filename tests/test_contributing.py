"""The way in for a team: the pull-request workflow runs what .ci/run runs, and CONTRIBUTING.md's
commands are real."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_every_workflow_command_is_a_line_of_ci_run():
    workflow = yaml.safe_load((REPO / ".github/workflows/submissions.yml").read_text("utf-8"))
    ci = set(_lines((REPO / ".ci/run").read_text("utf-8")))
    commands = [line for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
                for line in _lines(step["run"])]
    assert commands and [c for c in commands if c not in ci] == []
    # and the checks a reviewer relies on are among them
    assert {"larb submission check submissions/*/", "larb leaderboard --check", "python -m pytest -q"} <= set(commands)
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True


def test_contributing_names_commands_that_exist(run_cli):
    text = (REPO / "CONTRIBUTING.md").read_text("utf-8")
    commands = re.findall(r"^\s*larb ([a-z]+(?: [a-z]+)?)", text, re.MULTILINE)
    assert {"submission check", "leaderboard"} <= {c if c.startswith("submission") else c.split()[0] for c in commands}
    for command in sorted(set(commands)):
        words = command.split()
        if words[0] == "submission":
            words = words[:2]
        else:
            words = words[:1]
        try:
            code = run_cli(*words, "--help")[0]
        except SystemExit as exit_:  # argparse's --help exits 0
            code = exit_.code
        assert code == 0, command
