"""A task's frozen-encoder inputs: one row per corpus file, one per query, and their pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth
from benchmark.tasks import Task


def require_text_to_audio(task: Task) -> None:
    if task.ground_truth.direction != "t2a":
        raise LarbError(f"task {task.id} is audio-to-text; the baselines rank audio for captions.",
                        fix="pick a text-to-audio task (see 'larb tasks').")


def declared_training_data(task: Task) -> list[dict[str, str]]:
    """The `training_data` entries that using `task` for training or model selection implies."""
    names = task.spec.evaluation_data or (f"{task.id}/all",)
    return [{"dataset": name.rsplit("/", 1)[0], "split": name.rsplit("/", 1)[1]} for name in names]


@dataclass(frozen=True)
class TaskFeatures:
    """`audio[i]` belongs to `ground_truth.corpus[i]`, `text[j]` to `ground_truth.query_ids[j]`."""

    ground_truth: GroundTruth
    audio: torch.Tensor
    text: torch.Tensor

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(query index, audio index) of every relevant pair: the training examples."""
        corpus_index = {name: i for i, name in enumerate(self.ground_truth.corpus)}
        queries, audio = [], []
        for q, qid in enumerate(self.ground_truth.query_ids):
            for name, grade in self.ground_truth.relevance[qid].items():
                if grade > 0:
                    queries.append(q)
                    audio.append(corpus_index[name])
        return torch.tensor(queries, dtype=torch.long), torch.tensor(audio, dtype=torch.long)

    def subset(self, corpus_indices: np.ndarray) -> TaskFeatures:
        """The files at `corpus_indices` and the queries whose relevant files all lie among them."""
        gt = self.ground_truth
        keep = [gt.corpus[i] for i in sorted(corpus_indices)]
        kept = set(keep)
        query_rows = [q for q, qid in enumerate(gt.query_ids) if set(gt.relevance[qid]) <= kept]
        sub = GroundTruth(gt.direction, tuple(gt.query_ids[q] for q in query_rows),
                          tuple(gt.query_texts[q] for q in query_rows), tuple(keep),
                          {gt.query_ids[q]: gt.relevance[gt.query_ids[q]] for q in query_rows}, gt.kind)
        return TaskFeatures(sub, self.audio[sorted(corpus_indices)], self.text[query_rows])

    def holdout(self, fraction: float, seed: int) -> tuple[TaskFeatures, TaskFeatures]:
        """(train, validation) split by audio file, so no recording is on both sides."""
        n = len(self.ground_truth.corpus)
        n_val = round(fraction * n)
        if not 0 < n_val < n:
            raise LarbError(f"val_fraction={fraction} leaves no validation or no training file of {n}.",
                            fix="pass --val-task, or --set val_fraction=0.1.")
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(order[n_val:]), self.subset(order[:n_val])
