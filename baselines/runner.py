"""The two things a baseline does: train, and write a submission (one model or an ensemble).

Used by `larb baseline train|run`, by `larb demo` and by the tests, so all three follow one path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from baselines import checkpoint, distributed
from baselines.config import apply_overrides, resolve_device
from baselines.ensemble import METHODS
from baselines.inference import LoadedMember, Member, load_member, rank
from baselines.registry import get_baseline
from baselines.run_record import write_run_record
from baselines.spec import BaselineSpec
from baselines.submission_writer import SubmissionInfo, check_submission_id, write_submission
from baselines.task_features import TaskFeatures, concatenate, declared_training_data, require_text_to_audio
from baselines.train.loop import TrainResult, train
from benchmark.errors import LarbError
from benchmark.tasks import Task, get_task


def default_run_folder(name: str, train_tasks: Sequence[Task]) -> Path:
    ids = "+".join(task.id for task in train_tasks)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ids)
    return Path("runs") / f"{name}-{safe}"


HOLDOUT = "holdout"
VALIDATION_DEPTH = 10  # checkpoints are selected by validation mAP@10
# Training split -> the split the papers select on (Pellegrini 2022, Park 2023, Primus 2024: train on
# Clotho development, select on Clotho validation).
PAPER_VALIDATION = {"clotho-v2.1/development": "clotho-v2.1/validation"}


def default_validation(train_task_ids: Sequence[str]) -> str | None:
    """The validation task of the papers' protocol for these training tasks, or None (hold out).

    A run that trains on the validation split itself (the CLAP recipe: development + validation)
    has none, and holds out a share of its training files."""
    wanted = {PAPER_VALIDATION[t] for t in train_task_ids if t in PAPER_VALIDATION}
    if len(wanted) == 1 and not wanted & set(train_task_ids):
        return wanted.pop()
    return None


def _training_tasks(train_tasks: str | Path | Sequence[str | Path]) -> list[Task]:
    sources = [train_tasks] if isinstance(train_tasks, (str, Path)) else list(train_tasks)
    tasks = [get_task(str(source)) for source in sources]
    for task in tasks:
        require_text_to_audio(task)
    ids = [task.id for task in tasks]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise LarbError(f"training task {repeated[0]} is given twice.", fix="pass each --train-task once.")
    return tasks


def init_checkpoint(source: Path) -> Path:
    """The checkpoint `--init-from` names: a run folder's best.pt, or the file given."""
    return source / "best.pt" if source.is_dir() else source


def initialise_from(spec: BaselineSpec, system, config, source: Path) -> list[dict[str, str]]:
    """Start from the weights of an earlier run of the same model (`--init-from`: Pellegrini's
    AudioCaps pre-training, then Clotho). Returns that run's training data, which the new run
    declares too, so a fine-tuned model can never hide what it was pre-trained on."""
    path = init_checkpoint(source)
    payload = checkpoint.load(path)
    if payload["baseline"] != spec.name:
        raise LarbError(f"--init-from is a checkpoint of {payload['baseline']!r}, not {spec.name!r}.", path=path,
                        fix=f"pass a run of {spec.name}.")
    saved = spec.defaults.updated(spec.saved_config(payload["config"]), path=path)
    changed = [k for k in spec.model_keys if saved[k] != config[k]]
    if changed:
        raise LarbError(f"--init-from has {changed[0]}={saved[changed[0]]!r}, this run {config[changed[0]]!r}.",
                        path=path, fix=f"add --set {changed[0]}={saved[changed[0]]}, or start from another run.")
    system.head.load_state_dict(payload["head"])
    return list(payload["training_data"])


def train_baseline(name: str | BaselineSpec, train_tasks: str | Path | Sequence[str | Path],
                   val_task: str | Path | None, output: Path | None, overrides: Sequence[str] = (),
                   progress: bool = True, patience: int | None = None, init_from: Path | None = None) -> TrainResult:
    """Train on one task or on several joined (e.g. Clotho + AudioCaps + WavText5K), select on
    `val_task`: by default the papers' validation split (`default_validation`), else (or with
    `val_task="holdout"`) a held-out share of the training files.

    One loop (`train.loop.train`) for heads on cached features and for systems that fine-tune
    their encoders."""
    spec = name if isinstance(name, BaselineSpec) else get_baseline(name)
    config = apply_overrides(spec.defaults, overrides)
    tasks = _training_tasks(train_tasks)
    system = spec.build(config, resolve_device(config), progress)
    features = concatenate([(task.id, system.task_features(task)) for task in tasks])
    training_data = [entry for task in tasks for entry in declared_training_data(task)]
    training_data += spec.inherited_training_data(config)
    if init_from is not None:
        earlier = initialise_from(spec, system, config, Path(init_from))
        training_data = [*earlier, *(d for d in training_data if d not in earlier)]
    validation = None
    if val_task is None:
        val_task = default_validation([task.id for task in tasks])
        if val_task is not None and progress:
            print(f"selecting on {val_task}, as the papers do (--val-task {HOLDOUT} holds out "
                  f"{config['val_fraction']:.0%} of the training files instead)")
    elif str(val_task) == HOLDOUT:
        val_task = None
    if val_task is None:
        train_features, val_features = features.holdout(config["val_fraction"], config["seed"])
    else:
        validation = get_task(str(val_task))
        require_text_to_audio(validation)
        train_features, val_features = features, system.task_features(validation)
        training_data += [d for d in declared_training_data(validation) if d not in training_data]
    held = len(val_features.ground_truth.corpus)
    if held < VALIDATION_DEPTH:
        raise LarbError(f"the validation data has {held} audio files; validation mAP@{VALIDATION_DEPTH} ranks "
                        f"{VALIDATION_DEPTH}.", fix="pass a larger --val-task, or raise --set val_fraction.")
    folder = Path(output) if output is not None else default_run_folder(spec.name, tasks)
    if distributed.is_main_process():  # one writer under a launcher; the others only train
        write_run_record(folder, spec, config, tasks, validation,
                         init_checkpoint(Path(init_from)) if init_from is not None else None)
    return train(spec, system, train_features, val_features, training_data, folder, progress, patience)


def extract_features(name: str, task_names: Sequence[str | Path], overrides: Sequence[str] = (),
                     progress: bool = True) -> list[tuple[Task, TaskFeatures]]:
    """Embed the tasks' audio and captions with the baseline's frozen encoders into the embedding
    cache, which `train` and `run` then read. Under a launcher the batches are dealt across the
    processes (`embedding_cache.cached_extract`)."""
    spec = get_baseline(name)
    config = apply_overrides(spec.defaults, overrides)
    system = spec.build(config, resolve_device(config), progress and distributed.is_main_process())
    if system.end_to_end:
        raise LarbError(f"{spec.name} encodes its audio inside the training loop in this configuration (fine-tuned, "
                        "or frozen with augmentation in the loop), so there are no fixed embeddings to cache.",
                        fix="train it directly: larb baseline train " + spec.name)
    tasks = [get_task(str(t)) for t in task_names]
    return [(task, system.task_features(task)) for task in tasks]


def task_with_audio(task_name: str, audio: str | None) -> str | Task:
    """A task id or folder, or with `audio` a registered task whose audio lies in that folder (an
    audio-to-text task has no folder form: its audio comes from the export of its split)."""
    if audio is None:
        return task_name
    folder = Path(audio).expanduser()
    if not folder.is_dir():
        raise LarbError("the --audio folder does not exist.", path=folder, fix="pass the folder 'larb data export' "
                                                                              "wrote for the task's split.")
    return dataclasses.replace(get_task(task_name), audio_dir=folder.resolve())


def run_baseline(name: str, task_name: str | Path | Task, checkpoints: Sequence[Path], output: Path,
                 overrides: Sequence[str] = (), progress: bool = True) -> Path:
    """Rank a task with one trained checkpoint (or the zero-shot system when none is given), or with
    several as a score-level ensemble, and write `output` as a submission folder."""
    spec = get_baseline(name)
    members = [Member(checkpoint=Path(c), baseline=spec) for c in checkpoints] or [Member(baseline=spec)]
    return run_models(members, task_name, output, "score-mean", overrides, progress)


def _info(members: Sequence[LoadedMember], method: str) -> SubmissionInfo:
    frozen: dict[str, int] = {}
    trainable = 0
    for m in members:
        counts = m.spec.parameter_counts(m.system.config)
        frozen.update(counts.frozen)  # pretrained parts shared by members are counted once
        trainable += counts.trainable
    names = [m.spec.system_name(m.system.config) for m in members]
    parts = []
    for name, m in zip(names, members, strict=True):
        if not m.info["training_data"]:
            parts.append(f"{name}: no training; frozen encoders only.")
            continue
        trained_on = ", ".join(f"{d['dataset']}/{d['split']}" for d in m.info["training_data"])
        selected = m.info.get("validation", {}).get("val_mAP@10")
        parts.append(f"{name}: trained on {trained_on}" + (f", epoch {m.info['epoch']} selected by validation "
                                                           f"mAP@10 {selected:.4f}." if selected is not None else "."))
    if len(members) > 1:
        how = "mean of similarities" if method == "score-mean" else "mean of l2-normalised embeddings"
        parts.insert(0, f"Ensemble ({method}: {how}) of {len(members)} models.")
        unique = list(dict.fromkeys(names))
        system = f"Ensemble of {len(members)} x {unique[0]}" if len(unique) == 1 else "Ensemble: " + " + ".join(unique)
    else:
        system = names[0]
    papers = list(dict.fromkeys(m.spec.paper for m in members))
    links = members[0].spec.links if len({m.spec.name for m in members}) == 1 else {}
    return SubmissionInfo(system=system, description=" ".join(papers) + ". " + " ".join(parts), links=links,
                          total_parameters=sum(frozen.values()) + trainable, trainable_parameters=trainable,
                          training_data=[d for m in members for d in m.info["training_data"]],
                          members=[m.info["source"] for m in members],
                          baselines=tuple({"name": m.spec.name, "settings": m.spec.declared_settings(m.system.config)}
                                          for m in members))


def run_models(members: Sequence[Member], task_name: str | Path | Task, output: Path, method: str = "score-mean",
               overrides: Sequence[str] = (), progress: bool = True) -> Path:
    """Rank a task (id, folder or `Task`) with one model or an ensemble; write `output` as a submission."""
    if not members:
        raise LarbError("no model given.", fix="pass at least one checkpoint.")
    if method not in METHODS:
        raise LarbError(f"unknown ensemble method {method!r}.", fix=f"use one of {', '.join(METHODS)}.")
    check_submission_id(output)
    task = task_name if isinstance(task_name, Task) else get_task(str(task_name))
    n_candidates = len(task.ground_truth.corpus)
    if n_candidates < task.spec.depth:
        raise LarbError(f"task {task.id} has {n_candidates} candidates; a ranking needs {task.spec.depth}.",
                        fix=f"use a task with at least {task.spec.depth} candidates.")
    loaded = [load_member(m, overrides, progress) for m in members]
    indices = rank(loaded, task, method)
    info = _info(loaded, method)
    log = members[0].checkpoint.parent / "log.jsonl" if len(members) == 1 and members[0].checkpoint else None
    if log is not None and log.is_file():
        info = dataclasses.replace(info, training_log=log)  # the site plots the run's curves
    if distributed.is_main_process():  # under a launcher every process ranks; one writes
        write_submission(output, task, indices, info, method)
    distributed.wait_for_everyone()
    return output


def members_from_arguments(arguments: Sequence[str]) -> list[Member]:
    """`larb baseline ensemble` arguments: checkpoints (best.pt) or zero-shot baseline names."""
    return [Member(checkpoint=Path(a)) if Path(a).suffix == ".pt" or Path(a).exists() else Member(baseline=a)
            for a in arguments]
