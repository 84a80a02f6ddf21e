"""`larb baseline check NAME`: the contract every baseline head must meet, on synthetic input.

Random frozen inputs stand in for the encoders (no asset needed), so the check runs anywhere in
a second: output shapes and dtype, unit-norm embeddings, the declared trainable parameter
count, gradients reaching every trainable parameter, and a few optimiser steps lowering the
loss. Each failure says what to fix. Asset availability is reported, not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from baselines.assets import available_offline
from baselines.spec import BaselineSpec

Status = Literal["ok", "FAIL", "info"]
_STEPS = 10


@dataclass(frozen=True)
class CheckResult:
    status: Status
    what: str
    fix: str = ""

    def line(self) -> str:
        return f"  {self.status:<5} {self.what}" + (f"  Fix: {self.fix}" if self.fix else "")


def _check(ok: bool, what: str, fix: str) -> CheckResult:
    return CheckResult("ok", what) if ok else CheckResult("FAIL", what, fix)


def contract_check(spec: BaselineSpec, config: dict[str, Any]) -> list[CheckResult]:
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


def _training_checks(system, synthetic, config: dict[str, Any]) -> list[CheckResult]:
    head = system.head
    optimizer = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=config["lr"])

    def batch_loss() -> torch.Tensor:
        audio, text = head(synthetic.audio_features, synthetic.text_features)
        return system.loss(audio, text, synthetic.audio_ids, torch.Generator().manual_seed(0))

    loss = batch_loss()
    loss.backward()
    before = loss.item()
    missing = [name for name, p in head.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.any())]
    results = [_check(not missing, "gradients reach every trainable parameter" + (f" (not: {missing})" if missing else ""),
                      "do not detach the trainable path; make every trainable module take part in forward().")]
    optimizer.step()
    for _ in range(_STEPS - 1):
        optimizer.zero_grad()
        batch_loss().backward()
        optimizer.step()
    with torch.no_grad():
        after = batch_loss().item()
    results.append(_check(after < before,
                          f"{_STEPS} optimiser steps lower the loss on a fixed batch: {before:.4f} -> {after:.4f}",
                          "check the loss sign and that it depends on the head's output."))
    return results
