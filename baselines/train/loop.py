"""The one training loop, for heads on cached encoder outputs and for systems that fine-tune
their encoders on audio read per step, on any device Accelerate offers.

CPU, one GPU (mixed precision) or several GPUs/nodes (`accelerate launch larb baseline train
...`): each process takes its slice of every global batch and DDP averages the gradients.
Everything random is derived from the seed and the epoch number (batch order, impostors, crops),
so a resumed run continues exactly as an uninterrupted one would. The recipe is the system's
configuration (optimizer, schedule, clipping, epoch unit: `train.schedules`, `train.batches`)
and its hooks (`spec.TrainingHooks`: batch and validation losses, parameter groups, a step
hook). After each epoch: validation loss (drives a plateau schedule) and validation mAP@10
(selects `best.pt`), a log line, `log.jsonl` (one JSON record per epoch) and `last.pt`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines import checkpoint
from baselines.inference import retrieval_scores
from baselines.spec import BaselineSpec, System
from baselines.task_features import TaskFeatures
from baselines.train.batches import batches, epoch_order, loader, mean_loss
from baselines.train.global_batch import global_batch
from baselines.train.schedules import make_optimizer, make_scheduler
from baselines.train.state import make_accelerator, restore, resume_state
from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError

# Settings a resumed run must share with the run it continues (epochs may grow: "train 20 more").
TRAINING_KEYS = ("lr", "text_lr", "batch_size", "seed", "optimizer", "weight_decay", "schedule", "lr_factor",
                 "lr_patience", "lr_threshold", "lr_threshold_mode", "lr_step_epochs", "warmup_epochs",
                 "rampdown_start", "rampdown_stop", "min_lr", "grad_clip", "drop_last", "epoch_unit", "margin")
_VALIDATION_SEED_OFFSET = 999_983


@dataclass(frozen=True)
class TrainResult:
    best_checkpoint: Path
    history: list[dict[str, Any]]
    stopped_early: bool = False
    selected: str = "val_mAP@10"  # the log field that selected best.pt

    @property
    def best(self) -> dict[str, Any]:
        return max(self.history, key=lambda record: record[self.selected])


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def train(spec: BaselineSpec, system: System, train_features: TaskFeatures, val_features: TaskFeatures,
        training_data: list[dict[str, str]], output: Path, progress: bool = True,
        patience: int | None = None) -> TrainResult:
    """Train `system.head`; resume from `output/last.pt` when it exists. Returns the best checkpoint.

    Each epoch: shuffled pairs in batches (every rank its slice of each global batch), inputs
    from cached features or audio read by `num_workers` workers with seeded random crops,
    optimiser + schedule + clipping + the system's `after_step`, then validation loss (eval mode)
    and validation mAP@10 (selects best.pt). Torch's RNG is reseeded per epoch, so a resumed run
    repeats the epochs an uninterrupted one would have run. `progress=False` silences the bars
    and the per-epoch lines (`log.jsonl` is always written). With `patience`, training stops once
    that many epochs in a row have not improved validation mAP@10 (also on resume).
    """
    from tqdm.auto import tqdm

    config = system.config
    if not system.needs_training:
        raise LarbError("this configuration has no trainable part.",
                        fix=f"run it directly: larb baseline run {spec.name}")
    accelerator = make_accelerator(config)
    if accelerator.device.type == "cpu" and not system.end_to_end:
        # A head on cached features is hundreds of tiny ops per step: on a busy 2-core machine,
        # two intra-op threads spin-wait on each other (measured: 70 s against 4 s for the demo).
        torch.set_num_threads(1)
    output.mkdir(parents=True, exist_ok=True)
    state = resume_state(output / "last.pt", spec, config, training_data, TRAINING_KEYS)
    system.prepare_training(train_features, val_features, output, progress and accelerator.is_main_process)
    head = system.head
    pairs = train_features.pairs()
    batch_size, world, rank = config["batch_size"], accelerator.num_processes, accelerator.process_index
    if batch_size < world:
        raise LarbError(f"batch_size={batch_size} is the global batch; it cannot be split over {world} processes.",
                        fix=f"use --set batch_size={world} or more (each process takes batch_size / {world}).")
    if progress:
        accelerator.print(f"training on {world} process{'es' if world > 1 else ''} ({accelerator.device.type}), "
                          f"mixed precision {accelerator.mixed_precision}, global batch {batch_size}")
    per_epoch = len(epoch_order(pairs, config["epoch_unit"], torch.Generator().manual_seed(0)))
    steps_per_epoch = len(batches(pairs, torch.arange(per_epoch), batch_size, config["drop_last"]))
    optimizer = make_optimizer(config, system.parameter_groups(head))
    scheduler, cadence = make_scheduler(config, optimizer, max(steps_per_epoch, 1))
    history = restore(state, head, optimizer, scheduler, accelerator, output, progress)
    head, optimizer = accelerator.prepare(head, optimizer)
    device = accelerator.device
    streamed = system.clips is not None and not train_features.audio.dtype.is_floating_point
    workers = config["num_workers"] if streamed else 0
    val_pairs = val_features.pairs()
    val_batches = batches(val_pairs, torch.arange(len(val_pairs[0])), batch_size, False)
    selected = selection_key(config)
    best = max((r[selected] for r in history), default=-1.0)
    for epoch in range(len(history), config["epochs"]):
        if patience is not None and epochs_without_improvement(history, selected) >= patience:
            return TrainResult(output / "best.pt", history, stopped_early=True, selected=selected)
        seed = config["seed"] * 1_000_003 + epoch
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        order = epoch_order(pairs, config["epoch_unit"], generator)
        global_batches = batches(pairs, order, batch_size, config["drop_last"])
        mine = [(q[rank::world], a[rank::world]) for q, a in global_batches]
        head.train()
        losses = []
        for step, batch in enumerate(tqdm(loader(system, train_features, mine, True, seed, workers),
                                          desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                                          disable=None if progress and accelerator.is_main_process else True)):
            extra = {"fractions": batch["fractions"].to(device)} if "fractions" in batch else {}
            with accelerator.autocast():
                audio_emb, text_emb = head(batch["audio"].to(device), batch["text"].to(device), **extra)
            audio_emb, text_emb, clips, queries = audio_emb.float(), text_emb.float(), batch["clips"], batch["queries"]
            if world > 1:  # every process scores the whole global batch (train.global_batch)
                queries, clips = global_batches[step]  # every process holds the global batch's indices
                audio_emb, text_emb = global_batch([audio_emb, text_emb], len(queries), world, rank)
            loss = system.batch_loss(audio_emb, text_emb, clips, queries, generator)
            accelerator.backward(loss * world)
            if config["grad_clip"] > 0:
                accelerator.clip_grad_norm_(head.parameters(), config["grad_clip"])
            optimizer.step()
            optimizer.zero_grad()
            if cadence == "step":
                scheduler.step()
            system.after_step(accelerator.unwrap_model(head))
            losses.append(loss.item())
        plain_head = accelerator.unwrap_model(head)
        plain_head.eval()
        val_loss = mean_loss(system, plain_head, loader(system, val_features, val_batches, False, 0, workers),
                              device, _epoch_generator(config["seed"] + _VALIDATION_SEED_OFFSET, 0))
        val_scores = retrieval_scores(plain_head, val_features, device)
        if cadence == "epoch-loss":
            scheduler.step(val_loss)
        elif cadence == "epoch":
            scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                  "val_loss": val_loss, "val_mAP@10": val_scores["mAP@10"], "lr": optimizer.param_groups[0]["lr"]}
        if selected != "val_mAP@10":
            record |= {f"val_{k}": v for k, v in val_scores.items() if k != "mAP@10"}
            record[selected] = sum(val_scores[k] for k in ("R@1", "R@5", "R@10"))
        history.append(record)
        best = end_epoch(accelerator, spec, config, plain_head, optimizer, scheduler, training_data, history,
                         best, output, progress)
    return TrainResult(output / "best.pt", history, selected=selected)


def selection_key(config: Mapping[str, Any]) -> str:
    """The log field that selects `best.pt`: validation mAP@10, or the sum of validation recalls."""
    return "val_recall_sum" if config.get("selection", "mAP@10") == "recall-sum" else "val_mAP@10"


def epochs_without_improvement(history: list[dict[str, Any]], key: str = "val_mAP@10") -> int:
    """Epochs since the best validation score (the first of equal bests, as `best.pt` keeps it)."""
    if not history:
        return 0
    scores = [r[key] for r in history]
    return len(scores) - 1 - scores.index(max(scores))


def end_epoch(accelerator, spec: BaselineSpec, config: Mapping[str, Any], plain_head: torch.nn.Module,
              optimizer: torch.optim.Optimizer, scheduler: Any, training_data: list[dict[str, str]],
              history: list[dict[str, Any]], best: float, output: Path, progress: bool) -> float:
    """Save `best.pt` when the selection score (`selection_key`) improved, `last.pt` and `log.jsonl`
    always; print the epoch line. Returns the best selection score so far."""
    record = history[-1]
    selected = selection_key(config)
    improved = record[selected] > best
    if accelerator.is_main_process:
        weights = {k: v.detach().cpu() for k, v in plain_head.state_dict().items()}
        if improved:
            checkpoint.save(output / "best.pt", {
                "baseline": spec.name, "config": dict(config), "head": weights, "training_data": training_data,
                "epoch": record["epoch"], "validation": record})
        checkpoint.save(output / "last.pt", {
            "baseline": spec.name, "config": dict(config), "head": weights, "training_data": training_data,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "history": history})
        # Rewritten whole from the history, so it always agrees with last.pt, crash or not.
        atomic_write_text(output / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    if progress:
        accelerator.print(f"epoch {record['epoch']:3d}/{config['epochs']}  train loss {record['train_loss']:.4f}  "
                          f"val loss {record['val_loss']:.4f}  val mAP@10 {record['val_mAP@10']:.4f}"
                          + (f"  val R@1+5+10 {record[selected]:.4f}" if selected != "val_mAP@10" else "")
                          + f"  lr {record['lr']:.2e}" + ("  (best)" if improved else ""))
    accelerator.wait_for_everyone()
    return max(best, record[selected])
