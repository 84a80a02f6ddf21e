"""One epoch's batches: the order of the training pairs, their split into (per-rank) batches, and
the inputs of each batch, built in data-loader workers (audio read and cropped per step when the
features are clip ids) or taken from cached features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from baselines.audio.clips import ClipStore
from baselines.spec import System
from baselines.task_features import TaskFeatures
from benchmark.errors import LarbError


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


def loader(system: System, features: TaskFeatures, batches: list[tuple[torch.Tensor, torch.Tensor]],
            train: bool, seed: int, workers: int) -> torch.utils.data.DataLoader:
    head = system.head
    samples = getattr(head, "train_samples" if train else "eval_samples", 0)
    source = BatchSource(features.audio, features.text, system.clips, samples)
    seeds = [seed * 1_000_003 + i if train else None for i in range(len(batches))]
    return torch.utils.data.DataLoader(_Batches(source, batches, seeds), batch_size=None, shuffle=False,
                                       num_workers=workers, persistent_workers=False)


def batches(pairs: tuple[torch.Tensor, torch.Tensor], order: torch.Tensor, size: int, drop_last: bool
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


def mean_loss(system: System, head: nn.Module, loader: torch.utils.data.DataLoader, device: torch.device,
              generator: torch.Generator) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            audio, text = head(batch["audio"].to(device), batch["text"].to(device),
                               **({"fractions": batch["fractions"].to(device)} if "fractions" in batch else {}))
            loss = system.validation_loss(audio, text, batch["clips"], batch["queries"], generator)
            total += float(loss) * len(batch["queries"])
            count += len(batch["queries"])
    return total / max(count, 1)
