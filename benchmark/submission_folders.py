"""Submission folders: `submissions/<id>/metadata.yaml` plus one ranking CSV per task."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from benchmark import jsonschemas, untrusted
from benchmark.errors import LarbError

METADATA_FILE = "metadata.yaml"
TRAINING_LOG_KEYS = ("epoch", "train_loss", "val_loss", "val_mAP@10")


def metadata_schema() -> dict:
    return jsonschemas.load("submission_metadata.schema.json")


@dataclass(frozen=True)
class Submission:
    """A validated submission folder."""

    folder: Path
    metadata: dict

    @property
    def id(self) -> str:
        return self.metadata["id"]

    def ranking_path(self, task_id: str) -> Path:
        return self.folder / self.metadata["rankings"][task_id]

    def trains_on(self, datasets: tuple[str, ...]) -> bool:
        """Whether the declared training data includes any of `datasets` ("name/split")."""
        declared = {f"{d['dataset']}/{d['split']}" for d in self.metadata["training_data"]}
        return bool(declared & set(datasets))


def load_submission(folder: str | Path) -> Submission:
    """Read and validate a submission folder; every problem is one clear `LarbError`."""
    folder = Path(folder)
    path = folder / METADATA_FILE
    if not path.is_file():
        raise LarbError(f"{METADATA_FILE} not found in the submission folder.", path=folder,
                        fix=f"add {METADATA_FILE} (see the README's submission section).")
    metadata = untrusted.load_yaml(untrusted.inside(folder, path, what=METADATA_FILE))
    errors = list(jsonschema.Draft202012Validator(metadata_schema()).iter_errors(metadata))
    if errors:
        first = min(errors, key=lambda e: (len(e.path), list(map(str, e.path))))
        field = "/".join(str(p) for p in first.path) or "(top level)"
        raise LarbError(f"metadata field {field}: {untrusted.excerpt(first.instance)} {_reason(first)}.",
                        path=path, fix="see benchmark/schemas/submission_metadata.schema.json.")
    try:
        dt.date.fromisoformat(metadata["date"])
    except ValueError:
        raise LarbError(f"metadata field date: {untrusted.excerpt(metadata['date'])} is not a real date.",
                        path=path, fix="write the submission date as YYYY-MM-DD.") from None
    if metadata["id"] != folder.resolve().name:
        raise LarbError(f"id {metadata['id']!r} differs from the folder name {folder.resolve().name!r}.",
                        path=path, fix="make them equal.")
    for task_id, file_name in metadata["rankings"].items():
        ranking = folder / file_name
        if not (ranking.exists() or ranking.is_symlink()):
            raise LarbError(f"the ranking {file_name!r} for task {task_id} is missing.", path=folder,
                            fix="add the file or remove it from 'rankings'.")
        untrusted.regular_file(untrusted.inside(folder, ranking, what="ranking file"), what="ranking file")
    if "training_log" in metadata:
        log = folder / metadata["training_log"]
        if not (log.exists() or log.is_symlink()):
            raise LarbError(f"the training log {metadata['training_log']!r} is missing.", path=folder,
                            fix="add the file or remove training_log from metadata.yaml.")
        untrusted.regular_file(untrusted.inside(folder, log, what="training log"), what="training log")
    return Submission(folder, metadata)


def training_history(submission: Submission) -> list[dict[str, Any]]:
    """The per-epoch records of the run behind a submission (its declared `training_log`), or []."""
    name = submission.metadata.get("training_log")
    if not name:
        return []
    path = untrusted.regular_file(untrusted.inside(submission.folder, submission.folder / name, what="training log"),
                                  what="training log")
    text = untrusted.decode_utf8(path.read_bytes(), path)
    history = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or any(not isinstance(record.get(k), (int, float))
                                                   or isinstance(record.get(k), bool) for k in TRAINING_LOG_KEYS):
                raise ValueError
        except (ValueError, TypeError, RecursionError):  # RecursionError: a line nested thousands deep
            raise LarbError(f"not an epoch record with {', '.join(TRAINING_LOG_KEYS)}.", path=path, line=line_no,
                            fix="write the run's log.jsonl as 'larb baseline train' does, or drop training_log.") \
                from None
        history.append({k: record[k] for k in TRAINING_LOG_KEYS})
    return history


def find_submissions(root: str | Path) -> list[Submission]:
    """Every submission folder under `root`, sorted by id."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [load_submission(p) for p in sorted(root.iterdir()) if (p / METADATA_FILE).is_file()]


def _reason(error: jsonschema.ValidationError) -> str:
    """What the schema wanted, without jsonschema's repr of the whole offending value."""
    wanted = error.schema.get(error.validator) if isinstance(error.schema, dict) else None
    reasons = {"type": f"is not of type {wanted}", "required": f"lacks a required field ({error.message})",
               "pattern": f"does not match {wanted}", "enum": f"is not one of {wanted}",
               "additionalProperties": f"has a field the schema does not allow ({error.message[-200:]})",
               "minLength": "is empty", "minimum": f"is below {wanted}", "minProperties": "is empty"}
    return reasons.get(str(error.validator), f"fails the schema's {error.validator!r} rule")
