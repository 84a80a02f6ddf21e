"""`larb baseline sweep`: one baseline trained and scored at every point of a settings grid (the
shape of the CS224N report's Tables 1 and 3: each metric and each uniformity figure against the
swept setting).

Each point gets its own run folder (`OUTPUT/runs/<point>`), submission (`OUTPUT/submissions/<id>`)
and figures (`OUTPUT/points/<point>.json`). The sweep runs the points one after the other and is
resumable: a point whose figures exist is read back, not redone, and an interrupted training
resumes from its `last.pt`. `OUTPUT/sweep.md`, `sweep.json` and `sweep.png` hold the table and the plot.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baselines.adapters.baseline_checkpoint import BaselineModel
from baselines.analysis import analyze
from baselines.registry import get_baseline
from baselines.runner import run_baseline, train_baseline
from benchmark.atomic import atomic_write_bytes, atomic_write_text
from benchmark.errors import LarbError
from benchmark.evaluation import evaluate
from benchmark.tasks import get_task


def parse_grid(items: Sequence[str], name: str) -> list[tuple[str, list[str]]]:
    """`["joint_dim=128,256"]` -> `[("joint_dim", ["128", "256"])]`, each key a setting of `name`."""
    defaults = get_baseline(name).defaults
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not choices:
            raise LarbError(f"--grid {item!r} is not KEY=V1,V2,...", fix="write e.g. --grid joint_dim=128,256.")
        defaults.overridden([f"{key}={choice}" for choice in choices])  # each value checked by its type
        grid.append((key.strip(), choices))
    if not grid:
        raise LarbError("no --grid given.", fix="write e.g. --grid joint_dim=128,256.")
    return grid


def _slug(point: dict[str, str]) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", "-".join(f"{k}-{v}" for k, v in point.items()).lower()).strip("-.")


def sweep(name: str, grid: Sequence[tuple[str, list[str]]], train_tasks: Sequence[str], val_task: str | None,
          task: str, output: Path, overrides: Sequence[str] = (), progress: bool = True) -> list[dict[str, Any]]:
    """Train, rank and analyse `name` at every point of `grid`; the figures of each point, in grid order."""
    eval_task = get_task(task)
    keys = [key for key, _ in grid]
    rows = []
    for values in itertools.product(*(choices for _, choices in grid)):
        point = dict(zip(keys, values, strict=True))
        slug = _slug(point)
        figures_path = output / "points" / f"{slug}.json"
        if figures_path.is_file():
            rows.append(json.loads(figures_path.read_text("utf-8")))
            continue
        settings = [*overrides, *(f"{k}={v}" for k, v in point.items())]
        run = train_baseline(name, list(train_tasks), val_task, output / "runs" / slug, settings, progress)
        run_time = [s for s in settings if s.split("=", 1)[0] not in get_baseline(name).model_keys]
        submission = run_baseline(name, task, [run.best_checkpoint], output / "submissions" / f"{name}-{slug}",
                                  run_time, progress)
        result = evaluate(submission, eval_task)
        figures, _, _ = analyze(BaselineModel(checkpoint=str(run.best_checkpoint), settings=";".join(run_time)),
                                eval_task, progress=progress)
        row = {**point, **result.metrics, "best_epoch": run.best["epoch"],
               **{f"{side}_{m}": figures[side][m] for side in ("audio", "text") for m in ("sigma", "h")},
               "modality_gap": figures["modality_gap"], "N10_skew": figures["hubness"]["skewness"]}
        atomic_write_text(figures_path, json.dumps(row, indent=1) + "\n")
        rows.append(row)
    _write_outputs(rows, keys, output, f"{name} on {eval_task.id}")
    return rows


def _write_outputs(rows: list[dict[str, Any]], keys: list[str], output: Path, title: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from tabulate import tabulate

    columns = list(rows[0])
    atomic_write_text(output / "sweep.json", json.dumps(rows, indent=1) + "\n")
    table = [[f"{row[c]:.4f}" if isinstance(row[c], float) else row[c] for c in columns] for row in rows]
    atomic_write_text(output / "sweep.md", f"# {title}\n\n" + tabulate(table, headers=columns, tablefmt="github",
                                                                       disable_numparse=True) + "\n")
    measured = [c for c in columns if c not in keys and c != "best_epoch"]
    labels = [", ".join(str(row[k]) for k in keys) for row in rows]
    figure, axes = plt.subplots(len(measured), 1, figsize=(6, 1.8 * len(measured)), sharex=True)
    for axis, column in zip(axes, measured, strict=True):
        axis.plot(labels, [row[column] for row in rows], marker="o")
        axis.set_ylabel(column, fontsize=8)
    axes[-1].set_xlabel(", ".join(keys))
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    atomic_write_bytes(output / "sweep.png", buffer.getvalue())
