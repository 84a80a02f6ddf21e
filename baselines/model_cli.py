"""`larb model run MODULE:FACTORY`: any model that follows the protocol, ranked, written as a
submission and scored (plugged into the harness's CLI through the `larb.commands` entry point)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EPILOG = """examples:
  larb model run my_model:build --task demo --output submissions/my-model --team "My lab" \\
      --licence CC-BY-4.0 --training-data none
  larb model run baselines.adapters.tagger_text:TaggerTextModel --arg tagger=mn04 \\
      --arg text_encoder=all-MiniLM-L6-v2 --task demo --output submissions/mn04-minilm \\
      --team "LARB users" --licence CC0-1.0
"""

_METADATA_KEYS = {"team", "licence", "system", "description", "links", "parameters", "training_data"}


def _pairs(values: list[str], option: str) -> dict[str, str]:
    from benchmark.errors import LarbError

    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise LarbError(f"{option} {value!r} is not KEY=VALUE.", fix=f"write e.g. {option} name=value.")
        pairs[key.strip()] = text
    return pairs


def _template(path: str | None) -> dict[str, Any]:
    """The metadata template (YAML): any of team, licence, system, description, links, parameters,
    training_data, as in a submission's metadata.yaml."""
    from benchmark.errors import LarbError
    from benchmark.untrusted import load_yaml

    if path is None:
        return {}
    data = load_yaml(Path(path))
    if not isinstance(data, dict) or set(data) - _METADATA_KEYS:
        unknown = sorted(set(data) - _METADATA_KEYS) if isinstance(data, dict) else []
        raise LarbError(f"not a metadata template{f' (unknown keys {unknown})' if unknown else ''}.", path=path,
                        fix=f"use only the keys {', '.join(sorted(_METADATA_KEYS))}.")
    return data


def _metadata(args: argparse.Namespace):
    from baselines.model_runner import ModelMetadata
    from benchmark.errors import LarbError

    template = _template(args.metadata)
    parameters = template.get("parameters")
    if args.parameters:
        try:
            total, _, trainable = args.parameters.partition(",")
            parameters = {"total": int(total), "trainable": int(trainable or 0)}
        except ValueError:
            raise LarbError(f"--parameters {args.parameters!r} is not TOTAL,TRAINABLE.",
                            fix="write e.g. --parameters 86000000,0.") from None
    training = template.get("training_data")
    if args.training_data:
        if args.training_data == ["none"]:
            training = []
        else:
            training = []
            for item in args.training_data:
                dataset, sep, split = item.partition("/")
                if not sep or not dataset or not split:
                    raise LarbError(f"--training-data {item!r} is not DATASET/SPLIT.",
                                    fix="write e.g. --training-data clotho-v2.1/development (or none).")
                training.append({"dataset": dataset, "split": split})
    return ModelMetadata(team=args.team or template.get("team"), licence=args.licence or template.get("licence"),
                         system=args.system or template.get("system"),
                         description=args.description or template.get("description"),
                         links={**template.get("links", {}), **_pairs(args.link, "--link")},
                         parameters=parameters, training_data=training)


def _cmd_run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from baselines.model_runner import load_model, run_model

    metadata = _metadata(args)  # option errors before the model is imported or loaded
    model = load_model(args.model, _pairs(args.arg, "--arg"))
    folder, result = run_model(model, args.task, Path(args.output), metadata, batch_size=args.batch_size,
                               progress=not args.quiet)
    rows = [[name, f"{value:.4f}", f"[{result.intervals[name][0]:.4f}, {result.intervals[name][1]:.4f}]"]
            for name, value in result.metrics.items()]
    print(f"{result.submission_id} on {result.task.id}: wrote {folder}")
    print(tabulate(rows, headers=["metric", "value", "95% CI (jackknife)"], disable_numparse=True))
    return 0


def _analysis_model(target: str, arguments: dict[str, str], overrides: list[str]):
    """A model of the protocol (MODULE:FACTORY), a trained run's best.pt, or a baseline name."""
    from baselines.model_runner import load_model

    if ":" in target and not Path(target).exists():
        return load_model(target, arguments)
    from baselines.adapters.baseline_checkpoint import BaselineModel

    if Path(target).suffix == ".pt" or Path(target).is_file():
        return BaselineModel(checkpoint=target, settings=";".join(overrides))
    return BaselineModel(baseline=target, settings=";".join(overrides))


def _cmd_analyze(args: argparse.Namespace) -> int:
    import json

    from baselines.analysis import analyze, pca_scatter
    from benchmark.atomic import atomic_write_text
    from benchmark.tasks import get_task

    model = _analysis_model(args.model, _pairs(args.arg, "--arg"), args.overrides)
    task = get_task(args.task)
    figures, audio, text = analyze(model, task, set_size=args.set_size, progress=not args.quiet)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{model.name}__{task.id}")
    folder = Path(args.output) if args.output else Path("results") / "analysis"
    record = atomic_write_text(folder / f"{safe}.json", json.dumps(figures, indent=1) + "\n")
    plot = pca_scatter(audio, text, folder / f"{safe}.png", f"{model.name} on {task.id}")
    if args.json:
        print(json.dumps(figures))
        return 0
    for modality in ("audio", "text"):
        m = figures[modality]
        print(f"{modality:5s}  sigma {m['sigma']:.3f}  h {m['h']:.3f} (sets of {m['set_size']})  "
              f"uniformity {m['uniformity']:.3f}  effective rank {m['effective_rank']:.1f}")
    hub = figures["hubness"]
    print(f"alignment {figures['alignment']:.3f}  modality gap {figures['modality_gap']:.3f}  "
          f"N10 skew {hub['skewness']:.2f}, never in a top 10: {hub['never_retrieved']:.0%}  "
          f"mAP@10 {figures['retrieval']['mAP@10']:.4f}")
    print(f"wrote {record} and {plot}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `larb model run` to the harness's parser."""
    parser = subparsers.add_parser("model", help="evaluate any model (encode_audio / encode_text) on a task",
                                   epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="rank a task with a model, write a submission folder, score it",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODULE:FACTORY", help="a model object or a factory that returns one")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword argument for the factory (repeatable; passed as text)")
    p.add_argument("--task", required=True, help="a task id (see 'larb tasks') or a task folder")
    p.add_argument("--output", required=True, help="the submission folder, e.g. submissions/my-model")
    p.add_argument("--metadata", help="a YAML template: team, licence, system, description, links, ...")
    p.add_argument("--team")
    p.add_argument("--licence", help="the licence of the rankings, e.g. CC-BY-4.0")
    p.add_argument("--system", help="the system's name on the board (default: the model's name)")
    p.add_argument("--description")
    p.add_argument("--link", action="append", default=[], metavar="KIND=URL",
                   help="paper=URL, code=URL or checkpoint=URL (repeatable)")
    p.add_argument("--parameters", metavar="TOTAL,TRAINABLE")
    p.add_argument("--training-data", action="append", default=[], metavar="DATASET/SPLIT",
                   help="each dataset split trained or selected on (repeatable), or 'none'")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)


def register_analyze(subparsers: argparse._SubParsersAction) -> None:
    """Add `larb analyze` to the harness's parser."""
    a = subparsers.add_parser("analyze", help="embedding-space figures (uniformity, alignment, gap, hubness) "
                                              "and a PCA plot of a model on a task")
    a.add_argument("model", metavar="MODEL", help="MODULE:FACTORY, a trained run's best.pt, or a baseline name")
    a.add_argument("--task", required=True, help="a text-to-audio task id or folder")
    a.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="for a factory")
    a.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="for a baseline: a setting (repeatable)")
    a.add_argument("--set-size", type=int, default=64, help="items per set for sigma and h (default 64)")
    a.add_argument("--output", help="folder for the JSON and the PNG (default results/analysis)")
    a.add_argument("--json", action="store_true")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=_cmd_analyze)
