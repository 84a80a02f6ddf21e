"""Joining several training tasks into one training set (`baselines.task_features.concatenate`)."""

from __future__ import annotations

import pytest
import torch

from baselines.task_features import TaskFeatures, concatenate
from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth, captions_a2t


def _features(names: list[str], captions_per_file: int, offset: float) -> TaskFeatures:
    ids = [f"{n}#{k}" for n in names for k in range(1, captions_per_file + 1)]
    gt = GroundTruth("t2a", tuple(ids), tuple(f"caption {i}" for i in ids), tuple(names),
                     {i: {i.split("#")[0]: 1} for i in ids})
    audio = offset + torch.arange(len(names), dtype=torch.float32)[:, None].repeat(1, 3)
    return TaskFeatures(gt, audio, offset + torch.arange(len(ids), dtype=torch.float32)[:, None].repeat(1, 3))


def test_joined_tasks_keep_every_pair_and_equal_names_apart():
    clotho = _features(["a.wav", "b.wav"], 5, 0.0)
    audiocaps = _features(["a.wav", "c.wav", "d.wav"], 1, 100.0)
    joined = concatenate([("clotho", clotho), ("audiocaps", audiocaps)])
    gt = joined.ground_truth
    assert gt.corpus == ("clotho:a.wav", "clotho:b.wav", "audiocaps:a.wav", "audiocaps:c.wav", "audiocaps:d.wav")
    assert len(gt.query_ids) == 13 and gt.relevance["audiocaps:a.wav#1"] == {"audiocaps:a.wav": 1}
    queries, audio = joined.pairs()
    assert len(queries) == 13
    # every pair points at the audio row of its own task's file
    for q, a in zip(queries.tolist(), audio.tolist(), strict=True):
        assert gt.query_ids[q].split("#")[0] == gt.corpus[a]
        assert joined.audio[a, 0] == (0.0 if gt.corpus[a].startswith("clotho") else 100.0) + (a if a < 2 else a - 2)
    train, val = joined.holdout(0.4, seed=0)
    assert not set(train.ground_truth.corpus) & set(val.ground_truth.corpus)
    assert len(train.ground_truth.query_ids) + len(val.ground_truth.query_ids) == 13


def test_one_task_is_passed_through_and_audio_to_text_is_refused():
    clotho = _features(["a.wav"], 2, 0.0)
    assert concatenate([("clotho", clotho)]) is clotho
    a2t = TaskFeatures(captions_a2t([("a.wav", ["x", "y"])]), torch.zeros(2, 3), torch.zeros(1, 3))
    with pytest.raises(LarbError, match="audio-to-text"):
        concatenate([("clotho", clotho), ("a2t", a2t)])

