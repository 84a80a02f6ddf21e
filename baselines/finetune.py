"""End-to-end baselines: audio read per step (random crops, SpecAugment) and encoders fine-tuned.

The framework's `training.train` fits a head on cached encoder outputs with Adam and
ReduceLROnPlateau. The baselines of issue 5 fine-tune their encoders, and need what that loop
does not have: waveforms loaded per batch (data-loader workers, random crops), per-step
learning-rate schedules (warm-up + cosine, step decay), AdamW, gradient clipping, a hook after
each optimiser step (CLAP's temperature clamp) and losses that see which captions are in the
batch (distillation). This module adds them without changing the framework:

- `ClipStore`: audio files by id; their samples at the model's rate, decoded and resampled once
  into the asset cache (`waveforms/<rate>/<sha256>.npy`, int16), then memory-mapped.
- `EndToEndHead`: an `nn.Module` that contains the encoders. Its audio input is either clip ids
  (int64; it loads them through its `ClipStore`, in chunks) or waveforms (float). So a system's
  `task_features` returns clip ids and token ids, and everything written against the framework's
  `System` protocol works unchanged: `training.embed`/`retrieval_map`, `runner.run_baseline`,
  the contract check, and even `training.train` (plain Adam + plateau, main-process loading).
- `fit`: the training loop the papers use (`EndToEndSystem.fit`), writing the same checkpoints
  (`best.pt`, `last.pt`, `log.jsonl`) as `training.train`, resumable, on any device Accelerate offers.
- `train_model`: `runner.train_baseline`, which calls `system.fit` when the system has one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.audio_io import load_mono
from baselines.embedding_cache import file_sha256
from baselines.spec import BaselineSpec
from baselines.task_features import TaskFeatures, require_text_to_audio
from baselines.training import TrainResult, end_epoch, make_accelerator, restore, resume_state, retrieval_map
from benchmark.assets import cache_dir
from benchmark.atomic import atomic_write_bytes
from benchmark.errors import LarbError
from benchmark.tasks import Task

_INT16 = 32767.0

# Settings shared by the end-to-end baselines (the framework's TRAINING_KEYS among them, so that
# `training.train` can also resume their runs).
E2E_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "device": "auto",
    "mixed_precision": "auto",
    "retrieval": "chunked",
    "val_fraction": 0.1,
    "margin": 0.2,
    "lr": 1e-4,
    "text_lr": 0.0,
    "batch_size": 32,
    "epochs": 10,
    "lr_factor": 0.5,
    "lr_patience": 5,
    "lr_threshold": 0.0,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "schedule": "plateau",
    "lr_step_epochs": 20,
    "warmup_epochs": 0.0,
    "rampdown_start": 0.0,
    "rampdown_stop": 0.0,
    "min_lr": 0.0,
    "grad_clip": 0.0,
    "drop_last": False,
    "epoch_unit": "pairs",
    "num_workers": 4,
    "eval_batch_size": 32,
}
FIT_KEYS = ("lr", "text_lr", "batch_size", "seed", "optimizer", "weight_decay", "schedule", "lr_factor", "lr_patience",
            "lr_threshold", "lr_step_epochs", "warmup_epochs", "rampdown_start", "rampdown_stop", "min_lr",
            "grad_clip", "drop_last", "epoch_unit", "margin")
_VALIDATION_SEED_OFFSET = 999_983


# -- audio ------------------------------------------------------------------------------------

class ClipStore:
    """Audio files by integer id, read as mono float32 at `sample_rate` (decoded once, then cached).

    Picklable (paths and hashes only), so data-loader workers can read from it.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.paths: list[Path] = []
        self.keys: list[str] = []
        self._ids: dict[str, int] = {}
        self._folder: Path | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = cache_dir() / "waveforms" / str(self.sample_rate)
        return self._folder

    def register(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Ids of `paths` (int64), adding the new ones; a file's cache key is its content hash."""
        ids = []
        for path in paths:
            where = str(Path(path).resolve())
            if where not in self._ids:
                self._ids[where] = len(self.paths)
                self.paths.append(Path(path))
                self.keys.append(file_sha256(Path(path)))
            ids.append(self._ids[where])
        _ = self.folder  # fixed when the first files are registered
        return torch.tensor(ids, dtype=torch.long)

    def _cached(self, clip: int) -> Path:
        return self.folder / f"{self.keys[clip]}.npy"

    def waveform(self, clip: int) -> np.ndarray:
        """The clip's samples (int16 scale, memory-mapped when cached)."""
        cached = self._cached(clip)
        if cached.exists():
            return np.load(cached, mmap_mode="r")
        samples = load_mono(self.paths[clip], self.sample_rate)
        pcm = np.round(np.clip(samples, -1.0, 1.0) * _INT16).astype(np.int16)
        import io

        buffer = io.BytesIO()
        np.save(buffer, pcm)
        atomic_write_bytes(cached, buffer.getvalue())
        return pcm

    def prepare(self, ids: Sequence[int], progress: bool = True) -> None:
        """Decode and cache every clip of `ids` now (before data-loader workers start)."""
        from tqdm.auto import tqdm

        todo = sorted({int(i) for i in ids if not self._cached(int(i)).exists()})
        for clip in tqdm(todo, desc=f"audio at {self.sample_rate} Hz", unit="file", disable=not progress or not todo,
                         leave=False):
            self.waveform(clip)

    def fixed(self, clip: int, samples: int, rng: np.random.Generator | None) -> tuple[np.ndarray, float]:
        """`samples` samples of the clip: a random crop (with `rng`) or its start; zero-padded when
        shorter. Returns (float32 samples, share of them that is real audio)."""
        wave = self.waveform(clip)
        if len(wave) > samples:
            start = int(rng.integers(0, len(wave) - samples + 1)) if rng is not None else 0
            return np.asarray(wave[start:start + samples], dtype=np.float32) / _INT16, 1.0
        out = np.zeros(samples, dtype=np.float32)
        out[:len(wave)] = np.asarray(wave, dtype=np.float32) / _INT16
        return out, len(wave) / samples

    def batch(self, ids: Sequence[int], samples: int, rng: np.random.Generator | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(waveforms (batch, samples), real-audio fractions (batch,))."""
        pairs = [self.fixed(int(i), samples, rng) for i in ids]
        waves = torch.from_numpy(np.stack([w for w, _ in pairs])) if pairs else torch.empty(0, samples)
        return waves, torch.tensor([f for _, f in pairs], dtype=torch.float32)


class SpecAugment(nn.Module):
    """torchlibrosa's `SpecAugmentation` as PANNs and HTSAT use it: per example, `stripes` random
    stripes of up to `time_width` frames and of up to `freq_width` bands set to zero. Training only."""

    def __init__(self, time_width: int = 64, time_stripes: int = 2, freq_width: int = 8, freq_stripes: int = 2
                 ) -> None:
        super().__init__()
        self.time = (time_width, time_stripes)
        self.freq = (freq_width, freq_stripes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, channels, frames, bands)."""
        if not self.training:
            return x
        keep = torch.ones_like(x[:, :1])
        for dim, (width, stripes) in ((2, self.time), (3, self.freq)):
            total = x.shape[dim]
            positions = torch.arange(total, device=x.device)
            for _ in range(stripes):
                length = torch.randint(0, width + 1, (x.shape[0],), device=x.device).clamp(max=total)
                start = (torch.rand(x.shape[0], device=x.device) * (total - length + 1)).floor().long()
                stripe = (positions >= start[:, None]) & (positions < (start + length)[:, None])  # (batch, total)
                shape = (x.shape[0], 1, total, 1) if dim == 2 else (x.shape[0], 1, 1, total)
                keep = keep * (~stripe).reshape(shape).to(x.dtype)
        return x * keep


def tile_mean(encode: Callable[[torch.Tensor], torch.Tensor], waves: torch.Tensor, tile: int,
              fractions: torch.Tensor | None) -> torch.Tensor:
    """salsa's `WindowedPrediction`: non-overlapping tiles of `tile` samples, encoded as one batch,
    averaged over the tiles that hold real audio (the first ceil(fraction x tiles), at least one)."""
    batch, samples = waves.shape
    if samples <= tile:
        return encode(waves)
    count = samples // tile
    tiles = waves[:, : count * tile].reshape(batch * count, tile)
    out = encode(tiles).reshape(batch, count, -1)
    if fractions is None:
        return out.mean(dim=1)
    used = torch.ceil(fractions.to(out.device).float() * count).clamp(1, count)
    mask = (torch.arange(count, device=out.device)[None, :] < used[:, None]).to(out.dtype)
    return (out * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)


def synthetic_tones(audio_ids: torch.Tensor, samples: int, sample_rate: int, generator: torch.Generator
                    ) -> torch.Tensor:
    """Contract-check input: one clip per audio id, a tone (log-spaced 200 Hz - 4 kHz) with a little
    noise, so that clips differ in a way SpecAugment and dropout cannot erase."""
    n = int(audio_ids.max()) + 1
    frequencies = torch.logspace(math.log10(200.0), math.log10(4000.0), max(n, 2))[:n]
    t = torch.arange(samples) / sample_rate
    clips = 0.3 * torch.sin(2 * math.pi * frequencies[:, None] * t[None, :])
    clips = clips + 0.01 * torch.randn(clips.shape, generator=generator)
    return clips[audio_ids]


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


# -- heads ------------------------------------------------------------------------------------

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


# -- systems ----------------------------------------------------------------------------------

class EndToEndSystem:
    """The `System` protocol plus what `fit` uses. Subclasses set `config`, `head` and `clips`, and
    implement `features(ground_truth, paths)` and `loss`."""

    config: dict[str, Any]
    head: nn.Module
    clips: ClipStore | None = None

    @property
    def needs_training(self) -> bool:
        return any(p.requires_grad for p in self.head.parameters())

    def task_features(self, task: Task) -> TaskFeatures:
        require_text_to_audio(task)
        gt = task.ground_truth
        self.last_task = task
        return self.features(gt, [task.audio_path(name) for name in gt.corpus])

    def features(self, ground_truth, paths: Sequence[Path]) -> TaskFeatures:
        raise NotImplementedError

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    # hooks of `fit`
    def batch_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        """The training loss of a batch; `clips`/`queries` index the training features' rows."""
        return self.loss(audio, text, clips, generator)

    def validation_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor:
        """The loss reported on validation batches (and driving a plateau schedule)."""
        return self.batch_loss(audio, text, clips, queries, generator)

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

    def after_step(self, head: nn.Module) -> None:
        """Called after every optimiser step (e.g. to clamp a learned temperature)."""

    def fit(self, spec: BaselineSpec, train_features: TaskFeatures, val_features: TaskFeatures,
            training_data: list[dict[str, str]], output: Path, progress: bool = True) -> TrainResult:
        return fit(spec, self, train_features, val_features, training_data, output, progress)


# -- the training loop ------------------------------------------------------------------------

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


def make_optimizer(config: dict[str, Any], groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if config["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=config["lr"], weight_decay=config["weight_decay"])
    if config["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=config["lr"], betas=(0.9, 0.999), eps=1e-8,
                                 weight_decay=config["weight_decay"])
    raise LarbError(f"optimizer={config['optimizer']!r} is not adam or adamw.", fix="use --set optimizer=adam.")


def warmup_cosine_factor(epoch: float, base: float, config: dict[str, Any]) -> float:
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


def make_scheduler(config: dict[str, Any], optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """(scheduler, when it steps: "epoch-loss" | "epoch" | "step")."""
    schedule = config["schedule"]
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config["lr_factor"], patience=config["lr_patience"],
            threshold=config["lr_threshold"], threshold_mode="abs", min_lr=config["min_lr"]), "epoch-loss"
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config["lr_step_epochs"],
                                               gamma=config["lr_factor"]), "epoch"
    if schedule == "warmup-cosine":
        bases = [group["lr"] for group in optimizer.param_groups]
        lambdas = [lambda step, base=base: warmup_cosine_factor(step / steps_per_epoch, base, config)
                   for base in bases]
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas), "step"
    raise LarbError(f"schedule={schedule!r} is not plateau, step or warmup-cosine.",
                    fix="use --set schedule=plateau.")


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
        raise LarbError("this configuration has no trainable part.", fix=f"run it directly: larb baseline run {spec.name}")
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


# -- entry point ------------------------------------------------------------------------------

def train_model(spec: BaselineSpec | str, train_task: str | Path, val_task: str | Path | None, output: Path,
                overrides: Sequence[str] = (), progress: bool = True) -> TrainResult:
    """`runner.train_baseline`, which calls `system.fit` for the systems of this module."""
    from baselines.runner import train_baseline

    return train_baseline(spec, train_task, val_task, output, overrides, progress)
