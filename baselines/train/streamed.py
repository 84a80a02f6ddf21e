"""The end-to-end training loop: audio read per step (random crops, SpecAugment), encoders fine-tuned.

The cached-feature loop (`baselines.train.loop`) fits a head on frozen encoder outputs with Adam
and ReduceLROnPlateau. The systems that fine-tune their encoders (`models.end_to_end`) need what
that loop does not have: waveforms loaded per batch (data-loader workers, random crops), per-step
learning-rate schedules (warm-up + cosine, step decay), AdamW, gradient clipping, a hook after
each optimiser step (CLAP's temperature clamp) and losses that see which captions are in the
batch (distillation). `fit` writes the same checkpoints (`best.pt`, `last.pt`, `log.jsonl`),
resumable, on any device Accelerate offers; `runner.train_baseline` chooses it for systems whose
`end_to_end` is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from baselines.audio.clips import ClipStore
from baselines.inference import retrieval_map
from baselines.models.end_to_end import EndToEndSystem
from baselines.spec import BaselineSpec
from baselines.task_features import TaskFeatures
from baselines.train.loop import TrainResult, end_epoch
from baselines.train.schedules import make_optimizer, make_scheduler
from baselines.train.state import make_accelerator, restore, resume_state
from benchmark.errors import LarbError

FIT_KEYS = ("lr", "text_lr", "batch_size", "seed", "optimizer", "weight_decay", "schedule", "lr_factor", "lr_patience",
            "lr_threshold", "lr_step_epochs", "warmup_epochs", "rampdown_start", "rampdown_stop", "min_lr",
            "grad_clip", "drop_last", "epoch_unit", "margin")
_VALIDATION_SEED_OFFSET = 999_983


@dataclass(frozen=True)
class BatchSource:
    """Builds one batch's inputs from row indices; runs in data-loader workers (picklable)."""

    audio: torch.Tensor
    text: torch.Tensor
    clips: ClipStore | None
    samples: int

    def __call__(self, queries: torch.Tensor, rows: torch.Tensor, seed: int | None) -> dict[str, torch.Tensor]:
        audio = self.audio[rows]
        out = {"queries": queries, "clips": rows, "text": self.text[queries]}
        if self.clips is not None and not audio.dtype.is_floating_point:
            rng = np.random.default_rng(seed) if seed is not None else None
            out["audio"], out["fractions"] = self.clips.batch(audio.tolist(), self.samples, rng)
        else:
            out["audio"] = audio
        return out


class _Batches(torch.utils.data.Dataset):
    def __init__(self, source: BatchSource, batches: list[tuple[torch.Tensor, torch.Tensor]],
                 seeds: list[int | None]) -> None:
        self.source, self.batches, self.seeds = source, batches, seeds

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        queries, rows = self.batches[i]
        return self.source(queries, rows, self.seeds[i])


def _loader(system: EndToEndSystem, features: TaskFeatures, batches: list[tuple[torch.Tensor, torch.Tensor]],
            train: bool, seed: int, workers: int) -> torch.utils.data.DataLoader:
    head = system.head
    samples = getattr(head, "train_samples" if train else "eval_samples", 0)
    source = BatchSource(features.audio, features.text, system.clips, samples)
    seeds = [seed * 1_000_003 + i if train else None for i in range(len(batches))]
    return torch.utils.data.DataLoader(_Batches(source, batches, seeds), batch_size=None, shuffle=False,
                                       num_workers=workers, persistent_workers=False)


def _batches(pairs: tuple[torch.Tensor, torch.Tensor], order: torch.Tensor, size: int, drop_last: bool
             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    queries, clips = pairs
    out = []
    for start in range(0, len(order), size):
        chunk = order[start:start + size]
        if drop_last and len(chunk) < size and start > 0:
            break
        out.append((queries[chunk], clips[chunk]))
    return out


def epoch_order(pairs: tuple[torch.Tensor, torch.Tensor], unit: str, generator: torch.Generator) -> torch.Tensor:
    """The pair indices of one epoch, shuffled: every (caption, audio) pair (`pairs`, as salsa and
    Park et al.), or every audio file once with one of its captions drawn at random (`clips`, as
    the CLAP trainers do)."""
    n = len(pairs[0])
    if unit == "pairs":
        return torch.randperm(n, generator=generator)
    if unit != "clips":
        raise LarbError(f"epoch_unit={unit!r} is not pairs or clips.", fix="use --set epoch_unit=pairs.")
    clips = pairs[1]
    keys = torch.rand(n, generator=generator)
    by_clip = sorted(range(n), key=lambda i: (int(clips[i]), float(keys[i])))
    first = [i for j, i in enumerate(by_clip) if j == 0 or int(clips[by_clip[j - 1]]) != int(clips[i])]
    chosen = torch.tensor(first, dtype=torch.long)
    return chosen[torch.randperm(len(chosen), generator=generator)]


def _mean_loss(system: EndToEndSystem, head: nn.Module, loader, device, generator) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            audio, text = head(batch["audio"].to(device), batch["text"].to(device),
                               **({"fractions": batch["fractions"].to(device)} if "fractions" in batch else {}))
            loss = system.validation_loss(audio, text, batch["clips"], batch["queries"], generator)
            total += float(loss) * len(batch["queries"])
            count += len(batch["queries"])
    return total / max(count, 1)


def fit(spec: BaselineSpec, system: EndToEndSystem, train_features: TaskFeatures, val_features: TaskFeatures,
        training_data: list[dict[str, str]], output: Path, progress: bool = True) -> TrainResult:
    """Train `system.head` end to end; resume from `output/last.pt` when it exists.

    Each epoch: shuffled pairs in batches (every rank its slice of each global batch), audio read
    by `num_workers` workers with seeded random crops, optimiser + schedule + clipping, then
    validation loss (eval mode) and validation mAP@10 (selects best.pt). Torch's RNG is reseeded
    per epoch, so a resumed run repeats the epochs an uninterrupted one would have run.
    """
    from tqdm.auto import tqdm

    config = system.config
    if not system.needs_training:
        raise LarbError("this configuration has no trainable part.",
                        fix=f"run it directly: larb baseline run {spec.name}")
    accelerator = make_accelerator(config)
    output.mkdir(parents=True, exist_ok=True)
    state = resume_state(output / "last.pt", spec, config, training_data, FIT_KEYS)
    system.prepare_training(train_features, val_features, output, progress and accelerator.is_main_process)
    head = system.head
    pairs = train_features.pairs()
    batch_size, world, rank = config["batch_size"], accelerator.num_processes, accelerator.process_index
    per_epoch = len(epoch_order(pairs, config["epoch_unit"], torch.Generator().manual_seed(0)))
    steps_per_epoch = len(_batches(pairs, torch.arange(per_epoch), batch_size, config["drop_last"]))
    optimizer = make_optimizer(config, system.parameter_groups(head))
    scheduler, cadence = make_scheduler(config, optimizer, max(steps_per_epoch, 1))
    history = restore(state, head, optimizer, scheduler, accelerator, output, progress)
    head, optimizer = accelerator.prepare(head, optimizer)
    device = accelerator.device
    streamed = system.clips is not None and not train_features.audio.dtype.is_floating_point
    workers = config["num_workers"] if streamed else 0
    val_pairs = val_features.pairs()
    val_batches = _batches(val_pairs, torch.arange(len(val_pairs[0])), batch_size, False)
    best = max((r["val_mAP@10"] for r in history), default=-1.0)
    for epoch in range(len(history), config["epochs"]):
        seed = config["seed"] * 1_000_003 + epoch
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        order = epoch_order(pairs, config["epoch_unit"], generator)
        batches = [(q[rank::world], a[rank::world]) for q, a in _batches(pairs, order, batch_size, config["drop_last"])]
        head.train()
        losses = []
        loader = _loader(system, train_features, batches, True, seed, workers)
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}", leave=False,
                          disable=not progress or not accelerator.is_main_process):
            extra = {"fractions": batch["fractions"].to(device)} if "fractions" in batch else {}
            with accelerator.autocast():
                audio_emb, text_emb = head(batch["audio"].to(device), batch["text"].to(device), **extra)
                loss = system.batch_loss(audio_emb.float(), text_emb.float(), batch["clips"], batch["queries"],
                                         generator)
            accelerator.backward(loss)
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
        val_loss = _mean_loss(system, plain_head, _loader(system, val_features, val_batches, False, 0, workers),
                              device, torch.Generator().manual_seed(config["seed"] + _VALIDATION_SEED_OFFSET))
        val_map = retrieval_map(plain_head, val_features, device)
        if cadence == "epoch-loss":
            scheduler.step(val_loss)
        elif cadence == "epoch":
            scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                  "val_loss": val_loss, "val_mAP@10": val_map, "lr": optimizer.param_groups[0]["lr"]}
        history.append(record)
        best = end_epoch(accelerator, spec, config, plain_head, optimizer, scheduler, training_data, history,
                         best, output, progress)
    return TrainResult(output / "best.pt", history)
