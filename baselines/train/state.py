"""What both training loops share around the loop: the Accelerate set-up, and resuming a run
from its `last.pt` (refused when the settings or the training data changed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from baselines import checkpoint
from baselines.config import resolve_device
from baselines.spec import BaselineSpec
from benchmark.errors import LarbError


def make_accelerator(config: Mapping[str, Any]):
    """Accelerate on the configured device. `mixed_precision=auto` takes the launcher's setting
    (`accelerate launch --mixed_precision bf16`) and otherwise fp16 autocast on a GPU, none on a CPU."""
    from accelerate import Accelerator

    device = resolve_device(config)
    if device == "cuda" and not torch.cuda.is_available():
        raise LarbError("device=cuda but no CUDA device is visible.", fix="use --set device=cpu (or auto).")
    precision = config["mixed_precision"]
    if precision == "auto":  # the launcher's --mixed_precision when there is one, else fp16 on a GPU
        precision = os.environ.get("ACCELERATE_MIXED_PRECISION") or ("fp16" if device == "cuda" else "no")
    if precision not in ("no", "fp16", "bf16"):
        raise LarbError(f"mixed_precision={precision!r} is not one of auto, no, fp16, bf16.",
                        fix="use --set mixed_precision=auto.")
    return Accelerator(cpu=device == "cpu", mixed_precision=precision)


def resume_state(path: Path, spec: BaselineSpec, config: Mapping[str, Any], training_data: list[dict[str, str]],
                 keys: tuple[str, ...]) -> dict[str, Any] | None:
    """`last.pt` of the run in this folder, or None; refused when the model keys, the training
    `keys` or the training data differ from this run's."""
    if not path.exists():
        return None
    state = checkpoint.load(path, spec.name)
    keys = tuple(dict.fromkeys(spec.model_keys + keys))
    changed = {k: (state["config"].get(k), config.get(k)) for k in keys if state["config"].get(k) != config.get(k)}
    if state["training_data"] != training_data:
        changed["training data"] = (state["training_data"], training_data)
    if changed:
        detail = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise LarbError(f"this folder holds a run with other settings ({detail}).", path=path.parent,
                        fix="pass a new --output folder, or the same --set values to resume.")
    return state


def restore(state: dict[str, Any] | None, head: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            accelerator, output: Path, progress: bool) -> list[dict[str, Any]]:
    """Load a resumed run's weights, optimiser and scheduler; return its history ([] for a new run)."""
    if state is None:
        return []
    head.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if progress:
        accelerator.print(f"resuming {output} after epoch {len(state['history'])}")
    return state["history"]
