"""The contract check's loss item: judged after 10 steps, then step by step up to 30 while the loss
is still above its start (a sharp temperature makes the first steps overshoot)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from baselines.check import _MAX_STEPS, _STEPS, _training_checks
from baselines.spec import SyntheticSystem, TrainingHooks


class ScriptedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))

    def forward(self, audio: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight * audio, self.weight * text


class ScriptedSystem(TrainingHooks):
    """A loss that follows a given trajectory (one value per forward pass) and still has gradients."""

    def __init__(self, trajectory: list[float]) -> None:
        self.config = {"lr": 1e-3}
        self.head = ScriptedHead()
        self.trajectory = trajectory
        self.calls = 0
        self.after_steps = 0
        self.hooks_called: list[str] = []

    def batch_loss(self, audio, text, clips, queries, generator) -> torch.Tensor:
        self.hooks_called.append("batch_loss")
        return torch.tensor(1.0)

    def validation_loss(self, audio, text, clips, queries, generator) -> torch.Tensor:
        self.hooks_called.append("validation_loss")
        return torch.tensor(1.0)

    def loss(self, audio, text, audio_ids, generator=None) -> torch.Tensor:
        value = self.trajectory[min(self.calls, len(self.trajectory) - 1)]
        self.calls += 1
        live = (audio * text).sum()
        return live - live.detach() + value

    def after_step(self, head: nn.Module) -> None:
        self.after_steps += 1


def _run(trajectory: list[float]) -> tuple[ScriptedSystem, str, str]:
    system = ScriptedSystem(trajectory)
    synthetic = SyntheticSystem(system, torch.ones(2, 4), torch.ones(2, 4), torch.arange(2), 4)
    results = _training_checks(system, synthetic, {"lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0})
    gradients, groups, losses, loss = results
    assert gradients.status == groups.status == losses.status == "ok"
    assert system.hooks_called == ["batch_loss", "validation_loss"]
    return system, loss.status, loss.what


def test_a_loss_that_falls_within_ten_steps_is_judged_at_ten():
    system, status, what = _run([5.0 - 0.1 * i for i in range(40)])
    assert status == "ok" and system.calls == _STEPS + 1 and system.after_steps == _STEPS
    assert what.startswith(f"{_STEPS} optimiser steps") and "5.0000 -> 4.0000" in what and "peak" not in what


def test_an_early_spike_gets_more_steps_and_is_reported():
    trajectory = [5.0, 9.0, 12.0, 21.0, 16.0, 14.0, 8.0, 7.0, 6.0, 5.5, 5.1, 4.9, 3.0]
    system, status, what = _run(trajectory)
    assert status == "ok" and system.calls == 12
    assert what.startswith("11 optimiser steps") and "5.0000 -> 4.9000 (peak 21.0000)" in what


@pytest.mark.parametrize("trajectory", [[5.0] * 40, [5.0, *[6.0] * 39]])
def test_a_loss_that_never_falls_fails_after_the_maximum(trajectory):
    system, status, what = _run(trajectory)
    assert status == "FAIL" and system.calls == _MAX_STEPS + 1 and what.startswith(f"{_MAX_STEPS} optimiser")
