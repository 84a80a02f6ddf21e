"""Writing a baseline's ranking as a submission folder, exactly as an outside team would.

`submissions/<id>/metadata.yaml` (validated against the harness's JSON Schema before anything
is renamed into place) plus one ranking CSV, text-to-audio or audio-to-text. The metadata names
the registered baseline and model settings of every member (`baselines`), which is how the
leaderboard puts a reproduced run beside the figures its paper reported. The folder is built under
a temporary name beside the target and swapped into its place, so a reader never sees half a submission; an existing
folder is replaced only when LARB wrote it (`benchmark.output_folders`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from benchmark import output_folders
from benchmark.errors import LarbError
from benchmark.rankings import write_ranking_csv
from benchmark.submission_folders import METADATA_FILE, metadata_schema
from benchmark.tasks import Task

TRAINING_LOG = "training_log.jsonl"
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class SubmissionInfo:
    """What metadata.yaml says about the system (the ranking supplies the rest)."""

    system: str
    description: str
    links: dict[str, str]
    total_parameters: int
    trainable_parameters: int
    training_data: list[dict[str, str]]
    members: list[str]
    baselines: tuple[dict[str, Any], ...] = ()  # per member: registered name and model settings
    team: str = "LARB baselines"
    licence: str = "MIT"
    training_log: Path | None = None  # the run's log.jsonl, copied in as TRAINING_LOG


def check_submission_id(output: Path) -> str:
    """The folder name, which must be a valid submission id, of a folder LARB may write; checked
    before any work is done."""
    name = output.name
    if not _ID_PATTERN.match(name):
        raise LarbError(f"{name!r} is not a valid submission id (lower-case letters, digits, '.', '_', '-'; "
                        "2 to 64 characters).", path=output, fix="name the output folder e.g. "
                        "submissions/passt-mpnet-tags-mn04.")
    output_folders.check_target(output, overwrite=True)
    return name


def ranking_file_name(task: Task) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", task.id) + ".csv"


def write_submission(output: Path, task: Task, indices: np.ndarray, info: SubmissionInfo,
                             method: str = "score-mean") -> Path:
    """`submissions/<id>/` for `task` from top-k indices (queries x depth): metadata.yaml (validated) and
    one ranking CSV (text-to-audio or audio-to-text), written under a temporary name and renamed
    into place. `method` is the ensemble method, declared when there are several members."""
    submission_id = check_submission_id(output)
    gt = task.ground_truth
    depth = task.spec.depth
    if indices.shape[0] != gt.n_queries or indices.shape[1] < depth:
        raise LarbError(f"the task has {len(gt.corpus)} candidates; a ranking needs {depth} per query.",
                        fix=f"use a task with at least {depth} candidates.")
    csv_name = ranking_file_name(task)
    metadata: dict[str, Any] = {
        "id": submission_id, "team": info.team, "system": info.system, "description": info.description,
        "links": info.links, "parameters": {"total": info.total_parameters, "trainable": info.trainable_parameters},
        "training_data": _unique(info.training_data), "ensemble": len(info.members) > 1,
        "date": dt.datetime.now(dt.UTC).date().isoformat(), "licence": info.licence, "rankings": {task.id: csv_name},
    }
    if len(info.members) > 1:
        metadata["ensemble_method"] = method
        metadata["members"] = list(info.members)
    if info.baselines:
        metadata["baselines"] = [dict(b) for b in info.baselines]
    if info.training_log is not None:
        metadata["training_log"] = TRAINING_LOG
    errors = list(jsonschema.Draft202012Validator(metadata_schema()).iter_errors(metadata))
    if errors:
        raise ValueError(f"baseline metadata violates the schema: {errors[0].message}")
    staging = output_folders.staging_folder(output, "larb baseline run")
    try:
        write_ranking_csv(staging / csv_name, gt, indices)
        if info.training_log is not None:
            shutil.copyfile(info.training_log, staging / TRAINING_LOG)
        (staging / METADATA_FILE).write_text(yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True),
                                             encoding="utf-8")
        publish_mode(staging)
        output_folders.publish(staging, output, overwrite=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


def publish_mode(folder: Path) -> None:
    """Temporary files and folders are created private (0600/0700); a submission is not."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _unique(entries: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for entry in entries:
        seen.setdefault((entry["dataset"], entry["split"]), dict(entry))
    return list(seen.values())
