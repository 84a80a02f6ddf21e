"""The `larb` command line.

User errors end in one line on stderr and exit code 2. The `data` and `baseline` command
groups are plug-ins found through the `larb.commands` entry points, so the harness never
imports `datasets_builders` or `baselines` (and runs without torch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from tabulate import tabulate

from benchmark import assets, plugins
from benchmark.errors import USER_ERROR_EXIT_CODE, LarbError, os_error
from benchmark.version import __version__

DEBUG_ENV = "LARB_DEBUG"

EPILOG = """examples:
  larb demo
  larb tasks
  larb evaluate submissions/demo-random --task demo
  larb evaluate my_ranking.csv --task clotho-v2.1/evaluation --json
  larb leaderboard --check
  larb leaderboard --site site
  larb submission check submissions/my-system
"""


def _cmd_tasks(args: argparse.Namespace) -> int:
    from benchmark.tasks import TASKS, get_task

    if args.queries:
        gt = get_task(args.queries).ground_truth
        for qid, text in zip(gt.query_ids, gt.query_texts, strict=True):
            print(f"{qid}\t{text}")
        return 0
    rows = []
    for task_id, spec in TASKS.items():
        try:
            gt = get_task(task_id).ground_truth
            counts = [gt.n_queries, len(gt.corpus), sum(len(v) for v in gt.relevance.values()), gt.sha256[:12]]
        except LarbError:
            counts = ["?", "?", "?", "assets not available offline"]
        rows.append([task_id, spec.version, spec.direction, spec.kind, *counts, spec.main_metric, spec.depth])
    headers = ["task", "version", "direction", "relevance", "queries", "candidates", "judgements",
               "ground truth sha256", "main metric", "depth"]
    if args.json:
        print(json.dumps([dict(zip(headers, r, strict=True)) for r in rows], indent=1))
    else:
        print(tabulate(rows, headers=headers, disable_numparse=True))
    return 0


def _cmd_tasks_derive(args: argparse.Namespace) -> int:
    from benchmark.derived_tasks import coverage, derive, read_available
    from benchmark.tasks import TASKS, get_task

    if args.base not in TASKS:
        raise LarbError(f"unknown task {args.base!r}.", fix="derive from a registered task ('larb tasks').")
    available = read_available(Path(args.available), get_task(args.base).corpus)
    task = derive(args.base, available)
    info = coverage(task)
    if args.json:
        print(json.dumps({"id": task.id, "sha256": task.ground_truth.sha256, **info}))
        return 0
    print(f"{task.id}: {info['clips']:,} of {info['of_clips']:,} clips, {info['queries']:,} of "
          f"{info['of_queries']:,} queries of {info['of']} (ground truth sha256 {task.ground_truth.sha256[:12]})")
    print(f"score it with: larb evaluate RUN --task {task.id}  (the record gives the interval the full-set "
          "score lies in)")
    return 0


def _cmd_assets(args: argparse.Namespace) -> int:
    rows = assets.describe(assets.registered())
    print(json.dumps(rows, indent=1) if args.json else tabulate(rows, headers="keys"))
    return 0


def _default_record_path(submission_id: str, task_id: str) -> Path:
    return Path("results") / submission_id / (task_id.replace("/", "__").replace(":", "_") + ".json")


def _record_path(args: argparse.Namespace, submission_id: str, task_id: str) -> Path:
    """Where the result record goes; never over the submission's own files, nor over a file that
    is not a result record."""
    output = Path(args.output) if args.output else _default_record_path(submission_id, task_id)
    if output.is_dir():
        raise LarbError("--output is a folder.", path=output, fix="give the path of a .json file.")
    source = Path(args.submission)
    inputs = [source] + ([source / "metadata.yaml", *source.glob("*.csv")] if source.is_dir() else [])
    if output.exists() and any(output.resolve() == p.resolve() for p in inputs if p.exists()):
        raise LarbError("--output names a file of the submission being scored; it would be overwritten.",
                        path=output, fix="write the result record elsewhere, e.g. results/ID/TASK.json.")
    if output.is_file() and not _is_result_record(output):
        raise LarbError("--output names an existing file that is not a LARB result record; it is left as it is.",
                        path=output, fix="choose a new path, or delete that file yourself.")
    return output


def _is_result_record(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return False
    return head.lstrip().startswith(b'{') and b'"schema_version"' in head


def _scored(target: str, task_name: str, subset: bool = False):
    from benchmark.evaluation import evaluate

    return evaluate(target, task_name, subset=subset)


def _interval(result, name: str) -> str:
    low, high = result.intervals[name]
    return f"[{low:.4f}, {high:.4f}]"


def _cmd_validate(args: argparse.Namespace) -> int:
    result = _scored(args.submission, args.task, args.subset)
    print(f"OK: {result.ranking.path} is a valid ranking for {result.task.id} "
          f"({result.task.ground_truth.n_queries} queries).")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.protocols:
        return _evaluate_protocols(args)
    result = _scored(args.submission, args.task, args.subset)
    output = _record_path(args, result.submission_id, result.task.id)
    result.save(output)
    if args.json:
        print(json.dumps(result.record(), ensure_ascii=False))
        return 0
    rows = [[name, f"{value:.4f}", _interval(result, name)] for name, value in result.metrics.items()]
    subset = f" of the {result.subset['of_queries']} of {result.subset['of']}" if result.subset else ""
    print(f"{result.submission_id} on {result.task.id} (v{result.task.version}), "
          f"{result.task.ground_truth.n_queries} queries{subset}")
    print(tabulate(rows, headers=["metric", "value", "95% CI (jackknife)"], disable_numparse=True))
    _note_depth(result)
    _note_coverage(result)
    print(f"result record: {output}")
    return 0


def _note_coverage(result) -> None:
    covered = result.record().get("coverage")
    if covered:
        main = result.task.spec.main_metric
        low, high = covered["full_set_bounds"][main]
        print(f"coverage: {covered['clips']:,} of {covered['of_clips']:,} clips, {covered['queries']:,} of "
              f"{covered['of_queries']:,} queries of {covered['of']}; full-set {main} at most {high:.4f}, and "
              f"at least {low:.4f} if the missing clips displace none of these results (missing queries all "
              "missed vs all hit at rank 1)")


def _note_depth(result) -> None:
    given, depth = result.ranking.indices.shape[1], result.task.spec.depth
    if given > depth:
        print(f"note: {given} candidates per query given; {result.task.id} scores the first {depth} (its depth). "
              "Deeper protocols use the rest: --protocols all.")


def _evaluate_protocols(args: argparse.Namespace) -> int:
    from benchmark.evaluation import evaluate_protocols

    if args.protocols != "all" or args.subset or args.output:
        raise LarbError("--protocols takes 'all', without --subset or --output.",
                        fix="write e.g. larb evaluate RUN --task clotho-v2.1/evaluation --protocols all.")
    results = evaluate_protocols(args.submission, args.task)
    rows = []
    for task_id, result in results.items():
        output = _default_record_path(result.submission_id, task_id)
        result.save(output)
        main = result.task.spec.main_metric
        scored = result.task.ground_truth.n_queries
        rows.append([task_id, f"{scored}" + (f" of {result.subset['of_queries']}" if result.subset else ""), main,
                     f"{result.metrics[main]:.4f}", _interval(result, main), str(output)])
    if args.json:
        print(json.dumps({t: r.record() for t, r in results.items()}, ensure_ascii=False))
        return 0
    print(tabulate(rows, headers=["protocol (task)", "queries", "main metric", "value", "95% CI", "record"],
                   disable_numparse=True))
    for task_id, reason in results.skipped.items():
        print(f"not scored: {task_id}: {reason}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from benchmark import stats

    first, second = _scored(args.a, args.task), _scored(args.b, args.task)  # compare on the task itself
    metric = args.metric
    if metric not in first.metrics:
        raise LarbError(f"task {first.task.id} has no metric {metric!r}.",
                        fix=f"use one of: {', '.join(first.metrics)}.")
    labels = [first.submission_id, second.submission_id]
    if labels[0] == labels[1]:
        labels = [args.a, args.b]
    a, b = first.per_query[metric], second.per_query[metric]
    difference = stats.jackknife_interval(a - b, bounds=(-1.0, 1.0))
    p = stats.paired_randomization_test(a, b)
    rows = [[label, f"{r.metrics[metric]:.4f}", f"[{r.intervals[metric][0]:.4f}, {r.intervals[metric][1]:.4f}]"]
            for label, r in zip(labels, (first, second), strict=True)]
    rows.append([f"difference ({labels[0]} - {labels[1]})", f"{float((a - b).mean()):+.4f}",
                 f"[{difference[0]:+.4f}, {difference[1]:+.4f}]"])
    print(f"{metric} on {first.task.id}, {first.task.ground_truth.n_queries} paired queries")
    print(tabulate(rows, headers=["submission", metric, "95% CI (jackknife)"], disable_numparse=True))
    verdict = "significant" if p < stats.ALPHA else "not significant"
    print(f"paired randomisation test: p = {p:.4f} ({verdict} at {stats.ALPHA}; "
          f"{stats.PERMUTATIONS:,} sign flips)")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark import leaderboard
    from benchmark.atomic import atomic_write_text
    from benchmark.board import build_board

    if args.audio_root and not args.site:
        raise LarbError("--audio-root is for the site.", fix="add --site DIR, or drop --audio-root.")
    if args.check and args.site:
        raise LarbError("--check compares leaderboard.md only and writes nothing.",
                        fix="run 'larb leaderboard --check' and 'larb leaderboard --site DIR' separately.")
    if args.site:  # the site's libraries first: a missing extra fails before anything is written
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    board = build_board(args.submissions)
    text = leaderboard.render(board)
    output = Path(args.output)
    if args.check:
        return _check_leaderboard(output, text, board)
    roots: dict[str, Path] = {}
    if args.site:  # a bad --audio-root or site folder is refused before leaderboard.md is written
        from benchmark import output_folders
        from benchmark.site import parse_audio_roots, write_site

        roots = parse_audio_roots(args.audio_root, {t.id for t in board.tasks})
        reads = (Path(args.submissions), *roots.values())
        output_folders.check_target(Path(args.site).resolve(), overwrite=True, reads=reads, option="--site")
    atomic_write_text(output, text)
    print(f"wrote {output}")
    _report_unscored(board)
    if args.site:
        site = write_site(board, Path(args.site), roots, reads=reads)
        print(f"wrote the site to {site}; open {site / 'index.html'}")
    return 0


def _report_unscored(board) -> bool:
    """Say on stderr which declared rankings the board could not score; whether there were any."""
    for entry in board.unscored:
        print(f"not scored: {entry.submission_id} on {entry.task_id}: {entry.reason}", file=sys.stderr)
    return bool(board.unscored)


def _check_leaderboard(output: Path, text: str, board) -> int:
    """Exit 1 when the committed file is stale or any declared ranking cannot be scored."""
    failed = False
    current = output.read_text("utf-8") if output.exists() else ""
    if current != text:
        print(f"{output} is stale: run 'larb leaderboard' and commit the result.", file=sys.stderr)
        failed = True
    failed = _report_unscored(board) or failed
    if failed:
        return 1
    print(f"{output} is up to date; every declared ranking is scored.")
    return 0


def _cmd_submission_check(args: argparse.Namespace) -> int:
    from benchmark.submission_check import check_submission, current_board
    from benchmark.tasks import TASKS

    for folder in args.folders:
        if not Path(folder).is_dir():
            raise LarbError("not a submission folder.", path=folder, fix="give submissions/<id>.")
    try:
        board = current_board(args.board)  # scored once for every folder checked
    except LarbError as exc:
        raise LarbError(f"the board in {args.board} cannot be built to place the rows: {exc}",
                        fix="fix that submission first, or pass --board with another folder.") from None
    failed = 0
    for folder in args.folders:
        report = check_submission(folder, board)
        print(f"submission {report.submission_id} ({folder})")
        for finding in report.findings:
            print(f"  {'ok  ' if finding.ok else 'FAIL'}  {finding.check}: {finding.detail}")
        if report.rows:
            table = []
            for row, position, of in report.rows:
                spec = TASKS[row.evaluation.task.id]
                low, high = row.scores.intervals[spec.main_metric]
                table.append([spec.id, f"{position} of {of}", spec.main_metric,
                              f"{row.scores.means[spec.main_metric]:.4f} [{low:.4f}, {high:.4f}]",
                              "  ".join(f"{m} {row.scores.means[m]:.4f}" for m in spec.metrics
                                        if m != spec.main_metric)])
            print(f"rows it adds to the board in {args.board}:")
            print(tabulate(table, headers=["task", "position", "main metric", "value [95% CI]", "other metrics"],
                           disable_numparse=True))
        failed += not report.passed
        print("passed." if report.passed else "failed: fix each FAIL above and run the check again.")
    return 1 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from benchmark import demo

    return demo.run(Path(args.submissions))


def _command_of(argv: list[str]) -> str | None:
    """The command word of a command line (the first argument that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; a plug-in command group is imported only when `command` names it (or is None,
    for the full help), so `larb evaluate` never imports the data or baseline code."""
    parser = argparse.ArgumentParser(prog="larb", description="LARB: the Language-based Audio Retrieval Benchmark.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"larb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="generate the demo task, score its example submissions, print the board")
    p.add_argument("--submissions", default="submissions", help="submissions folder (default: submissions)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("tasks", help="list the registered tasks with their counts and hashes")
    p.add_argument("--json", action="store_true")
    p.add_argument("--queries", metavar="TASK", help="print the query ids and texts of TASK")
    p.set_defaults(func=_cmd_tasks)
    tsub = p.add_subparsers(dest="tasks_command", metavar="derive")
    q = tsub.add_parser("derive", help="a task restricted to the clips you have (e.g. AudioCaps' surviving videos)")
    q.add_argument("base", help="a registered text-to-audio task, e.g. audiocaps-v1/test")
    q.add_argument("--available", required=True, metavar="MANIFEST",
                   help="a 'larb data export' folder of the clips you have, a text file with a clip name per line, "
                        "or the download manifest of 'larb data build'")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_tasks_derive)

    p = sub.add_parser("assets", help="registered assets (name, URL, checksum, mirror file name)")
    asub = p.add_subparsers(dest="assets_command", required=True)
    q = asub.add_parser("list")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_assets)

    for name, func, text in (("validate", _cmd_validate, "check a ranking without writing anything"),
                             ("evaluate", _cmd_evaluate, "validate, score and write a result record")):
        p = sub.add_parser(name, help=text)
        p.add_argument("submission", help="a submission folder or a ranking CSV")
        p.add_argument("--task", required=True, help="a task id (see 'larb tasks') or a folder task PATH")
        p.add_argument("--subset", action="store_true",
                       help="TASK is a subset task (e.g. clotho-v2.1/evaluation-multi) and SUBMISSION ranks the "
                            "task it is a subset of (README, 'Protocols')")
        if name == "evaluate":
            p.add_argument("--json", action="store_true", help="print the result record on stdout")
            p.add_argument("--output", help="result record path (default results/<id>/<task>.json)")
            p.add_argument("--protocols", metavar="all",
                           help="score the run by every protocol of TASK: the task, its subsets, its audio-to-text "
                                "form (one record each)")
        p.set_defaults(func=func)

    p = sub.add_parser("compare", help="two rankings of one task: the difference, its 95 %% interval, the p-value")
    p.add_argument("a", help="a submission folder or a ranking CSV")
    p.add_argument("b", help="a submission folder or a ranking CSV")
    p.add_argument("--task", required=True, help="a task id (see 'larb tasks') or a folder task PATH")
    p.add_argument("--metric", default="mAP@10", help="one of the task's metrics (default mAP@10)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("leaderboard", help="rebuild leaderboard.md (and the web site) by rescoring every submission")
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs from a fresh rebuild "
                                                        "or a declared ranking cannot be scored")
    p.add_argument("--submissions", default="submissions")
    p.add_argument("--output", default="leaderboard.md")
    p.add_argument("--site", metavar="DIR", help="also write the board as a static web site into DIR")
    p.add_argument("--audio-root", action="append", default=[], metavar="[TASK=]DIR",
                   help="audio players in the site's query browser: the folder of a task's audio files "
                        "(TASK=DIR for one task, DIR for every task); repeatable")
    p.set_defaults(func=_cmd_leaderboard)

    p = sub.add_parser("submission", help="check a submission folder as a reviewer would")
    submission = p.add_subparsers(dest="submission_command", required=True, metavar="COMMAND")
    p = submission.add_parser("check", help="metadata, links, licence, date, parameters, every ranking scored; "
                                            "prints the rows the submission adds (exit 1 on any failure)")
    p.add_argument("folders", nargs="+", metavar="DIR", help="submission folder(s), submissions/<id>")
    p.add_argument("--board", default="submissions", help="the board's submissions folder, to place the rows "
                                                          "(default: submissions)")
    p.set_defaults(func=_cmd_submission_check)

    for plugin in plugins.declared("larb.commands"):
        if command is not None and plugin.name != command:
            sub.add_parser(plugin.name, help=f"the {plugin.name} commands (see 'larb {plugin.name} --help')")
            continue
        try:
            register = plugin.load()
        except ImportError as exc:  # the extra that provides it is not installed
            p = sub.add_parser(plugin.name, help=f"(needs an extra: {exc.name} is not installed)")
            p.set_defaults(func=_missing_extra(plugin.name, exc))
            continue
        register(sub)
    return parser


def _missing_extra(name: str, exc: ImportError):
    def handler(args: argparse.Namespace) -> int:
        extra = "data" if name == "data" else "baselines"
        raise LarbError(f"'larb {name}' needs the [{extra}] extra ({exc.name} is missing).",
                        fix=f"pip install 'larb[{extra}]'.")
    return handler


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error or an OS fault is one line and exit 2; `LARB_DEBUG=1` adds the
    traceback for developers."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_of(argv)).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LarbError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # `larb tasks --queries T | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        return _fail(str(os_error(exc, doing=f"larb {args.command}")))
    except ModuleNotFoundError as exc:  # a plug-in command run with only the core install
        print(f"larb: error: this command needs {exc.name}, which is not installed. "
              "Fix: pip install 'larb[all]' (or the [data] / [baselines] / [site] extra).", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    except KeyboardInterrupt:
        print("larb: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exc()
    print(f"larb: error: {message}", file=sys.stderr)
    return USER_ERROR_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
