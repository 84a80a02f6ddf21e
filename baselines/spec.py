"""What a registered baseline declares, and the interface its trainable system offers.

Training and ranking are written against `System`: per-task features, a head that embeds them,
a loss. PaSST-MPNet-tags freezes its encoders, so its features are small cached encoder outputs
held in memory; the seeds that fine-tune an encoder (CLAP, PANNs + SBERT, distilled PaSST) will
need features that stream (waveforms, tokens) and a head that contains the encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from baselines.audio.clips import ClipStore
from baselines.config import Settings
from baselines.task_features import TaskFeatures
from benchmark.tasks import Task


class System(Protocol):
    """A built baseline: feature extractors, a head (nn.Module), its loss, and every hook the
    training loop and the contract check call (`TrainingHooks` gives the defaults).

    `head(audio_features, text_features)` returns (audio embeddings, text embeddings), both
    l2-normalised, so that a dot product is the similarity the ranking uses.
    """

    config: Mapping[str, Any]
    head: nn.Module
    end_to_end: bool  # True: the encoders run inside the head every step (fine-tuned, or frozen with
    # augmentation in the loop); False: a head on cached features
    clips: ClipStore | None  # reads audio by clip id per step when features hold clip ids

    @property
    def needs_training(self) -> bool: ...

    @property
    def sample_rate(self) -> int:
        """The rate at which the system reads audio files (what an adapter must write them at)."""
        ...

    def task_features(self, task: Task) -> TaskFeatures: ...

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor: ...

    def batch_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor: ...

    def validation_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor: ...

    def prepare_training(self, train: TaskFeatures, val: TaskFeatures, output: Path, progress: bool) -> None: ...

    def parameter_groups(self, head: nn.Module) -> list[dict[str, Any]]: ...

    def after_step(self, head: nn.Module) -> None: ...


class TrainingHooks:
    """The defaults of the hooks the training loop calls; a system overrides what its recipe needs."""

    config: Mapping[str, Any]
    end_to_end = False
    clips: ClipStore | None = None

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def batch_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        """The training loss of a batch; `clips`/`queries` index the training features' rows."""
        return self.loss(audio, text, clips, generator)

    def validation_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor:
        """The loss reported on validation batches (and driving a plateau schedule)."""
        return self.batch_loss(audio, text, clips, queries, generator)

    def prepare_training(self, train: TaskFeatures, val: TaskFeatures, output: Path, progress: bool) -> None:
        """Before the optimiser is built (decode audio once, load teachers); nothing by default."""

    def parameter_groups(self, head: nn.Module) -> list[dict[str, Any]]:
        """Every trainable parameter in one group at `lr`."""
        return [{"params": [p for p in head.parameters() if p.requires_grad], "lr": self.config["lr"]}]

    def after_step(self, head: nn.Module) -> None:
        """Called after every optimiser step (e.g. to clamp a learned temperature)."""


@dataclass(frozen=True)
class ParameterCounts:
    """Counts of one configuration; `frozen` names each pretrained component (shared by ensemble
    members, so counted once there)."""

    frozen: dict[str, int] = field(hash=False)
    trainable: int

    @property
    def total(self) -> int:
        return sum(self.frozen.values()) + self.trainable


@dataclass(frozen=True)
class PaperSetting:
    """One thing the paper states, beside the setting that holds it (`larb baseline card`).

    `value` is the paper's value in the setting's type, when it has one: the default must equal it
    unless `differs` says why not (checked by the tests, so a card cannot drift from the code).
    Without a value the row is a reading (the paper is silent or prose): `note` says whose."""

    paper: str  # what the paper says, in its words
    where: str  # where it says it (section, table, equation), or the authors' code when the paper is silent
    key: str = ""  # the setting; "" when the code fixes it (the sample rate, the architecture)
    value: Any = None
    differs: str = ""
    note: str = ""


# settings that change where or how fast a run computes, not what it computes
MACHINE_KEYS = frozenset({"device", "mixed_precision", "num_workers", "retrieval", "eval_batch_size"})


@dataclass(frozen=True)
class BaselineSpec:
    """A registered baseline: its declaration (for `larb baseline list`) and how to build it.

    `model_keys` are the settings that define the trained weights; a checkpoint fixes them.
    A submission declares every setting except the `MACHINE_KEYS` (`declared_settings`), so a
    reported row can pin the training recipe too (Pellegrini's margin ablation, Park's losses).
    """

    name: str
    paper: str
    links: dict[str, str]
    audio_encoder: str
    text_encoder: str
    head: str
    loss: str
    training_data: str
    defaults: Settings = field(hash=False)
    model_keys: tuple[str, ...]
    build: Callable[[Mapping[str, Any], str, bool], System] = field(repr=False)
    parameter_counts: Callable[[Mapping[str, Any]], ParameterCounts] = field(repr=False)
    required_assets: Callable[[Mapping[str, Any]], list[str]] = field(repr=False)
    synthetic_system: Callable[[Mapping[str, Any]], SyntheticSystem] = field(repr=False)
    system_name: Callable[[Mapping[str, Any]], str] = field(repr=False)
    # the paper's settings beside the config keys (`larb baseline card`)
    paper_settings: tuple[PaperSetting, ...] = ()
    # settings that must name a downloaded file at full size (no pinned checksum here): key -> the
    # file's name and where it comes from (recipes pass the name; the user puts the file there)
    local_files: Mapping[str, tuple[str, str]] = field(default_factory=dict, hash=False)
    # a checkpoint's configuration written before later settings existed, made to say what that
    # run did in today's settings (`saved_config`); the identity when nothing changed
    upgrade_saved: Callable[[Mapping[str, Any]], dict[str, Any]] = field(repr=False, default=dict)
    # training data that comes with the initial weights (a run declares it beside its tasks')
    inherited_training_data: Callable[[Mapping[str, Any]], list[dict[str, str]]] = field(
        repr=False, default=lambda config: [])

    def saved_config(self, saved: Mapping[str, Any]) -> dict[str, Any]:
        """A checkpoint's configuration in today's settings (older ones are upgraded)."""
        return self.upgrade_saved(saved)

    def declared_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """What a submission says this run was: every setting but where and how fast it ran, and
        not the local paths of weight files (their checksums are in the run's run.json)."""
        return {k: config[k] for k in self.defaults
                if k not in MACHINE_KEYS and (k in self.model_keys or not k.endswith("_checkpoint"))}

    def declaration(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON-able declaration, with parameter counts computed for `config`."""
        counts = self.parameter_counts(config)
        return {
            "name": self.name, "paper": self.paper, "links": self.links, "audio_encoder": self.audio_encoder,
            "text_encoder": self.text_encoder, "head": self.head, "loss": self.loss,
            "training_data": self.training_data, "config": dict(config),
            "parameters": {"total": counts.total, "trainable": counts.trainable},
            "assets": self.required_assets(config),
        }


@dataclass
class SyntheticSystem:
    """A system on random frozen inputs (no assets), for the contract check."""

    system: System
    audio_features: torch.Tensor
    text_features: torch.Tensor
    audio_ids: torch.Tensor
    embedding_dim: int
