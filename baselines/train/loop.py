"""The cached-feature training loop: a baseline's head on cached encoder outputs, on any device Accelerate offers.

CPU, one GPU (mixed precision) or several GPUs/nodes (`accelerate launch larb baseline train
...`): each process takes its slice of every global batch and DDP averages the gradients.
Everything random is derived from the seed and the epoch number (batch order, impostors,
initialisation), so a resumed run continues exactly as an uninterrupted one would. After each
epoch: validation loss (drives ReduceLROnPlateau) and validation mAP@10 (selects `best.pt`),
a log line, `log.jsonl` (one JSON record per epoch) and `last.pt` for resuming.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines import checkpoint
from baselines.inference import retrieval_map
from baselines.spec import BaselineSpec, System
from baselines.task_features import TaskFeatures
from baselines.train.state import make_accelerator, restore, resume_state
from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError

# Settings a resumed run must share with the run it continues (epochs may grow: "train 20 more").
TRAINING_KEYS = ("margin", "lr", "batch_size", "lr_factor", "lr_patience", "seed")
_VALIDATION_SEED_OFFSET = 999_983


@dataclass(frozen=True)
class TrainResult:
    best_checkpoint: Path
    history: list[dict[str, Any]]

    @property
    def best(self) -> dict[str, Any]:
        return max(self.history, key=lambda record: record["val_mAP@10"])


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _mean_loss(system: System, head: nn.Module, audio: torch.Tensor, text: torch.Tensor,
               pairs: tuple[torch.Tensor, torch.Tensor], batch_size: int, generator: torch.Generator) -> float:
    queries, clips = pairs
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(queries), batch_size):
            q, a = queries[start:start + batch_size], clips[start:start + batch_size]
            audio_emb, text_emb = head(audio[a], text[q])
            total += float(system.loss(audio_emb, text_emb, a, generator)) * len(q)
            count += len(q)
    return total / max(count, 1)


def train(spec: BaselineSpec, system: System, train_features: TaskFeatures, val_features: TaskFeatures,
          training_data: list[dict[str, str]], output: Path, progress: bool = True) -> TrainResult:
    """Train `system.head`; resume from `output/last.pt` when it exists. Returns the best checkpoint.

    `progress=False` silences the bars and the per-epoch lines (`log.jsonl` is always written).
    """
    from tqdm.auto import tqdm

    config = system.config
    if not system.needs_training:
        raise LarbError("this configuration has no trainable part (lambda=0 is the zero-shot system).",
                        fix=f"run it directly: larb baseline run {spec.name} --task TASK --set lambda=0 ...")
    accelerator = make_accelerator(config)
    if accelerator.device.type == "cpu":
        # A head on cached features is hundreds of tiny ops per step: on a busy 2-core machine,
        # two intra-op threads spin-wait on each other (measured: 70 s against 4 s for the demo).
        torch.set_num_threads(1)
    output.mkdir(parents=True, exist_ok=True)
    head = system.head
    optimizer = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config["lr_factor"],
                                                           patience=config["lr_patience"])
    state = resume_state(output / "last.pt", spec, config, training_data, TRAINING_KEYS)
    history = restore(state, head, optimizer, scheduler, accelerator, output, progress)
    head, optimizer = accelerator.prepare(head, optimizer)
    device = accelerator.device
    audio, text = train_features.audio.to(device), train_features.text.to(device)
    val_audio, val_text = val_features.audio.to(device), val_features.text.to(device)
    queries, clips = train_features.pairs()
    val_pairs = val_features.pairs()
    batch_size, world, rank = config["batch_size"], accelerator.num_processes, accelerator.process_index
    best = max((r["val_mAP@10"] for r in history), default=-1.0)
    for epoch in range(len(history), config["epochs"]):
        head.train()
        generator = _epoch_generator(config["seed"], epoch)
        order = torch.randperm(len(queries), generator=generator)
        losses = []
        steps = range(0, len(order), batch_size)
        for start in tqdm(steps, desc=f"epoch {epoch + 1}", leave=False,
                          disable=not progress or not accelerator.is_main_process):
            batch = order[start:start + batch_size][rank::world]
            q, a = queries[batch], clips[batch]
            with accelerator.autocast():
                audio_emb, text_emb = head(audio[a], text[q])
                loss = system.loss(audio_emb, text_emb, a, generator)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        plain_head = accelerator.unwrap_model(head)
        val_loss = _mean_loss(system, plain_head, val_audio, val_text, val_pairs, batch_size,
                              _epoch_generator(config["seed"] + _VALIDATION_SEED_OFFSET, 0))
        val_map = retrieval_map(plain_head, val_features, device)
        scheduler.step(val_loss)
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                  "val_mAP@10": val_map, "lr": optimizer.param_groups[0]["lr"]}
        history.append(record)
        best = end_epoch(accelerator, spec, config, plain_head, optimizer, scheduler, training_data, history,
                         best, output, progress)
    return TrainResult(output / "best.pt", history)


def end_epoch(accelerator, spec: BaselineSpec, config: dict[str, Any], plain_head: torch.nn.Module,
              optimizer: torch.optim.Optimizer, scheduler: Any, training_data: list[dict[str, str]],
              history: list[dict[str, Any]], best: float, output: Path, progress: bool) -> float:
    """Save `best.pt` when validation mAP@10 improved, `last.pt` and `log.jsonl` always; print the
    epoch line. Shared by the cached-feature loop here and the end-to-end loop in `finetune`.
    Returns the best validation mAP@10 so far."""
    record = history[-1]
    improved = record["val_mAP@10"] > best
    if accelerator.is_main_process:
        weights = {k: v.detach().cpu() for k, v in plain_head.state_dict().items()}
        if improved:
            checkpoint.save(output / "best.pt", {
                "baseline": spec.name, "config": config, "head": weights, "training_data": training_data,
                "epoch": record["epoch"], "validation": record})
        checkpoint.save(output / "last.pt", {
            "baseline": spec.name, "config": config, "head": weights, "training_data": training_data,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "history": history})
        # Rewritten whole from the history, so it always agrees with last.pt, crash or not.
        atomic_write_text(output / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    if progress:
        accelerator.print(f"epoch {record['epoch']:3d}/{config['epochs']}  train loss {record['train_loss']:.4f}  "
                          f"val loss {record['val_loss']:.4f}  val mAP@10 {record['val_mAP@10']:.4f}  "
                          f"lr {record['lr']:.2e}" + ("  (best)" if improved else ""))
    accelerator.wait_for_everyone()
    return max(best, record["val_mAP@10"])
