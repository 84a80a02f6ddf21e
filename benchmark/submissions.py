"""Submission folders: `submissions/<id>/metadata.yaml` plus one ranking CSV per task."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from benchmark import jsonschemas
from benchmark.errors import LarbError

METADATA_FILE = "metadata.yaml"


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
    try:
        metadata = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise LarbError(f"invalid YAML ({getattr(exc, 'problem', exc)}).", path=path,
                        line=line + 1 if line is not None else None, fix="fix the YAML syntax.") from None
    except UnicodeDecodeError:
        raise LarbError("not UTF-8.", path=path, fix="save the file as UTF-8.") from None
    if isinstance(metadata, dict) and isinstance(metadata.get("date"), dt.date):
        metadata["date"] = metadata["date"].isoformat()  # YAML reads 2026-01-31 as a date
    errors = sorted(jsonschema.Draft202012Validator(metadata_schema()).iter_errors(metadata),
                    key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        field = "/".join(str(p) for p in first.path) or "(top level)"
        raise LarbError(f"metadata field {field}: {first.message}.", path=path,
                        fix="see benchmark/schemas/submission_metadata.schema.json.")
    if metadata["id"] != folder.resolve().name:
        raise LarbError(f"id {metadata['id']!r} differs from the folder name {folder.resolve().name!r}.",
                        path=path, fix="make them equal.")
    for task_id, file_name in metadata["rankings"].items():
        if not (folder / file_name).is_file():
            raise LarbError(f"the ranking {file_name!r} for task {task_id} is missing.", path=folder,
                            fix="add the file or remove it from 'rankings'.")
    return Submission(folder, metadata)


def find_submissions(root: str | Path) -> list[Submission]:
    """Every submission folder under `root`, sorted by id."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [load_submission(p) for p in sorted(root.iterdir()) if (p / METADATA_FILE).is_file()]
