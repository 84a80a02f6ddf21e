"""Optimisers and learning-rate schedules of the papers' recipes (Adam/AdamW; plateau, step,
salsa's warm-up + cosine)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from benchmark.errors import LarbError


def make_optimizer(config: Mapping[str, Any], groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if config["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=config["lr"], weight_decay=config["weight_decay"])
    if config["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=config["lr"], betas=(0.9, 0.999), eps=1e-8,
                                 weight_decay=config["weight_decay"])
    raise LarbError(f"optimizer={config['optimizer']!r} is not adam or adamw.", fix="use --set optimizer=adam.")


def warmup_cosine_factor(epoch: float, base: float, config: Mapping[str, Any]) -> float:
    """salsa's `update_lr` (ex_dcase24.py): linear warm-up to `base` over `warmup_epochs`, constant
    until `rampdown_start`, half-cosine down to `min_lr` at `rampdown_stop` (0 = last epoch), then
    `min_lr`; returned as a factor of `base`. `epoch` is fractional (the schedule moves every step)."""
    warmup, start, min_lr = config["warmup_epochs"], config["rampdown_start"], config["min_lr"]
    stop = config["rampdown_stop"] if config["rampdown_stop"] > 0 else config["epochs"]
    if epoch < warmup:
        lr = base * epoch / warmup
    elif epoch < start:
        lr = base
    elif epoch < stop:
        lr = min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - start) / (stop - start)))
    else:
        lr = min_lr
    return lr / base if base else 0.0


def make_scheduler(config: Mapping[str, Any], optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """(scheduler, when it steps: "epoch-loss" | "epoch" | "step")."""
    schedule = config["schedule"]
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config["lr_factor"], patience=config["lr_patience"],
            threshold=config["lr_threshold"], threshold_mode=config["lr_threshold_mode"],
            min_lr=config["min_lr"]), "epoch-loss"
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config["lr_step_epochs"],
                                               gamma=config["lr_factor"]), "epoch"
    if schedule == "warmup-cosine":
        bases = [group["lr"] for group in optimizer.param_groups]
        lambdas = [lambda step, base=base: warmup_cosine_factor(step / steps_per_epoch, base, config)
                   for base in bases]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas), "step"
    if schedule == "constant":  # no scheduler (Pellegrini's AudioCaps pre-training)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0), "epoch"
    raise LarbError(f"schedule={schedule!r} is not plateau, step, warmup-cosine or constant.",
                    fix="use --set schedule=plateau.")
