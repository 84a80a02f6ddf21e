"""`larb baseline ...`: list, check, train and run the registered baselines.

Plugged into the harness's CLI through the `larb.commands` entry point; every handler returns
an exit code, and user errors are `LarbError`s that the harness prints as one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  larb baseline list --json
  larb baseline check passt-mpnet-tags --set tagger=mn04 --set text_encoder=all-MiniLM-L6-v2
  larb baseline run passt-mpnet-tags --task demo --output submissions/passt-mpnet-tags-zeroshot \\
      --set tagger=mn04 --set text_encoder=all-MiniLM-L6-v2 --set lambda=0
  larb baseline train passt-mpnet-tags --train-task demo-train --output runs/demo \\
      --set tagger=mn04 --set text_encoder=all-MiniLM-L6-v2
  larb baseline run passt-mpnet-tags --task demo --checkpoint runs/demo/best.pt \\
      --output submissions/passt-mpnet-tags-demo
  larb evaluate submissions/passt-mpnet-tags-demo --task demo
"""


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting (repeatable), e.g. --set lambda=0")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of epochs >= 1")
    return int(text)


def _cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from baselines.config import apply_overrides
    from baselines.registry import all_baselines, get_baseline

    specs = [get_baseline(name) for name in args.names] if args.names else all_baselines()
    declarations = [spec.declaration(apply_overrides(spec.defaults, args.overrides)) for spec in specs]
    if args.json:
        print(json.dumps(declarations, indent=1))
        return 0
    rows = [[d["name"], f"{d['parameters']['trainable']:,}", f"{d['parameters']['total']:,}", d["paper"]]
            for d in declarations]
    print(tabulate(rows, headers=["baseline", "trainable", "total parameters", "paper"],
                   disable_numparse=True))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from baselines.check import contract_check
    from baselines.config import apply_overrides
    from baselines.registry import get_baseline

    spec = get_baseline(args.name)
    config = apply_overrides(spec.defaults, args.overrides)
    results = contract_check(spec, config)
    print(f"{spec.name} contract check (" + ", ".join(f"{k}={config[k]}" for k in spec.model_keys) + ")")
    for result in results:
        print(result.line())
    failed = sum(r.status == "FAIL" for r in results)
    print("all checks passed." if not failed else f"{failed} check(s) failed.")
    return 1 if failed else 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from baselines.sweep import parse_grid, sweep

    grid = parse_grid(args.grid, args.name)
    rows = sweep(args.name, grid, args.train_task, args.val_task, args.task, Path(args.output), args.overrides)
    print(Path(args.output, "sweep.md").read_text("utf-8"))
    print(f"{len(rows)} points; table, JSON and plot in {args.output}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from baselines import distributed
    from baselines.runner import train_baseline

    result = train_baseline(args.name, args.train_task, args.val_task,
                            Path(args.output) if args.output else None, args.overrides, patience=args.patience,
                            init_from=Path(args.init_from) if args.init_from else None)
    if not distributed.is_main_process():
        return 0
    print(training_summary(result))
    print(f"next: larb baseline run {args.name} --task TASK --checkpoint {result.best_checkpoint} "
          f"--output submissions/<id>")
    return 0


def training_summary(result) -> str:
    """What a person wants at the end of a run: how far it got, the best epoch and where it is."""
    best, last = result.best, result.history[-1]
    score = "validation mAP@10" if result.selected == "val_mAP@10" else "validation R@1 + R@5 + R@10"
    stop = (f"stopped early after epoch {last['epoch']} (no better {score} for "
            f"{last['epoch'] - best['epoch']} epochs)" if result.stopped_early else f"trained {last['epoch']} epochs")
    chosen = "" if result.selected == "val_mAP@10" else f", {score} {best[result.selected]:.4f}"
    return (f"{stop}\nbest: epoch {best['epoch']}{chosen}, validation mAP@10 {best['val_mAP@10']:.4f}, validation "
            f"loss {best['val_loss']:.4f}\ncheckpoint: {result.best_checkpoint}\n"
            f"per-epoch log: {result.best_checkpoint.parent / 'log.jsonl'}")


def _cmd_extract(args: argparse.Namespace) -> int:
    from baselines import distributed
    from baselines.runner import extract_features

    done = extract_features(args.name, args.task, args.overrides)
    if distributed.is_main_process():
        for task, features in done:
            print(f"{task.id}: {len(features.audio)} audio embeddings {tuple(features.audio.shape[1:])}, "
                  f"{len(features.text)} caption embeddings {tuple(features.text.shape[1:])} in the embedding cache"
                  + (f" ({distributed.world_size()} processes)" if distributed.world_size() > 1 else ""))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from baselines.runner import run_baseline, task_with_audio

    folder = run_baseline(args.name, task_with_audio(args.task, args.audio), [Path(c) for c in args.checkpoint],
                          Path(args.output), args.overrides)
    print(f"wrote {folder}; score it with: larb evaluate {folder} --task {args.task}")
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from baselines.runner import members_from_arguments, run_models, task_with_audio

    folder = run_models(members_from_arguments(args.members), task_with_audio(args.task, args.audio),
                        Path(args.output), args.method, args.overrides)
    print(f"wrote {folder}; score it with: larb evaluate {folder} --task {args.task}")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from baselines.cards import card
    from baselines.registry import get_baseline

    print(card(get_baseline(args.name)), end="")
    return 0


def _cmd_recipe(args: argparse.Namespace) -> int:
    from baselines.recipes import data_text, recipes
    from baselines.registry import get_baseline

    spec = get_baseline(args.name)
    found = recipes(spec.name)
    if not found:
        print(f"no reported row links {spec.name} (benchmark/data/reported.yaml).")
        return 0
    print(f"# {len(found)} reported rows link {spec.name}. First the data, each split built and exported "
          "once:\n" + data_text([s for recipe in found for s in recipe.sources]))
    print("\n# Then one block per row; blocks share runs and submissions by what they are (a repeated "
          "'baseline train' resumes a finished run: a no-op)\n")
    print("\n\n".join(recipe.text(with_data=False) for recipe in found))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `larb baseline {list,check,train,run}` to the harness's parser."""
    parser = subparsers.add_parser("baseline", help="registered baseline models: list, check, train, run",
                                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="baseline_command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the registered baselines with their declarations and parameter counts")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these baselines (needed with --set)")
    p.add_argument("--json", action="store_true", help="print each declaration as JSON")
    _settings(p)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("check", help="contract check on synthetic input (shapes, norms, a training step)")
    p.add_argument("name")
    _settings(p)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("train", help="train a baseline's head; resumes from OUTPUT/last.pt")
    p.add_argument("name")
    p.add_argument("--train-task", required=True, action="append",
                   help="task id or folder to train on; repeat it to train on several joined "
                        "(the CLAP paper's Clotho + AudioCaps + WavText5K)")
    p.add_argument("--val-task", help="task id or folder for validation; default: clotho-v2.1/validation when "
                                      "training on clotho-v2.1/development (the papers' protocol), otherwise "
                                      "'holdout' (val_fraction of the training files)")
    p.add_argument("--output", help="run folder (default runs/NAME-TRAIN_TASK)")
    p.add_argument("--patience", type=_positive_int, metavar="N",
                   help="stop once N epochs in a row have not improved validation mAP@10")
    p.add_argument("--init-from", metavar="RUN", help="start from the weights of an earlier run (folder or .pt) of "
                                                      "the same model, e.g. pre-trained on AudioCaps; its training "
                                                      "data is declared too")
    _settings(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("card", help="the paper's settings beside the config keys, their defaults and sources")
    p.add_argument("name")
    p.set_defaults(func=_cmd_card)

    p = sub.add_parser("recipe", help="the commands that reproduce each reported row the baseline links to")
    p.add_argument("name")
    p.set_defaults(func=_cmd_recipe)

    p = sub.add_parser("extract", help="embed tasks with the baseline's frozen encoders into the embedding cache "
                                       "(sharded over the processes 'accelerate launch' starts)")
    p.add_argument("name")
    p.add_argument("--task", required=True, action="append", help="task id or folder; repeatable")
    _settings(p)
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("run", help="rank a task (text-to-audio or audio-to-text) and write a submission folder")
    p.add_argument("name")
    p.add_argument("--task", required=True, help="task id or folder")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="trained checkpoint (best.pt); repeat it for a score-level ensemble")
    p.add_argument("--output", required=True, help="submission folder, submissions/<id>")
    p.add_argument("--audio", metavar="DIR", help="the audio of a registered task (e.g. the folder 'larb data "
                                                  "export' wrote), for audio-to-text tasks")
    _settings(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="train, rank and analyse a baseline at every point of a settings grid")
    p.add_argument("name")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a setting and its values (repeatable: the points are every combination)")
    p.add_argument("--train-task", required=True, action="append", help="task id or folder to train on")
    p.add_argument("--val-task", help="task id or folder for validation (default: a held-out share)")
    p.add_argument("--task", required=True, help="the task each point is ranked and scored on")
    p.add_argument("--output", required=True, help="the sweep folder (runs/, submissions/, points/, sweep.md)")
    _settings(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("ensemble", help="rank a task with several trained models (score or embedding mean)")
    p.add_argument("members", nargs="+", metavar="MODEL",
                   help="a trained checkpoint (best.pt), or NAME for a zero-shot baseline")
    p.add_argument("--task", required=True, help="task id or folder (text-to-audio or audio-to-text)")
    p.add_argument("--output", required=True, help="submission folder, submissions/<id>")
    p.add_argument("--audio", metavar="DIR", help="the audio of a registered task (e.g. the folder 'larb data "
                                                  "export' wrote), for audio-to-text tasks")
    p.add_argument("--method", choices=("score-mean", "embedding-mean"), default="score-mean",
                   help="score-mean (default): mean of similarities; embedding-mean: mean of embeddings")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a run-time setting for every member (e.g. device=cpu)")
    p.set_defaults(func=_cmd_ensemble)
