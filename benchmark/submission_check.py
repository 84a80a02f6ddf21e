"""`larb submission check DIR`: everything a reviewer checks before a submission joins the board.

The folder's metadata against the schema (as `load_submission` does), then what a schema cannot
say: links that are real addresses rather than placeholders, an SPDX licence expression (checked
by the `license-expression` package, which carries the SPDX list), a date not in the future,
parameter counts that add up, a training log that parses, and every declared ranking scored by
the harness. It reports every problem at once and the rows the submission would add.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from benchmark.board import NOT_REGISTERED, Board, Row, board_order, build_board, score_task
from benchmark.errors import LarbError
from benchmark.submission_folders import Submission, load_submission, training_history
from benchmark.tasks import TASKS

# Placeholders seen in templates and half-filled forms: "https://arxiv.org/abs/...", "example.com", "TODO".
_PLACEHOLDER = re.compile(r"\.\.\.|…|\bxxxx?\b|\bTODO\b|\bTBD\b|\bexample\.(com|org|net)\b|<[^>]*>|\{[^}]*\}|"
                          r"/(abs|pdf)/?$|YOUR[_-]|your[_-](name|repo|paper|id)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    ok: bool
    check: str
    detail: str


@dataclass(frozen=True)
class Report:
    submission_id: str
    findings: list[Finding]
    rows: list[tuple[Row, int, int]]  # (row, position it takes, rows on the task with it)

    @property
    def passed(self) -> bool:
        return all(f.ok for f in self.findings)


def _links(metadata: dict[str, Any]) -> Iterator[Finding]:
    for name, url in sorted(metadata.get("links", {}).items()):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or "." not in parsed.netloc:
            yield Finding(False, f"links.{name}", f"{url!r} is not an http(s) address")
        elif _PLACEHOLDER.search(url):
            yield Finding(False, f"links.{name}", f"{url!r} looks like a placeholder; give the real address "
                                                  "or remove the link")
        else:
            yield Finding(True, f"links.{name}", url)


def _licence(metadata: dict[str, Any]) -> Finding:
    from license_expression import get_spdx_licensing

    given = metadata["licence"]
    info = get_spdx_licensing().validate(given)
    if info.errors:
        return Finding(False, "licence", f"{given!r} is not an SPDX licence expression ({'; '.join(info.errors)}); "
                                         "see https://spdx.org/licenses/ (e.g. MIT, Apache-2.0, CC-BY-4.0)")
    if info.normalized_expression != given:
        return Finding(False, "licence", f"write {given!r} as the SPDX id {info.normalized_expression!r}")
    return Finding(True, "licence", given)


def _date(metadata: dict[str, Any], today: dt.date) -> Finding:
    date = dt.date.fromisoformat(metadata["date"])
    if date > today:
        return Finding(False, "date", f"{date} is in the future (today is {today} UTC)")
    return Finding(True, "date", str(date))


def _parameters(metadata: dict[str, Any]) -> Finding:
    total, trainable = metadata["parameters"]["total"], metadata["parameters"]["trainable"]
    if trainable > total:
        return Finding(False, "parameters", f"trainable ({trainable:,}) exceeds total ({total:,})")
    if metadata["training_data"] and trainable == 0:
        return Finding(False, "parameters", "the system declares training data but no trainable parameters")
    return Finding(True, "parameters", f"{trainable:,} trainable of {total:,}")


def _ensemble(metadata: dict[str, Any]) -> Finding:
    members = metadata.get("members", [])
    if metadata["ensemble"] and "ensemble_method" not in metadata:
        return Finding(False, "ensemble", "an ensemble declares its ensemble_method (score-mean or embedding-mean)")
    if not metadata["ensemble"] and len(members) > 1:
        return Finding(False, "ensemble", f"{len(members)} members are listed but ensemble is false")
    return Finding(True, "ensemble", "yes" if metadata["ensemble"] else "no")


def _training_log(submission: Submission) -> Finding | None:
    if "training_log" not in submission.metadata:
        return None
    try:
        history = training_history(submission)
    except LarbError as exc:
        return Finding(False, "training_log", str(exc))
    return Finding(True, "training_log", f"{len(history)} epochs")


def _place(row: Row, board_rows: list[Row], main: str) -> tuple[int, int]:
    """The position `row` takes among a task's current rows (other submissions of the same id left out)."""
    others = [r for r in board_rows if r.submission.id != row.submission.id]
    return 1 + sum(board_order(r, main) < board_order(row, main) for r in others), len(others) + 1


def current_board(board_root: str | Path | None) -> Board | None:
    """The board the rows are placed on (None when there is none to place them on)."""
    return build_board(board_root) if board_root is not None and Path(board_root).is_dir() else None


def check_submission(folder: str | Path, board_root: str | Path | Board | None = None,
                     today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date()) -> Report:
    """Every check on one submission folder; `board_root` (the board's submissions folder, or the
    board already scored) places its rows."""
    folder = Path(folder)
    try:
        submission = load_submission(folder)
    except LarbError as exc:
        return Report(folder.name, [Finding(False, "metadata", str(exc))], [])
    metadata = submission.metadata
    findings = [Finding(True, "metadata", "matches the schema"), *_links(metadata), _licence(metadata),
                _date(metadata, today()), _parameters(metadata), _ensemble(metadata)]
    log = _training_log(submission)
    if log is not None:
        findings.append(log)
    board = board_root if isinstance(board_root, Board) else current_board(board_root)
    rows = []
    for task_id in metadata["rankings"]:
        if task_id not in TASKS:
            findings.append(Finding(False, f"ranking {task_id}", NOT_REGISTERED))
            continue
        scored, failed = score_task(task_id, [submission])
        for entry in failed:
            findings.append(Finding(False, f"ranking {task_id}", entry.reason))
        for row in scored:
            main = TASKS[task_id].main_metric
            current = next((t.rows for t in board.tasks if t.id == task_id), []) if board else []
            position, of = _place(row, current, main)
            rows.append((row, position, of))
            findings.append(Finding(True, f"ranking {task_id}", f"{main} {row.scores.means[main]:.4f}"))
    return Report(submission.id, findings, rows)

