"""`larb baseline check NAME`: the contract every baseline head must meet, on synthetic input.

Random frozen inputs stand in for the encoders (no asset needed), so the check runs anywhere in
a second: output shapes and dtype, unit-norm embeddings, the declared trainable parameter
count, gradients reaching every trainable parameter, and a few optimiser steps lowering the
loss. Each failure says what to fix. Asset availability is reported, not judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from baselines.assets import available_offline
from baselines.spec import BaselineSpec
from baselines.train.schedules import make_optimizer

Status = Literal["ok", "FAIL", "info"]
_STEPS = 10
_MAX_STEPS = 30


@dataclass(frozen=True)
class CheckResult:
    status: Status
    what: str
    fix: str = ""

    def line(self) -> str:
        return f"  {self.status:<5} {self.what}" + (f"  Fix: {self.fix}" if self.fix else "")


def _check(ok: bool, what: str, fix: str) -> CheckResult:
    return CheckResult("ok", what) if ok else CheckResult("FAIL", what, fix)


def contract_check(spec: BaselineSpec, config: Mapping[str, Any]) -> list[CheckResult]:
    """Run every check; never raises for a failed check (the results say what failed)."""
    synthetic = spec.synthetic_system(config)
    system, head, dim = synthetic.system, synthetic.system.head, synthetic.embedding_dim
    batch = synthetic.audio_features.shape[0]
    results = []
    head.train()
    audio, text = head(synthetic.audio_features, synthetic.text_features)
    shapes_ok = audio.shape == (batch, dim) and text.shape == (batch, dim)
    results.append(_check(shapes_ok, f"embedding shapes: audio {tuple(audio.shape)}, text {tuple(text.shape)} "
                          f"(expected ({batch}, {dim}))",
                          "head(audio_features, text_features) must return two (batch, D) tensors."))
    dtype_ok = audio.dtype == text.dtype == torch.float32
    results.append(_check(dtype_ok, f"dtypes: audio {audio.dtype}, text {text.dtype}",
                          "return float32 embeddings (cast after mixed-precision layers)."))
    finite = bool(torch.isfinite(audio).all() and torch.isfinite(text).all())
    results.append(_check(finite, "embeddings are finite", "look for divisions by zero or log(0) in the head."))
    norms = torch.cat([audio.norm(dim=1), text.norm(dim=1)]).detach()
    unit = bool(torch.allclose(norms, torch.ones_like(norms), atol=1e-4))
    results.append(_check(unit, f"l2-normalised: norms in [{norms.min():.5f}, {norms.max():.5f}]",
                          "end both branches with torch.nn.functional.normalize(x, dim=-1)."))
    declared = spec.parameter_counts(config).trainable
    counted = sum(p.numel() for p in head.parameters() if p.requires_grad)
    results.append(_check(counted == declared, f"trainable parameters: head has {counted:,}, declared {declared:,}",
                          "make parameter_counts() build the same head as the system."))
    if not system.needs_training:
        results.append(CheckResult("info", "no trainable part in this configuration (zero-shot): "
                                           "training checks skipped"))
    else:
        results += _training_checks(system, synthetic, config)
    for name in spec.required_assets(config):
        where = "available offline" if available_offline(name) else "not cached or mirrored (downloads on first use)"
        results.append(CheckResult("info", f"asset {name}: {where}"))
    return results


def _training_checks(system, synthetic, config: Mapping[str, Any]) -> list[CheckResult]:
    """Gradients reach every trainable parameter, and the loss on a fixed batch falls below its start.

    The loss is judged after `_STEPS` steps and, while it is still above its start, after each
    further step up to `_MAX_STEPS`: a sharp initial temperature (CLAP's tau = 0.007) makes the
    first Adam steps from random weights overshoot before the loss falls (measured: 4.75 -> 21.7
    at step 4, back below 4.75 at step 11), which is slow, not broken. The peak is reported."""
    head = system.head
    groups = system.parameter_groups(head)
    grouped = {id(p) for group in groups for p in group["params"]}
    trainable = {id(p) for p in head.parameters() if p.requires_grad}
    optimizer = make_optimizer(config, groups)  # the optimiser the training loop builds

    def step() -> float:
        optimizer.zero_grad()
        audio, text = head(synthetic.audio_features, synthetic.text_features)
        loss = system.loss(audio, text, synthetic.audio_ids, torch.Generator().manual_seed(0))
        loss.backward()
        return loss.item()

    losses = [step()]
    missing = [name for name, p in head.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.any())]
    reach = "gradients reach every trainable parameter" + (f" (not: {missing})" if missing else "")
    results = [_check(not missing, reach,
                      "do not detach the trainable path; make every trainable module take part in forward()."),
               _check(grouped == trainable, "the parameter groups hold every trainable parameter, and only those",
                      "make parameter_groups() return head parameters with requires_grad.")]
    with torch.no_grad():
        audio, text = head(synthetic.audio_features, synthetic.text_features)
        rows = torch.arange(len(synthetic.audio_ids))
        generator = torch.Generator().manual_seed(0)
        batch = system.batch_loss(audio, text, synthetic.audio_ids, rows, generator)
        validation = system.validation_loss(audio, text, synthetic.audio_ids, rows, generator)
    results.append(_check(batch.ndim == 0 and bool(torch.isfinite(batch)) and bool(torch.isfinite(validation)),
                          f"batch and validation losses are finite scalars ({float(batch):.4f}, "
                          f"{float(validation):.4f})", "make batch_loss/validation_loss return one finite number."))
    while len(losses) <= _STEPS or (losses[-1] >= losses[0] and len(losses) <= _MAX_STEPS):
        optimizer.step()
        system.after_step(head)
        losses.append(step())
    steps, peak = len(losses) - 1, max(losses)
    spike = f" (peak {peak:.4f})" if peak > losses[0] else ""
    results.append(_check(losses[-1] < losses[0],
                          f"{steps} optimiser steps lower the loss on a fixed batch: {losses[0]:.4f} -> "
                          f"{losses[-1]:.4f}{spike}",
                          "check the loss sign, that it depends on the head's output, and the learning rate."))
    return results
