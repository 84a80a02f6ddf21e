"""Evaluate any model that follows `baselines.model_protocol`, and write its rankings as submissions.

    from baselines import evaluate_model
    results = evaluate_model(MyModel(), ["demo", "clotho-v2.1/evaluation"])
    results["demo"].metrics["mAP@10"]

`larb model run MODULE:FACTORY --task T --output submissions/ID` does the same from the shell and
writes a normal submission folder whose metadata comes from the options, a metadata template, or
attributes of the model (`parameters`, `training_data`, `links`, `description`), never from LARB.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines.model_protocol import EncoderModel, ProtocolEmbeddings, check_model
from baselines.submission_writer import SubmissionInfo, check_submission_id, write_submission
from benchmark.errors import LarbError
from benchmark.evaluation import Evaluation, evaluate
from benchmark.tasks import Task, get_task


def _task(task: str | Path | Task) -> Task:
    return task if isinstance(task, Task) else get_task(task)


def evaluate_model(model: EncoderModel, tasks: str | Path | Task | Sequence[str | Path | Task], *,
                   batch_size: int = 16, progress: bool = True) -> dict[str, Evaluation]:
    """Each task scored with `model`'s cosine similarities, by task id (vectors cached by content)."""
    embeddings = ProtocolEmbeddings(model, batch_size, progress)
    chosen = [tasks] if isinstance(tasks, (str, Path, Task)) else list(tasks)
    results = {}
    for task in map(_task, chosen):
        results[task.id] = evaluate(embeddings.similarity(task), task, submission_id=model.name)
    return results


def load_model(reference: str, arguments: Mapping[str, str] | None = None) -> EncoderModel:
    """The model named by `module:attribute`: a model object, or a factory called with `arguments`.

    The current folder is searched first, so `larb model run my_model:build` finds `./my_model.py`."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise LarbError(f"{reference!r} is not MODULE:FACTORY.", fix="write e.g. my_model:build (my_model.py here).")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] and exc.name != module_name:
            raise
        raise LarbError(f"no module {module_name!r} (looked in {Path.cwd()} and the installed packages).",
                        fix="run from the folder that holds it, or install its package.") from None
    finally:
        sys.path.pop(0)
    target = getattr(module, attribute, None)
    if target is None:
        raise LarbError(f"module {module_name!r} has no {attribute!r}.", fix="name a factory or a model object.")
    is_factory = isinstance(target, type) or (callable(target) and not hasattr(target, "encode_audio"))
    if not is_factory and arguments:
        raise LarbError(f"{reference!r} is a model object; --arg is for factories.", fix="drop the --arg options.")
    model = target(**dict(arguments or {})) if is_factory else target
    return check_model(model, reference)


@dataclass(frozen=True)
class ModelMetadata:
    """What the submission says about an outside model; unset fields come from the model's own
    attributes (`parameters`, `training_data`, `links`, `description`) or are an error."""

    team: str | None = None
    licence: str | None = None
    system: str | None = None
    description: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, int] | None = None
    training_data: list[dict[str, str]] | None = None

    def resolved(self, model: EncoderModel) -> SubmissionInfo:
        def need(value: Any, what: str, fix: str) -> Any:
            if value is None:
                raise LarbError(f"the submission needs {what}.", fix=fix)
            return value

        team = need(self.team, "a team name", "pass --team NAME (or 'team' in --metadata).")
        licence = need(self.licence, "a licence for the rankings", "pass --licence, e.g. --licence CC-BY-4.0.")
        parameters = need(self.parameters or getattr(model, "parameters", None), "the model's parameter counts",
                          "pass --parameters TOTAL,TRAINABLE (or give the model a 'parameters' attribute).")
        training = self.training_data if self.training_data is not None else getattr(model, "training_data", None)
        training = need(training, "what the model was trained on (pre-training excluded)",
                        "pass --training-data DATASET/SPLIT for each (or --training-data none for zero-shot).")
        description = self.description or getattr(model, "description", None) or (
            f"{model.name}: audio and text embeddings compared by cosine similarity (LARB model protocol).")
        return SubmissionInfo(system=self.system or model.name, description=description,
                              links={**getattr(model, "links", {}), **self.links},
                              total_parameters=int(parameters["total"]),
                              trainable_parameters=int(parameters["trainable"]),
                              training_data=list(training), members=[model.name], team=team, licence=licence)


def run_model(model: EncoderModel, task: str | Path | Task, output: Path, metadata: ModelMetadata, *,
              batch_size: int = 16, progress: bool = True) -> tuple[Path, Evaluation]:
    """Rank `task` with `model`, write `output` as a submission folder, and score it."""
    model = check_model(model)
    info = metadata.resolved(model)  # every metadata error before any embedding
    check_submission_id(Path(output))
    loaded = _task(task)
    result = evaluate_model(model, loaded, batch_size=batch_size, progress=progress)[loaded.id]
    folder = write_submission(Path(output), loaded, result.ranking.indices, info)
    return folder, evaluate(folder, loaded)
