"""PaSST-MPNet-tags (Pellegrini, DCASE 2022 Task 6b), with the tagger and text encoder as settings.

Paper configuration (defaults): frozen PaSST logits and frozen MPNet sentence embeddings, the
`TagsHead` (lambda 0.8), triplet loss with one random in-batch impostor each way (margin 0.4),
Adam 1e-3, batch 128, 50 epochs, ReduceLROnPlateau(0.5, patience 5) on validation loss.
`--set tagger=mn04 --set text_encoder=all-MiniLM-L6-v2` runs the same model on a CPU offline;
`--set lambda=0` is the zero-shot tags-only system.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from baselines import assets
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
from baselines.encoders.sentence_encoders import TextFeatures, text_encoder_spec
from baselines.encoders.taggers import TAGGERS, Tagger, TaggerFeatures, tagger_spec
from baselines.losses import same_audio_mask, triplet_random
from baselines.models.tags_head import N_TAGS, TagsHead, head_parameter_count
from baselines.spec import BaselineSpec, PaperSetting, ParameterCounts, SyntheticSystem, TrainingHooks
from baselines.task_features import TaskFeatures, require_text_to_audio
from benchmark.errors import LarbError
from benchmark.tasks import Task

NAME = "passt-mpnet-tags"

@dataclass(frozen=True)
class PasstMpnetTagsSettings(Settings):
    """The settings of PaSST-MPNet-tags (Pellegrini et al.)."""

    tagger: Tagger = "passt"
    text_encoder: str = "all-mpnet-base-v2"
    lambda_: float = 0.8
    margin: float = 0.4
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 50
    lr_factor: float = 0.5
    lr_patience: int = 5
    # the rest of the paper's recipe, as the training loop reads it: Adam, ReduceLROnPlateau with
    # torch's default threshold (1e-4, relative), every caption-audio pair once per epoch
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
    schedule: Schedule = "plateau"
    lr_threshold: float = 1e-4
    lr_threshold_mode: ThresholdMode = "rel"
    min_lr: float = 0.0
    grad_clip: float = 0.0
    drop_last: bool = False
    epoch_unit: EpochUnit = "pairs"
    num_workers: int = 0
    seed: int = 0
    val_fraction: float = 0.1
    device: Device = "auto"
    mixed_precision: MixedPrecision = "auto"
    retrieval: Retrieval = "chunked"


DEFAULTS = PasstMpnetTagsSettings()
MODEL_KEYS = ("tagger", "text_encoder", "lambda")

PELLEGRINI = "Pellegrini 2022"
PAPER_SETTINGS = (
    PaperSetting("PaSST AudioSet tagger, its 527 logits as the audio input", f"{PELLEGRINI}, system", "tagger",
                 "passt"),
    PaperSetting("MPNet sentence embedding all-mpnet-base-v2 (768-d, mean of word embeddings)",
                 f"{PELLEGRINI}, system", "text_encoder", "all-mpnet-base-v2"),
    PaperSetting("audio: LayerNorm (affine) -> Linear -> l2; text: LayerNorm without affine -> l2",
                 f"{PELLEGRINI}, system", note="fixed in the code (baselines.models.tags_head)"),
    PaperSetting("mix lambda * audio + (1 - lambda) * tags, lambda = 0.8 the best", f"{PELLEGRINI}, Fig. 3",
                 "lambda", 0.8),
    PaperSetting("triplet loss with random in-batch impostors, margin eta = 0.4", f"{PELLEGRINI}, Eq. 7",
                 "margin", 0.4),
    PaperSetting("Adam", f"{PELLEGRINI}, training", "optimizer", "adam"),
    PaperSetting("learning rate 1e-3", f"{PELLEGRINI}, training", "lr", 1e-3),
    PaperSetting("batch 128 (smaller and larger tried, 128 best)", f"{PELLEGRINI}, training", "batch_size", 128),
    PaperSetting("50 epochs", f"{PELLEGRINI}, training", "epochs", 50),
    PaperSetting("ReduceLROnPlateau on the Clotho validation loss", f"{PELLEGRINI}, training", "schedule", "plateau"),
    PaperSetting("plateau factor 0.5", f"{PELLEGRINI}, training", "lr_factor", 0.5),
    PaperSetting("plateau patience 5", f"{PELLEGRINI}, training", "lr_patience", 5),
    PaperSetting("model selection on the development-testing split itself (the test set)", f"{PELLEGRINI}, "
                 "Table 1", note="here --val-task defaults to clotho-v2.1/validation when training on "
                                 "clotho-v2.1/development, so a reproduction may land a little lower"),
    PaperSetting("AudioCaps pre-training: 100 epochs, no scheduler, then Clotho", f"{PELLEGRINI}, Table 1 (-AC)",
                 note="larb baseline recipe: --set epochs=100 --set schedule=constant, then --init-from"),
)


def audioset_labels() -> list[str]:
    """The 527 AudioSet display names in the taggers' output order."""
    path = assets.fetch(assets.AUDIOSET_LABELS)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["index"]))
    labels = [row["display_name"] for row in rows]
    if len(labels) != N_TAGS:
        raise LarbError(f"expected {N_TAGS} AudioSet classes, found {len(labels)}.", path=path,
                        fix="the label file is not the pinned one; delete it and fetch again.")
    return labels


def _validate(config: Mapping[str, Any]) -> None:
    if config["tagger"] not in TAGGERS:
        raise LarbError(f"unknown tagger {config['tagger']!r}.", fix=f"use one of {sorted(TAGGERS)}.")
    text_encoder_spec(config["text_encoder"])
    if not 0.0 <= config["lambda"] <= 1.0:
        raise LarbError(f"lambda={config['lambda']} is outside [0, 1].", fix="use e.g. --set lambda=0.8.")


class PasstMpnetTags(TrainingHooks):
    """Frozen tagger + frozen sentence encoder (both cached) + the trainable `TagsHead`; the
    default hooks (one parameter group, the loss as batch and validation loss)."""

    def __init__(self, config: Mapping[str, Any], head: TagsHead, tagger: TaggerFeatures | None = None,
                 text: TextFeatures | None = None) -> None:
        self.config = config
        self.head = head
        self.tagger = tagger
        self.text = text

    @property
    def needs_training(self) -> bool:
        return self.head.needs_training

    @property
    def sample_rate(self) -> int:
        """The rate the tagger reads audio at."""
        if self.tagger is None:
            raise RuntimeError("this system was built without encoders (synthetic check only)")
        return self.tagger.spec.sample_rate

    def task_features(self, task: Task) -> TaskFeatures:
        if self.tagger is None or self.text is None:
            raise RuntimeError("this system was built without encoders (synthetic check only)")
        require_text_to_audio(task)
        gt = task.ground_truth
        logits = self.tagger.logits([task.audio_path(name) for name in gt.corpus])
        sentences = self.text.encode(gt.query_texts)
        return TaskFeatures(gt, torch.from_numpy(logits), torch.from_numpy(sentences))

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        return pellegrini_triplet(audio, text, audio_ids, self.config["margin"], generator)


def build(config: Mapping[str, Any], device: str, progress: bool = True) -> PasstMpnetTags:
    """The system with its real encoders; the tag-name embeddings come from the text encoder."""
    _validate(config)
    tagger = TaggerFeatures(tagger_spec(config["tagger"]), device, progress=progress)
    text = TextFeatures(text_encoder_spec(config["text_encoder"]), device, progress=progress)
    tag_embeddings = torch.from_numpy(text.encode(audioset_labels(), what="AudioSet tag names"))
    torch.manual_seed(config["seed"])  # the projection's initialisation
    return PasstMpnetTags(config, TagsHead(tag_embeddings, config["lambda"]), tagger, text)


def pellegrini_triplet(audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor, margin: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """One random impostor caption and one random impostor audio per pair, from other recordings."""
    sim = audio.float() @ text.float().T
    return triplet_random(sim, same_audio=same_audio_mask(audio_ids.tolist()), margin=margin,
                          generator=generator)


def parameter_counts(config: Mapping[str, Any]) -> ParameterCounts:
    """Counted from the code: tagger and text encoder architectures, and the head at this D."""
    _validate(config)
    text = text_encoder_spec(config["text_encoder"])
    frozen = {f"tagger:{config['tagger']}": TAGGERS[config["tagger"]]().parameter_count(),
              f"text:{text.name}": text.parameter_count()}
    return ParameterCounts(frozen, head_parameter_count(text.dim, config["lambda"]))


def required_assets(config: Mapping[str, Any]) -> list[str]:
    _validate(config)
    return [TAGGERS[config["tagger"]]().asset, text_encoder_spec(config["text_encoder"]).asset,
            assets.AUDIOSET_LABELS]


def synthetic_system(config: Mapping[str, Any], batch: int = 16) -> SyntheticSystem:
    """The same head and loss on random tag embeddings and random frozen inputs: needs no asset."""
    _validate(config)
    generator = torch.Generator().manual_seed(config["seed"])
    dim = text_encoder_spec(config["text_encoder"]).dim
    torch.manual_seed(config["seed"])
    system = PasstMpnetTags(config, TagsHead(torch.randn(N_TAGS, dim, generator=generator), config["lambda"]))
    return SyntheticSystem(system, 3 * torch.randn(batch, N_TAGS, generator=generator),
                           torch.randn(batch, dim, generator=generator), torch.arange(batch) // 2, dim)


def system_name(config: Mapping[str, Any]) -> str:
    mode = "tags only, zero-shot" if config["lambda"] == 0 else f"lambda {config['lambda']:g}"
    return f"PaSST-MPNet-tags ({config['tagger']} + {config['text_encoder']}, {mode})"


SPEC = BaselineSpec(
    name=NAME,
    paper="Pellegrini, DCASE 2022 Workshop, Task 6b system (HAL hal-03812737)",
    links={"paper": "https://hal.science/hal-03812737",
           "code": "https://github.com/topel/IRIT-audio-retrieval-system-dcase2022"},
    audio_encoder="frozen AudioSet tagger, 527 logits (tagger=passt: PaSST-S SWA; cnn14; mn04)",
    text_encoder="frozen sentence encoder, mean pooled + l2 (text_encoder=all-mpnet-base-v2; all-MiniLM-L6-v2)",
    head="LayerNorm(527) -> Linear(527->D) -> l2, mixed with the sigmoid-weighted tag-name embeddings: "
         "l2(lambda*audio + (1-lambda)*tags); text: LayerNorm (no affine) -> l2",
    loss="triplet, one random in-batch impostor each way, margin 0.4 (baselines.losses.triplet_random)",
    training_data="Clotho v2.1 development (paper); any text-to-audio task here",
    defaults=DEFAULTS,
    model_keys=MODEL_KEYS,
    paper_settings=PAPER_SETTINGS,
    build=build,
    parameter_counts=parameter_counts,
    required_assets=required_assets,
    synthetic_system=synthetic_system,
    system_name=system_name,
)
