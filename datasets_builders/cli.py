"""`larb data ...`: the dataset builders on the command line (a plug-in of the `larb` CLI).

The harness finds `register` through the `larb.commands` entry point; every leaf command
sets `func(args) -> exit code`, and user errors are `LarbError`s, which the CLI prints as
one line with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from benchmark.errors import LarbError
from benchmark.tasks import tasks_built_from
from datasets_builders import builder_class, dataset_names

EPILOG = """examples:
  larb data list
  larb data info clotho
  larb data build clotho --split evaluation --output data/clotho-eval
  larb data build clotho --split all --sample-rate 32000 --data-dir ~/Downloads/clotho --output data/clotho
  larb data build audiocaps --split test --option version=1 --output data/audiocaps-test
  larb data build wavcaps --split soundbible --option blacklist=exclude_all_ac --output data/wavcaps-sb
  larb data groundtruth data/clotho-eval --task clotho-v2.1/evaluation
  larb data export data/clotho-eval --split evaluation --to tasks/clotho-eval   # then: --task tasks/clotho-eval
  larb data scrape soundbible --output soundbible.csv --state scrape-state
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command group to the `larb` parser."""
    parser = subparsers.add_parser("data", help="build the datasets (Clotho, AudioCaps, WavCaps, WavText5K, MACS)",
                                   description="Build the LARB datasets from their official sources.",
                                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the datasets that can be built")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="splits, options, licence and sources of one dataset")
    p.add_argument("name", help=f"one of {', '.join(dataset_names())}")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("build", help="download, verify, extract and write a dataset")
    p.add_argument("name", help=f"one of {', '.join(dataset_names())}")
    p.add_argument("--split", action="append", metavar="S",
                   help="a split to build (repeat, or comma-separate; 'all' for every split)")
    p.add_argument("--sample-rate", type=_sample_rate, metavar="R",
                   help="target rate in Hz (32000, 44100, 48000, ...); default: the original rate")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the official files you downloaded")
    p.add_argument("--output", metavar="DIR", help="write a DatasetDict here (datasets.load_from_disk)")
    p.add_argument("--num-proc", type=int, metavar="N", help="processes that decode/resample/write")
    p.add_argument("--push-to-hub", metavar="REPO", help="also push the result to this Hub dataset repository")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset option (see 'larb data info NAME')")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("groundtruth", help="the ground-truth hashes of a task, from a built dataset")
    p.add_argument("path", help="a folder written by 'larb data build --output'")
    p.add_argument("--task", required=True, help="e.g. clotho-v2.1/evaluation")
    p.set_defaults(func=cmd_groundtruth)

    p = sub.add_parser("export", help="write a built split as a task folder (WAV files + captions.csv)")
    p.add_argument("path", help="a folder written by 'larb data build --output'")
    p.add_argument("--split", required=True, metavar="S", help="the split to export, e.g. evaluation")
    p.add_argument("--to", required=True, metavar="FOLDER",
                   help="the task folder to write (then: larb ... --task FOLDER)")
    p.add_argument("--sample-rate", type=_sample_rate, metavar="R",
                   help="resample to this rate in Hz (soxr); default: the rate the build stored")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --to folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("scrape", help="rebuild the WavText5K table from SoundBible or BigSoundBank")
    p.add_argument("site", choices=("soundbible", "bigsoundbank"))
    p.add_argument("--output", required=True, metavar="CSV", help="the table to write (WavText5K columns + more)")
    p.add_argument("--state", metavar="DIR", help="resume folder (default: beside --output)")
    p.add_argument("--delay", type=float, default=2.0, metavar="S", help="seconds between requests (default 2)")
    p.add_argument("--max-pages", type=int, metavar="N", help="stop after N listing pages")
    p.add_argument("--compare", metavar="CSV", help="published table to compare with (default: WavText5K.csv)")
    p.add_argument("--report", metavar="JSON", help="where to write the change report (default: beside --output)")
    p.set_defaults(func=cmd_scrape)


def _sample_rate(text: str) -> int | None:
    if text.lower() in ("original", "none", "0"):
        return None
    try:
        return int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a sample rate: {text!r}") from None


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LarbError(f"bad --option {pair!r}.", fix="write --option KEY=VALUE.")
        options[key.strip()] = value.strip()
    return options


def _log_to_stderr() -> None:
    logger = logging.getLogger("larb.data")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("larb: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def describe(name: str) -> dict[str, object]:
    """What `larb data info` shows."""
    cls = builder_class(name)
    return {"name": name, "title": cls.TITLE, "homepage": cls.HOMEPAGE, "license": cls.LICENSE,
            "citation": cls.CITATION, "splits": list(cls.SPLITS), "default_splits": list(cls.DEFAULT_SPLITS),
            "options": {k: {"default": o.default, "choices": list(o.choices), "help": o.help}
                        for k, o in cls.OPTIONS.items()},
            "tasks": {split: [spec.id for spec in tasks_built_from(name, split)] for split in cls.SPLITS
                      if tasks_built_from(name, split)}}


def cmd_list(args: argparse.Namespace) -> int:
    rows = [{"name": name, "title": builder_class(name).TITLE,
             "splits": ", ".join(builder_class(name).SPLITS)} for name in dataset_names()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['title']}\n{'':<{width}}  splits: {row['splits']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = describe(args.name)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{info['name']}: {info['title']}\nhomepage: {info['homepage']}\nlicence: {info['license']}")
    print(f"citation: {info['citation']}")
    defaults = set(info["default_splits"])
    print("splits: " + ", ".join(s + (" (default)" if s in defaults else "") for s in info["splits"]))
    for key, option in info["options"].items():
        choices = f" [{' | '.join(option['choices'])}]" if option["choices"] else ""
        print(f"option {key}={option['default']}{choices}: {option['help']}")
    for split, tasks in info["tasks"].items():
        print(f"split {split} gives the ground truth of: {', '.join(tasks)}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from datasets_builders.build import build

    _log_to_stderr()
    result = build(args.name, splits=args.split, sample_rate=args.sample_rate, data_dir=args.data_dir,
                   output=args.output, num_proc=args.num_proc, push_to_hub=args.push_to_hub,
                   options=_options(args.option), overwrite=args.overwrite)
    for split, dataset in result.items():
        with_audio = sum(1 for a in dataset.select_columns(["sampling_rate"])["sampling_rate"] if a is not None)
        print(f"{args.name} {split}: {dataset.num_rows} rows, {with_audio} with audio")
    if args.output:
        print(f"wrote {Path(args.output).resolve()} (open it with datasets.load_from_disk)")
    if args.push_to_hub:
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return 0


def cmd_groundtruth(args: argparse.Namespace) -> int:
    import datasets

    from benchmark.tasks import TASKS
    from datasets_builders.task_groundtruth import task_ground_truth, task_source

    _, split, _ = task_source(args.task)
    path = Path(args.path)
    if not (path / "dataset_dict.json").is_file():
        raise LarbError("not a folder written by 'larb data build --output'.", path=path,
                        fix="pass the --output folder of a build.")
    result = datasets.load_from_disk(str(path))
    if split not in result:
        raise LarbError(f"the build has no {split} split.", path=path,
                        fix=f"build it with --split {split}.")
    truth = task_ground_truth(result[split], args.task)
    pinned = TASKS[args.task].sha256 if args.task in TASKS else ""
    print(f"{args.task}: {truth.n_queries} queries, {len(truth.corpus)} candidates")
    for part, digest in truth.hashes().items():
        print(f"  {part} sha256 {digest}")
    if pinned and pinned != truth.sha256:
        print(f"differs from the registered task ({pinned}): the build used other captions files.",
              file=sys.stderr)
        return 1
    print("identical to the registered task" if pinned else "the registered task pins no hash")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from datasets_builders.export import CAPTIONS_FILE, export

    _log_to_stderr()
    result = export(args.path, args.split, args.to, sample_rate=args.sample_rate, overwrite=args.overwrite)
    resumed = f", {result.kept} kept from the interrupted export" if result.kept else ""
    print(f"{result.dataset} {result.split}: {result.rows} rows, {result.exported} audio files "
          f"({result.written} written{resumed}), {len(result.skipped)} skipped")
    if result.skipped:
        print(f"skipped, no audio ({len(result.skipped)}; their captions are not in the task):")
        for name in result.skipped:
            print(f"  {name}")
    if result.renamed:
        print(f"{len(result.renamed)} files written as .wav under a new name (e.g. "
              f"{next(iter(result.renamed))!r} -> {next(iter(result.renamed.values()))!r})")
    print(f"wrote {result.folder} ({CAPTIONS_FILE}: file_name,caption_1..caption_{result.max_captions}); "
          f"use it as --task {result.folder}")
    return 0


def cmd_scrape(args: argparse.Namespace) -> int:
    from datasets_builders.scrapers.run import scrape

    _log_to_stderr()
    return scrape(args.site, output=Path(args.output), state=Path(args.state) if args.state else None,
                  delay=args.delay, max_pages=args.max_pages,
                  compare_with=Path(args.compare) if args.compare else None,
                  report=Path(args.report) if args.report else None)
