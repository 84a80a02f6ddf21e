"""A task's frozen-encoder inputs: one row per corpus file, one per query, and their pairs."""

from __future__ import annotations

from collections.abc import Sequence
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


def declared_training_data(task: Task) -> list[dict]:
    """The `training_data` entries that using `task` for training or model selection implies,
    with the build options that chose its clips (e.g. WavCaps' blacklist) when an export recorded them."""
    names = task.spec.evaluation_data or (f"{task.id}/all",)
    options = {"options": dict(task.spec.training_options)} if task.spec.training_options else {}
    return [{"dataset": name.rsplit("/", 1)[0], "split": name.rsplit("/", 1)[1], **options} for name in names]


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


def concatenate(parts: Sequence[tuple[str, TaskFeatures]]) -> TaskFeatures:
    """Several tasks' features as one training set (the paper's Clotho + AudioCaps + WavText5K).

    Query ids and file names get a `TASK_ID:` prefix, so equal names in two tasks stay two
    recordings; the features must come from one system (same width, same token length)."""
    if len(parts) == 1:
        return parts[0][1]
    query_ids, texts, corpus, relevance = [], [], [], {}
    for task_id, features in parts:
        gt = features.ground_truth
        if gt.direction != "t2a":
            raise LarbError(f"task {task_id} is audio-to-text; training tasks must be text-to-audio.",
                            fix="pick text-to-audio tasks (see 'larb tasks').")
        query_ids += [f"{task_id}:{q}" for q in gt.query_ids]
        texts += gt.query_texts
        corpus += [f"{task_id}:{name}" for name in gt.corpus]
        relevance.update({f"{task_id}:{q}": {f"{task_id}:{n}": g for n, g in gt.relevance[q].items()}
                          for q in gt.query_ids})
    kinds = {features.ground_truth.kind for _, features in parts}
    kind = kinds.pop() if len(kinds) == 1 else ("graded" if "graded" in kinds else "multi")
    merged = GroundTruth("t2a", tuple(query_ids), tuple(texts), tuple(corpus), relevance, kind)
    return TaskFeatures(merged, torch.cat([f.audio for _, f in parts]), torch.cat([f.text for _, f in parts]))
