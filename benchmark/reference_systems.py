"""Reference systems that need no model: the seeded chance level every board should show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from benchmark import output_folders
from benchmark.atomic import atomic_write_text
from benchmark.groundtruth import GroundTruth
from benchmark.metrics import K
from benchmark.rankings import write_t2a_csv


def random_rankings(ground_truth: GroundTruth, seed: int) -> list[list[str]]:
    """For each query, K candidates drawn without replacement, uniformly (chance level)."""
    rng = np.random.default_rng(seed)
    corpus = ground_truth.corpus
    return [[corpus[i] for i in rng.choice(len(corpus), size=K, replace=False)]
            for _ in range(ground_truth.n_queries)]


def write_random_submission(folder: Path, task_id: str, ground_truth: GroundTruth, seed: int,
                            date: str) -> Path:
    """A complete submission folder holding the chance-level ranking of one task, written whole
    (`benchmark.output_folders`), replacing an earlier one."""
    csv_name = task_id.replace("/", "__") + ".csv"
    staging = output_folders.staging_folder(folder, "larb reference system")
    write_t2a_csv(staging / csv_name, ground_truth.query_ids, ground_truth.query_texts,
                  random_rankings(ground_truth, seed))
    metadata = {
        "id": folder.name, "team": "LARB organisers", "system": f"Chance level (uniform random, seed {seed})",
        "description": "Ten candidates drawn uniformly without replacement for each query; the floor "
                       "every real system must clear.",
        "parameters": {"total": 0, "trainable": 0}, "training_data": [], "ensemble": False,
        "date": date, "licence": "CC0-1.0", "rankings": {task_id: csv_name},
    }
    atomic_write_text(staging / "metadata.yaml", yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True))
    return output_folders.publish(staging, folder, overwrite=True)
