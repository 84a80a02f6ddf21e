"""Training a baseline's head on cached encoder outputs, on any device Accelerate offers.

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
from baselines.config import resolve_device
from baselines.retrieval import top_k
from baselines.spec import BaselineSpec, System
from baselines.task_features import TaskFeatures
from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError
from benchmark.metrics import K, per_query_scores
from benchmark.scoring import judgements_for

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


@torch.no_grad()
def embed(head: nn.Module, features: TaskFeatures, device: torch.device | str = "cpu",
          batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(query embeddings, corpus embeddings) as float32 arrays, computed in batches."""
    head.to(device).eval()
    queries = [head.embed_text(features.text[i:i + batch].to(device)).float().cpu()
               for i in range(0, len(features.text), batch)]
    corpus = [head.embed_audio(features.audio[i:i + batch].to(device)).float().cpu()
              for i in range(0, len(features.audio), batch)]
    return torch.cat(queries).numpy(), torch.cat(corpus).numpy()


def retrieval_map(head: nn.Module, features: TaskFeatures, device: torch.device | str = "cpu") -> float:
    """mAP@10 of the head's top-10 ranking on `features`, by the harness's metric definitions."""
    queries, corpus = embed(head, features, device)
    _, ranking = top_k(queries, corpus, K)
    return float(per_query_scores(ranking, judgements_for(features.ground_truth))["mAP@10"].mean())


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


def make_accelerator(config: dict[str, Any]):
    """Accelerate on the configured device; fp16 autocast on a GPU unless `mixed_precision` says otherwise."""
    from accelerate import Accelerator

    device = resolve_device(config)
    if device == "cuda" and not torch.cuda.is_available():
        raise LarbError("device=cuda but no CUDA device is visible.", fix="use --set device=cpu (or auto).")
    precision = config["mixed_precision"]
    if precision == "auto":
        precision = "fp16" if device == "cuda" else "no"
    if precision not in ("no", "fp16", "bf16"):
        raise LarbError(f"mixed_precision={precision!r} is not one of auto, no, fp16, bf16.",
                        fix="use --set mixed_precision=auto.")
    return Accelerator(cpu=device == "cpu", mixed_precision=precision)


def resume_state(path: Path, spec: BaselineSpec, config: dict[str, Any], training_data: list[dict[str, str]],
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
