"""End-to-end baselines: a head that contains its encoders and reads audio by clip id, and the
system around it (features, losses, parameter groups) that the training loop drives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.audio.clips import ClipStore
from baselines.config import (
    Device,
    EpochUnit,
    MixedPrecision,
    Optimizer,
    Retrieval,
    Schedule,
    Settings,
    ThresholdMode,
)
from baselines.spec import TrainingHooks
from baselines.task_features import TaskFeatures, require_text_to_audio
from benchmark.tasks import Task


@dataclass(frozen=True)
class EndToEndSettings(Settings):
    """Settings shared by the end-to-end baselines: the recipe keys the training loop reads."""

    seed: int = 0
    device: Device = "auto"
    mixed_precision: MixedPrecision = "auto"
    retrieval: Retrieval = "chunked"
    val_fraction: float = 0.1
    margin: float = 0.2
    lr: float = 1e-4
    text_lr: float = 0.0
    batch_size: int = 32
    epochs: int = 10
    lr_factor: float = 0.5
    lr_patience: int = 5
    lr_threshold: float = 0.0
    lr_threshold_mode: ThresholdMode = "abs"
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
    schedule: Schedule = "plateau"
    lr_step_epochs: int = 20
    warmup_epochs: float = 0.0
    rampdown_start: float = 0.0
    rampdown_stop: float = 0.0
    min_lr: float = 0.0
    grad_clip: float = 0.0
    drop_last: bool = False
    epoch_unit: EpochUnit = "pairs"
    num_workers: int = 4
    eval_batch_size: int = 32


def fixed_randomness(module: nn.Module, seed: int) -> nn.Module:
    """Make every forward pass of `module` draw the same random numbers (dropout, SpecAugment, crops):
    for the contract check, whose "fixed batch" should then also have fixed augmentations. Torch's
    global RNG state is restored after each pass."""
    saved: list[torch.Tensor] = []

    def before(_module, _inputs):
        saved.append(torch.random.get_rng_state())
        torch.manual_seed(seed)

    def after(_module, _inputs, _outputs):
        torch.random.set_rng_state(saved.pop())

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)
    return module


class EndToEndHead(nn.Module):
    """Encoders + projections. Audio: clip ids (int64, read through `clips`) or waveforms (float,
    with optional real-audio `fractions`). Text: whatever `encode_text` takes (token ids, vectors).

    Subclasses implement `encode_audio(waves, fractions)` and `encode_text(text)`, both returning
    (batch, D) embeddings; l2 normalisation and chunking happen here.
    """

    def __init__(self, clips: ClipStore | None, train_samples: int, eval_samples: int,
                 eval_batch_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.clips = clips
        self.train_samples = train_samples
        self.eval_samples = eval_samples
        self.eval_batch_size = eval_batch_size
        self._rng = np.random.default_rng(seed)

    @property
    def needs_training(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def encode_audio(self, waves: torch.Tensor, fractions: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def load_clips(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.clips is None:
            raise RuntimeError("this head has no ClipStore: pass waveforms, not clip ids")
        samples = self.train_samples if self.training else self.eval_samples
        waves, fractions = self.clips.batch(ids.cpu().tolist(), samples, self._rng if self.training else None)
        device = self._device()
        return waves.to(device), fractions.to(device)

    def _audio(self, audio: torch.Tensor, fractions: torch.Tensor | None) -> torch.Tensor:
        if not audio.dtype.is_floating_point:
            audio, fractions = self.load_clips(audio)
        return F.normalize(self.encode_audio(audio, fractions).float(), dim=-1)

    def embed_audio(self, audio: torch.Tensor, fractions: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            return self._audio(audio, fractions)
        step = self.eval_batch_size
        parts = [self._audio(audio[i:i + step], None if fractions is None else fractions[i:i + step])
                 for i in range(0, len(audio), step)]
        return torch.cat(parts) if parts else torch.empty(0, self.dim, device=self._device())

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        if self.training:
            return F.normalize(self.encode_text(text).float(), dim=-1)
        step = self.eval_batch_size
        parts = [F.normalize(self.encode_text(text[i:i + step]).float(), dim=-1) for i in range(0, len(text), step)]
        return torch.cat(parts) if parts else torch.empty(0, self.dim, device=self._device())

    def forward(self, audio: torch.Tensor, text: torch.Tensor, fractions: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_audio(audio, fractions), self.embed_text(text)


def trainable_parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class EndToEndSystem(TrainingHooks):
    """A `System` whose head holds its encoders and reads audio by clip id. Subclasses set
    `config`, `head` and `clips`, and implement `features(ground_truth, paths)` and `loss`."""

    config: Settings
    head: nn.Module
    clips: ClipStore | None = None
    end_to_end = True  # the training loop runs the encoders inside the head (fine-tuning them unless frozen)

    @property
    def needs_training(self) -> bool:
        return any(p.requires_grad for p in self.head.parameters())

    @property
    def sample_rate(self) -> int:
        """The rate the clip store reads audio at (the encoders' own)."""
        if self.clips is None:
            raise RuntimeError("this system was built without a clip store (synthetic check only)")
        return self.clips.sample_rate

    def task_features(self, task: Task) -> TaskFeatures:
        require_text_to_audio(task)
        gt = task.ground_truth
        self.last_task = task
        return self.features(gt, [task.audio_path(name) for name in gt.corpus])

    def features(self, ground_truth, paths: Sequence[Path]) -> TaskFeatures:
        raise NotImplementedError

    def prepare_training(self, train: TaskFeatures, val: TaskFeatures, output: Path, progress: bool) -> None:
        """Before the optimiser is built: decode the audio once (and, in subclasses, load teachers)."""
        if self.clips is not None:
            for features in (train, val):
                if not features.audio.dtype.is_floating_point:
                    self.clips.prepare(features.audio.tolist(), progress)

    def parameter_groups(self, head: nn.Module) -> list[dict[str, Any]]:
        """One group at `lr`; the text encoder (parameters under `text.`) at `text_lr` when that is set."""
        text_lr = self.config.get("text_lr", 0.0)
        named = [(n, p) for n, p in head.named_parameters() if p.requires_grad]
        if not text_lr:
            return [{"params": [p for _, p in named], "lr": self.config["lr"]}]
        text = [p for n, p in named if n.startswith("text.")]
        rest = [p for n, p in named if not n.startswith("text.")]
        return [g for g in ({"params": rest, "lr": self.config["lr"]}, {"params": text, "lr": text_lr}) if g["params"]]


