"""`larb leaderboard --site DIR`: the board as a static web site, from the same `Board` as leaderboard.md.

Pages: an index with every task's board (sortable, filterable), a plot per task, a page per
submission (metadata, scores with intervals, training curves from its `training_log`), a query
browser per submission and task, and a comparison of every pair of submissions on a task.

The site is a pure function of the board: no timestamps, fixed plot ids, sorted iteration, so a
rebuild is byte-identical. It loads nothing from the network (no CDN, no remote fonts; one
stylesheet and one script shipped in this package) and links pages relatively, so it works from
`file://` and from any static host. Everything a submission says is escaped by Jinja2's
autoescaping, and only http(s) links become links. The folder is written whole in a staging
sibling and swapped into place (`benchmark.output_folders`), so a failed build leaves the old site.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import numpy as np

from benchmark import output_folders, stats
from benchmark.board import Board, Row, TaskBoard
from benchmark.errors import LarbError
from benchmark.leaderboard import (
    figure,
    fmt,
    overlap_cell,
    params_cell,
    published,
    reported_cells,
    reported_columns,
    shown_metrics,
    training_cell,
    vs_above,
)
from benchmark.reported import Reported
from benchmark.results import HUBNESS_K
from benchmark.submission_folders import Submission, training_history
from benchmark.tasks import TaskSpec
from benchmark.version import __version__

_STATIC = ("site.css", "site.js")


def slug(text: str) -> str:
    """A file-name-safe form of a task id (`clotho-v2.1/evaluation` -> `clotho-v2.1__evaluation`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "__", text)


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("benchmark", "site_files"),
                              autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _training_keys(metadata: Mapping[str, Any]) -> list[str]:
    return [f"{d['dataset']}/{d['split']}" for d in metadata["training_data"]]


def _pair_file(a: Row, b: Row) -> str:
    """`A+B.html`: '+' is outside the id alphabet, so two pairs never share a name."""
    return f"{a.submission.id}+{b.submission.id}.html"


class SiteBuilder:
    """Renders every page of one board; `files()` yields (relative path, bytes)."""

    def __init__(self, board: Board, target: Path, audio_roots: Mapping[str, Path]) -> None:
        self.board = board
        self.target = target
        self.audio_roots = audio_roots
        self.env = _environment()

    def render(self, template: str, root: str, **context: Any) -> bytes:
        page = self.env.get_template(template).render(root=root, version=__version__, hubness_k=HUBNESS_K, **context)
        return page.encode("utf-8")

    def files(self) -> Iterator[tuple[str, bytes]]:
        for name in _STATIC:
            yield f"assets/{name}", resources.files("benchmark").joinpath("site_files", name).read_bytes()
        yield from self._index()
        for submission in self.board.submissions:
            yield from self._submission(submission)
        for task_board in self.board.tasks:
            for row in task_board.rows:
                yield f"queries/{slug(task_board.id)}/{row.submission.id}.html", self._queries(task_board, row)
            if len(task_board.rows) > 1:
                yield from self._comparisons(task_board)

    # -- index --------------------------------------------------------------------------------

    def _index(self) -> Iterator[tuple[str, bytes]]:
        from benchmark.site_plots import interval_plot

        tasks = []
        for task_board in self.board.tasks:
            spec, rows = task_board.spec, task_board.rows
            main, metrics = spec.main_metric, shown_metrics(spec)
            columns = reported_columns(spec, task_board.reported)
            entry: dict[str, Any] = {
                "id": spec.id, "slug": slug(spec.id), "version": spec.version, "title": spec.title, "main": main,
                "metrics": metrics, "other_metrics": [m for m in metrics if m != main], "summary": "",
                "rows": [self._board_row(task_board, position) for position in range(len(rows))],
                "reported": [self._reported_row(task_board, e, columns) for e in task_board.reported],
                "reported_columns": columns, "rescorable": isinstance(spec, TaskSpec)}
            if task_board.task is not None and rows:
                gt = task_board.task.ground_truth
                entry["summary"] = f"{gt.n_queries:,} queries, {len(gt.corpus):,} candidates; ground truth sha256 " \
                                   f"{gt.sha256[:16]}…"
                svg, entry["plot_width"], entry["plot_height"] = interval_plot(
                    [r.submission.id for r in rows], [r.scores.means[main] for r in rows],
                    [r.scores.intervals[main][0] for r in rows], [r.scores.intervals[main][1] for r in rows], main)
                yield f"plots/{slug(spec.id)}.svg", svg.encode("utf-8")
            tasks.append(entry)
        datasets = sorted({key for s in self.board.submissions for key in _training_keys(s.metadata)})
        yield "index.html", self.render("index.html.j2", "", title="LARB leaderboard", tasks=tasks,
                                        datasets=datasets, unscored=self.board.unscored)

    def _board_row(self, task_board: TaskBoard, position: int) -> dict[str, Any]:
        row, spec = task_board.rows[position], task_board.spec
        main = spec.main_metric
        low, high = row.scores.intervals[main]
        metadata = row.submission.metadata
        return {"id": row.submission.id, "position": position + 1, "system": metadata["system"],
                "main": f"{row.scores.means[main]:.4f} [{low:.4f}, {high:.4f}]", "main_value": row.scores.means[main],
                "others": [fmt(row.scores.means[m]) for m in shown_metrics(spec) if m != main],
                "vs_above": vs_above(task_board.rows, position, main),
                "skew": f"{row.hubness['skewness']:.2f}", "never": f"{row.hubness['never_retrieved']:.0%}",
                "never_value": row.hubness["never_retrieved"], "params": params_cell(metadata),
                "trainable": metadata["parameters"]["trainable"], "training": training_cell(metadata),
                "training_keys": " ".join(_training_keys(metadata)),
                "overlap": overlap_cell(row).removeprefix(" · "),
                "dagger": row.submission.trains_on(spec.evaluation_data),
                "contaminated": row.submission.trains_on(spec.evaluation_data)
                or bool(row.overlap and row.overlap.files)}

    def _reported_row(self, task_board: TaskBoard, entry: Reported, columns: dict[str, list[str]]) -> dict[str, Any]:
        run, missing, here = reported_cells(entry, task_board.rows, task_board.spec.main_metric)
        return {"system": entry.system, "cells": [published(entry.metrics.get(m)) for m in columns["metrics"]],
                "diagnostics": [figure(entry.diagnostics.get(d)) for d in columns["diagnostics"]],
                "params": entry.parameters, "note": entry.note,
                "training": entry.training_data, "source": entry.source,
                "run": run.submission.id if run else None, "status": missing, "here": here}

    # -- submission pages ---------------------------------------------------------------------

    def _submission(self, submission: Submission) -> Iterator[tuple[str, bytes]]:
        from benchmark.site_plots import training_curves

        metadata = submission.metadata
        context: dict[str, Any] = {
            "id": submission.id, "team": metadata["team"], "system": metadata["system"],
            "description": metadata["description"], "params": params_cell(metadata),
            "training": training_cell(metadata),
            "ensemble": "yes (" + metadata.get("ensemble_method", "method not given") + ")"
                        if metadata["ensemble"] else "no",
            "date": metadata["date"], "licence": metadata["licence"],
            "links": [(name, {"url": url, "safe": urlparse(url).scheme in ("http", "https")})
                      for name, url in sorted(metadata.get("links", {}).items())],
            "baselines": [f"{b['name']} " + " ".join(f"{k}={v}" for k, v in b["settings"].items())
                          for b in metadata.get("baselines", [])],
            "tasks": [self._submission_task(task_board, row) for task_board, row in self.board.rows_of(submission.id)],
            "unscored": [u for u in self.board.unscored if u.submission_id == submission.id], "curves": False}
        history = training_history(submission)
        if history:
            svg, context["curves_width"], context["curves_height"] = training_curves(history)
            best = max(history, key=lambda r: r["val_mAP@10"])
            context.update(curves=True, epochs=len(history), best_map=f"{best['val_mAP@10']:.4f}",
                           best_epoch=best["epoch"])
            yield f"plots/training-{submission.id}.svg", svg.encode("utf-8")
        yield f"submissions/{submission.id}.html", self.render("submission.html.j2", "../",
                                                                title=submission.id, s=context)

    def _submission_task(self, task_board: TaskBoard, row: Row) -> dict[str, Any]:
        rows = task_board.rows
        position = rows.index(row)
        compare = [{"id": other.submission.id, "file": _pair_file(*((row, other) if position < i else (other, row)))}
                   for i, other in enumerate(rows) if other is not row]
        return {"id": task_board.id, "slug": slug(task_board.id), "position": position + 1, "of": len(rows),
                "queries": row.evaluation.task.ground_truth.n_queries, "compare": compare,
                "metrics": [{"name": m, "mean": fmt(row.scores.means[m]), "low": fmt(row.scores.intervals[m][0]),
                             "high": fmt(row.scores.intervals[m][1])} for m in task_board.spec.metrics]}

    # -- query browser ------------------------------------------------------------------------

    def _audio(self, task_id: str, name: str, page_folder: Path) -> str | None:
        """A relative link from the page to the file's audio under `--audio-root`, when it is there."""
        root = self.audio_roots.get(task_id) or self.audio_roots.get("")
        if root is None:
            return None
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return quote(os.path.relpath(path, page_folder).replace(os.sep, "/"))

    def _queries(self, task_board: TaskBoard, row: Row) -> bytes:
        task = row.evaluation.task
        gt, spec = task.ground_truth, task.spec
        main, depth = spec.main_metric, spec.depth
        per_query = row.scores.per_query[main]
        page_folder = self.target / "queries" / slug(spec.id)
        audio_corpus = gt.direction == "t2a"
        queries = []
        for q, (query_id, text) in enumerate(zip(gt.query_ids, gt.query_texts, strict=True)):
            relevant = gt.relevance[query_id]
            top = [gt.corpus[int(i)] for i in row.evaluation.ranking.indices[q, :depth]]
            audio = (lambda name: self._audio(spec.id, name, page_folder)) if audio_corpus else (lambda name: None)
            queries.append({
                "position": q + 1, "id": query_id, "text": text,
                "audio": None if audio_corpus else self._audio(spec.id, query_id, page_folder),
                "relevant": [{"name": name, "grade": grade if gt.kind == "graded" else None, "audio": audio(name)}
                             for name, grade in sorted(relevant.items())],
                "top": [{"name": name, "hit": relevant.get(name, 0) > 0, "audio": audio(name)} for name in top],
                "score": f"{per_query[q]:.4f}", "score_value": float(per_query[q])})
        return self.render("queries.html.j2", "../../", title=f"{row.submission.id} on {spec.id}: queries",
                           submission=row.submission.id, task=spec.id, slug=slug(spec.id), main=main,
                           mean=fmt(row.scores.means[main]), depth=depth, queries=queries,
                           per_query=f"{main} of each query (the mean over queries is the task's {main})",
                           per_query_name=f"{main} per query")

    # -- comparisons --------------------------------------------------------------------------

    def _comparisons(self, task_board: TaskBoard) -> Iterator[tuple[str, bytes]]:
        spec = task_board.spec
        main = spec.main_metric
        folder = f"compare/{slug(spec.id)}"
        pairs = []
        for a, b in itertools.combinations(task_board.rows, 2):  # the better-placed first
            p = stats.paired_randomization_test(a.scores.per_query[main], b.scores.per_query[main])
            pairs.append({"a": a.submission.id, "b": b.submission.id, "file": _pair_file(a, b), "p": f"{p:.4f}"})
            yield f"{folder}/{_pair_file(a, b)}", self._comparison(task_board, a, b, p)
        yield f"{folder}/index.html", self.render("compare_index.html.j2", "../../", title=f"Comparisons on {spec.id}",
                                                  task=spec.id, slug=slug(spec.id), pairs=pairs)

    def _comparison(self, task_board: TaskBoard, a: Row, b: Row, p: float) -> bytes:
        spec = task_board.spec
        main = spec.main_metric
        gt = a.evaluation.task.ground_truth
        scores_a, scores_b = a.scores.per_query[main], b.scores.per_query[main]
        difference = scores_a - scores_b
        order = np.argsort(-np.abs(difference), kind="stable")
        differences = [{"position": int(q) + 1, "text": gt.query_texts[q], "a": f"{scores_a[q]:.4f}",
                        "b": f"{scores_b[q]:.4f}", "diff": f"{difference[q]:+.4f}", "diff_value": float(difference[q])}
                       for q in order if difference[q] != 0]
        verdict = (f"The difference is significant at the 5 % level (p = {p:.4f} < {stats.ALPHA})." if p < stats.ALPHA
                   else f"Not significantly different at the 5 % level (p = {p:.4f}): the board marks them as tied "
                        "when they are neighbours.")
        return self.render("compare.html.j2", "../../", title=f"{a.submission.id} vs. {b.submission.id} on {spec.id}",
                           a=a.submission.id, b=b.submission.id, task=spec.id, slug=slug(spec.id), main=main,
                           mean_a=fmt(a.scores.means[main]), mean_b=fmt(b.scores.means[main]),
                           won=int((difference > 0).sum()), lost=int((difference < 0).sum()),
                           same=int((difference == 0).sum()), difference=f"{difference.mean():+.4f}",
                           p=f"{p:.4f}", permutations=f"{stats.PERMUTATIONS:,}", verdict=verdict,
                           differences=differences, per_query_name=f"{main} per query")


def parse_audio_roots(values: list[str], task_ids: set[str]) -> dict[str, Path]:
    """`--audio-root DIR` (every task) or `--audio-root TASK=DIR`: task id ("" for every task) -> folder."""
    roots: dict[str, Path] = {}
    for value in values:
        task, _, folder = value.partition("=")
        if not folder or task not in task_ids:
            task, folder = "", value
        path = Path(folder).resolve()
        if not path.is_dir():
            raise LarbError("--audio-root is not a folder.", path=path,
                            fix="give the folder that holds the task's audio files (TASK=DIR for one task).")
        roots[task] = path
    return roots


def write_site(board: Board, target: Path, audio_roots: Mapping[str, Path] | None = None,
               reads: tuple[Path, ...] = ()) -> Path:
    """Write the whole site into `target` (replaced only when LARB wrote it); returns the folder."""
    target = target.resolve()
    output_folders.check_target(target, overwrite=True, reads=reads, option="--site")
    builder = SiteBuilder(board, target, dict(audio_roots or {}))
    staging = output_folders.staging_folder(target, "larb leaderboard --site")
    try:
        for relative, content in builder.files():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        output_folders.publish(staging, target, overwrite=True)
    except BaseException:
        output_folders.remove(staging)
        raise
    return target
