"""The two things a baseline does: train a head, and write a submission (one model or an ensemble).

Used by `larb baseline train|run`, by `larb demo` and by the tests, so all three follow one path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from baselines.config import apply_overrides, resolve_device
from baselines.ensemble import Member, run_models
from baselines.registry import get_baseline
from baselines.run_record import write_run_record
from baselines.spec import BaselineSpec
from baselines.task_features import concatenate, declared_training_data, require_text_to_audio
from baselines.training import TrainResult, train
from benchmark.errors import LarbError
from benchmark.tasks import Task, get_task


def default_run_folder(name: str, train_tasks: Sequence[Task]) -> Path:
    ids = "+".join(task.id for task in train_tasks)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ids)
    return Path("runs") / f"{name}-{safe}"


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


def train_baseline(name: str | BaselineSpec, train_tasks: str | Path | Sequence[str | Path],
                   val_task: str | Path | None, output: Path | None, overrides: Sequence[str] = (),
                   progress: bool = True) -> TrainResult:
    """Train on one task or on several joined (e.g. Clotho + AudioCaps + WavText5K), select on
    `val_task` (or on a held-out share of the training files).

    Heads on cached features go through `training.train`; systems that fine-tune their encoders
    bring their own loop (`system.fit`, see `baselines.finetune`)."""
    spec = name if isinstance(name, BaselineSpec) else get_baseline(name)
    config = apply_overrides(spec.defaults, overrides)
    tasks = _training_tasks(train_tasks)
    system = spec.build(config, resolve_device(config), progress)
    features = concatenate([(task.id, system.task_features(task)) for task in tasks])
    training_data = [entry for task in tasks for entry in declared_training_data(task)]
    validation = None
    if val_task is None:
        train_features, val_features = features.holdout(config["val_fraction"], config["seed"])
    else:
        validation = get_task(str(val_task))
        require_text_to_audio(validation)
        train_features, val_features = features, system.task_features(validation)
        training_data += declared_training_data(validation)
    folder = Path(output) if output is not None else default_run_folder(spec.name, tasks)
    write_run_record(folder, spec, config, tasks, validation)
    fit = getattr(system, "fit", None)
    if fit is not None:
        return fit(spec, train_features, val_features, training_data, folder, progress)
    return train(spec, system, train_features, val_features, training_data, folder, progress)


def run_baseline(name: str, task_name: str | Path, checkpoints: Sequence[Path], output: Path,
                 overrides: Sequence[str] = (), progress: bool = True) -> Path:
    """Rank a task with one trained checkpoint (or the zero-shot system when none is given), or with
    several as a score-level ensemble, and write `output` as a submission folder."""
    spec = get_baseline(name)
    members = [Member(checkpoint=Path(c), baseline=spec) for c in checkpoints] or [Member(baseline=spec)]
    return run_models(members, task_name, output, "score-mean", overrides, progress)
