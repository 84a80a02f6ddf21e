"""PANNs + Sentence-BERT with a zoo of losses (Park et al., DCASE 2023 Task 6b), one spec per PANNs model.

The defaults are the paper's; where it is silent, the authors' code (jiwon3401/DCASE2023_retrieval
@44d9500, `models/ASE_model.py`, `models/AudioEncoder.py`, `tools/loss.py`, `trainer/trainer.py`,
`settings/settings.yaml`):

- audio: a PANNs tagger (Cnn14, ResNet38 or Wavegram-Logmel-Cnn14; Zenodo weights) without its
  classifier, **frozen** (the paper's conclusion: "the most layers except the projector frozen"),
  SpecAugment on the log-mel (2 time stripes <= 64 frames, 2 frequency stripes <= 8 bands),
  dropout 0.2 after each block; clip embedding = max + mean over time of the frequency-averaged
  last block (2048-d, taken before PANNs' fc1, which that code never uses); 32 kHz, clips cut or
  zero-padded to 30 s. Frozen as the authors' code freezes it: `requires_grad=False` while the
  module stays in training mode, so SpecAugment and dropout act on every step and the batch-norm
  running statistics keep moving; the audio is therefore read and encoded every step.
  `--set freeze_audio=false` fine-tunes the backbone instead;
- audio head: Linear(2048 -> 600) -> ReLU -> Linear(600 -> 300); text: frozen all-mpnet-base-v2
  sentence embedding -> Linear(768 -> 300); both l2-normalised, scores are dot products;
- loss (`--set loss=`): triplet-sum, triplet-max (VSE++), triplet-weighted (polynomial), ntxent,
  infonce, infonce-vicreg (`baselines.losses`), margin 0.2, tau 0.07, VICReg weight 0.4. As the
  authors' code: NT-Xent and InfoNCE take only the diagonal as positive, so another caption of the
  same clip is a negative (`--set same_audio_positives=true`: all of them positive, salsa's form);
  InfoNCE is one-directional over exp(cosine) / tau (`--set infonce_exp_similarity=false`: the
  standard cosine / tau); the triplet losses never use a same-clip caption as a negative;
- Adam 1e-4, ReduceLROnPlateau on the validation loss (x0.5, patience 5, threshold 0.005 abs,
  min_lr 1e-6: the code's), gradient clipping at 2, batch 96 and 20 epochs (the paper; the
  code's CLI defaults are 24 and 50).

`--set cache_frozen_audio=true` (with `spec_augment=false`) trains the heads on cached eval-mode
PANNs embeddings instead: CPU-feasible and what `larb baseline extract` fills, but not the paper's
frozen run, which had SpecAugment and dropout in the loop. `--set size=tiny` is a narrow PANNs
model with random weights (tests, CPU smoke runs). Ensembles (the paper's best entries) are
`baselines.ensemble`. Deviation: PANNs' own Cnn14 has no pooling after the last block; Park's
copy pools 2x2 there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.audio.clips import ClipStore, synthetic_tones
from baselines.config import Schedule, Size
from baselines.embedding_cache import EmbeddingCache, cached_extract, file_sha256
from baselines.encoders import panns
from baselines.encoders.augment import SpecAugment
from baselines.encoders.sentence_encoders import TextFeatures, text_encoder_spec
from baselines.losses import LOSSES, same_audio_mask
from baselines.models.end_to_end import (
    EndToEndHead,
    EndToEndSettings,
    EndToEndSystem,
    fixed_randomness,
    trainable_parameter_count,
)
from baselines.spec import BaselineSpec, PaperSetting, ParameterCounts, SyntheticSystem
from baselines.task_features import TaskFeatures
from benchmark.assets import Asset
from benchmark.errors import LarbError

SAMPLE_RATE = panns.SAMPLE_RATE
ParkLoss = Literal["triplet-sum", "triplet-max", "triplet-weighted", "ntxent", "infonce", "infonce-vicreg"]
PARK_LOSSES: tuple[str, ...] = get_args(ParkLoss)


@dataclass(frozen=True)
class PannsEncoder:
    """One PANNs model: its class, loader, pinned weights and a test-sized configuration."""

    key: str
    title: str
    architecture: Callable[..., panns.PannsTagger]
    load: Callable[..., panns.PannsTagger]
    asset: Asset
    tiny: dict[str, Any]


ENCODERS: dict[str, PannsEncoder] = {e.key: e for e in (
    PannsEncoder("cnn14", "Cnn14", panns.Cnn14, panns.load_cnn14, panns.CNN14_ASSET,
                 {"widths": (4, 8, 16, 16, 32, 32)}),
    PannsEncoder("resnet38", "ResNet38", panns.ResNet38, panns.load_resnet38, panns.RESNET38_ASSET,
                 {"widths": (4, 8, 8, 16), "blocks": (1, 1, 1, 1), "embedding_dim": 32}),
    PannsEncoder("wavegram-logmel-cnn14", "Wavegram-Logmel-Cnn14", panns.WavegramLogmelCnn14,
                 panns.load_wavegram_logmel_cnn14, panns.WAVEGRAM_LOGMEL_CNN14_ASSET,
                 {"widths": (4, 8, 16, 16, 32, 32), "wave_widths": (8, 8, 32, 32)}),
)}


class PannsBackbone(nn.Module):
    """A PANNs tagger as an audio encoder, waveforms (batch, samples) -> (batch, 2048).

    `use_fc1=False`: the pooled last block (Park et al.); `use_fc1=True`: PANNs' `embedding`
    (ReLU(fc1), as msclap's CLAP uses it). The classifier (and fc1 when unused) is removed, so
    every parameter left takes part in the output.
    """

    def __init__(self, tagger: panns.PannsTagger, use_fc1: bool = False, spec_augment: bool = True,
                 pooling: str = "max+mean") -> None:
        super().__init__()
        if pooling not in ("max+mean", "max"):
            raise LarbError(f"pooling={pooling!r} is not max+mean or max.", fix="use --set pooling=max.")
        self.pooling = pooling
        del tagger.fc_audioset
        if not use_fc1:
            del tagger.fc1
        self.tagger = tagger
        self.use_fc1 = use_fc1
        self.spec_augment = SpecAugment() if spec_augment else None

    @property
    def dim(self) -> int:
        return self.tagger.embedding_dim

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        t = self.tagger
        with torch.autocast(waveform.device.type, enabled=False):  # power spectra overflow float16
            logmel = t.logmel_extractor(t.spectrogram_extractor(waveform.float()))  # (batch, 1, frames, bands)
        x = t.bn0(logmel.transpose(1, 3)).transpose(1, 3)
        if self.spec_augment is not None:
            x = self.spec_augment(x)
        x = t._trunk(x, waveform).mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2) if self.pooling == "max+mean" else x.amax(dim=2)
        if self.use_fc1:
            x = F.relu(t.fc1(F.dropout(x, 0.5, training=self.training)))
            x = F.dropout(x, 0.5, training=self.training)
        return x


def panns_tagger(encoder: PannsEncoder, size: str, checkpoint: str) -> panns.PannsTagger:
    """The tagger with its weights: `checkpoint` "" = the official file (full size) or random (tiny);
    "none" = random; otherwise a local file in the published layout, loaded strictly."""
    kwargs = encoder.tiny if size == "tiny" else {}
    if checkpoint == "none" or (checkpoint == "" and size == "tiny"):
        return encoder.architecture(**kwargs)
    return encoder.load(checkpoint or None, **kwargs)


def weights_identity(encoder: PannsEncoder, size: str, checkpoint: str, seed: int) -> str:
    """What determines the backbone's weights, for naming cached frozen embeddings."""
    if checkpoint == "none" or (checkpoint == "" and size == "tiny"):
        return f"random-init:{size}:seed{seed}"
    if checkpoint == "":
        return encoder.asset.checksum
    return "sha256:" + file_sha256(Path(checkpoint))


class PannsSbertHead(EndToEndHead):
    """Optional fine-tuned PANNs backbone -> MLP (d -> 2j -> j); sentence vector -> Linear(t -> j)."""

    def __init__(self, backbone: PannsBackbone | None, audio_dim: int, text_dim: int, joint_dim: int = 300,
                 clips: ClipStore | None = None, samples: int = 0, eval_batch_size: int = 32, seed: int = 0) -> None:
        super().__init__(clips, samples, samples, eval_batch_size, seed)
        self.backbone = backbone
        self.dim = joint_dim
        self.audio_linear = nn.Sequential(nn.Linear(audio_dim, 2 * joint_dim), nn.ReLU(),
                                          nn.Linear(2 * joint_dim, joint_dim))
        self.text_linear = nn.Linear(text_dim, joint_dim)

    def encode_audio(self, waves: torch.Tensor, fractions: torch.Tensor | None) -> torch.Tensor:
        features = self.backbone(waves) if self.backbone is not None else waves.float()
        return self.audio_linear(features)

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        return self.text_linear(text.float())


def _validate(encoder: PannsEncoder, config: Mapping[str, Any]) -> None:
    if config["cache_frozen_audio"] and not config["freeze_audio"]:
        raise LarbError("cache_frozen_audio=true needs freeze_audio=true: a fine-tuned backbone's embeddings "
                        "change every step.", fix="add --set freeze_audio=true, or drop cache_frozen_audio.")
    if config["cache_frozen_audio"] and config["spec_augment"]:
        raise LarbError("cache_frozen_audio=true computes each clip's embedding once, so SpecAugment cannot act "
                        "on it.", fix="add --set spec_augment=false (or keep the frozen backbone in the loop: "
                                      "drop cache_frozen_audio).")
    if config["loss"] not in PARK_LOSSES:
        raise LarbError(f"unknown loss {config['loss']!r}.", fix=f"use one of {', '.join(PARK_LOSSES)}.")
    if config["size"] not in ("full", "tiny"):
        raise LarbError(f"size={config['size']!r} is not full or tiny.", fix="use --set size=full.")
    text_encoder_spec(config["text_encoder"])


def park_loss(config: Mapping[str, Any], audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The configured loss on the batch's similarity matrix. The triplet losses never take a caption
    of the same clip as a negative; the softmax losses take only the diagonal as positive unless
    `same_audio_positives` (the authors' `NTXent` masks the off-diagonal same-clip entries only
    after the log-softmax and then reads the diagonal, so they stay negatives)."""
    name = config["loss"]
    sim = audio.float() @ text.float().T
    same = same_audio_mask(audio_ids.tolist())
    if name.startswith("triplet"):
        return LOSSES[name](sim, same_audio=same, margin=config["margin"])
    positives = same if config["same_audio_positives"] else None
    if name == "ntxent":
        return LOSSES[name](sim, same_audio=positives, temperature=config["temperature"])
    if name == "infonce":
        return LOSSES[name](sim, same_audio=positives, temperature=config["temperature"],
                            exp_similarity=config["infonce_exp_similarity"])
    return LOSSES[name](sim, same_audio=positives, temperature=config["temperature"], audio_embeddings=audio.float(),
                        text_embeddings=text.float(), vicreg_weight=config["vicreg_weight"],
                        exp_similarity=config["infonce_exp_similarity"])


class PannsSbert(EndToEndSystem):
    def __init__(self, encoder: PannsEncoder, config: Mapping[str, Any], head: PannsSbertHead,
                 text: TextFeatures | None = None, clips: ClipStore | None = None,
                 frozen_backbone: PannsBackbone | None = None, device: str = "cpu", progress: bool = True) -> None:
        self.encoder = encoder
        self.config = config
        self.head = head
        self.text = text
        self.clips = clips
        self.frozen_backbone = frozen_backbone
        self.device = device
        self.progress = progress

    @property
    def end_to_end(self) -> bool:  # type: ignore[override]
        """False when the heads train on cached embeddings (`larb baseline extract` fills them)."""
        return self.frozen_backbone is None

    def features(self, ground_truth, paths: Sequence[Path]) -> TaskFeatures:
        if self.text is None or self.clips is None:
            raise RuntimeError("this system was built without encoders (synthetic check only)")
        sentences = torch.from_numpy(self.text.encode(ground_truth.query_texts))
        ids = self.clips.register(paths)
        audio = ids if self.frozen_backbone is None else torch.from_numpy(self._frozen_embeddings(ids))
        return TaskFeatures(ground_truth, audio, sentences)

    def _frozen_embeddings(self, ids: torch.Tensor) -> np.ndarray:
        config = self.config
        samples = round(config["clip_seconds"] * SAMPLE_RATE)
        cache = EmbeddingCache(
            f"panns-{self.encoder.key}-{config['size']}-pooled",
            weights_identity(self.encoder, config["size"], config["audio_checkpoint"], config["seed"]),
            f"32 kHz mono soxr HQ; first {config['clip_seconds']:g} s, zero-padded; max+mean pooled last block")
        backbone = self.frozen_backbone.to(self.device).eval()

        @torch.no_grad()
        def compute(batch: list[int]) -> np.ndarray:
            waves, _ = self.clips.batch(batch, samples, None)
            return backbone(waves.to(self.device)).float().cpu().numpy()

        keys = [self.clips.keys[int(i)] for i in ids]
        vectors, _ = cached_extract(cache, ids.tolist(), keys, compute, 8, f"{self.encoder.title} embeddings",
                                    self.progress)
        return vectors

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        return park_loss(self.config, audio, text, audio_ids, generator)


def _head(encoder: PannsEncoder, config: Mapping[str, Any], backbone: PannsBackbone | None, audio_dim: int,
          clips: ClipStore | None) -> PannsSbertHead:
    """The head, holding the backbone unless its embeddings are cached; a frozen backbone in the
    head takes no gradient but stays in the training loop (augmentation, dropout, batch-norm
    statistics), as the authors' `freeze` flag leaves it."""
    text_dim = text_encoder_spec(config["text_encoder"]).dim
    samples = round(config["clip_seconds"] * SAMPLE_RATE)
    held = None if config["cache_frozen_audio"] else backbone
    if held is not None and config["freeze_audio"]:
        held.requires_grad_(False)
    return PannsSbertHead(held, audio_dim, text_dim, config["joint_dim"], clips, samples, config["eval_batch_size"],
                          config["seed"])


def _builder(encoder: PannsEncoder) -> Callable[[Mapping[str, Any], str, bool], PannsSbert]:
    def build(config: Mapping[str, Any], device: str, progress: bool = True) -> PannsSbert:
        _validate(encoder, config)
        torch.manual_seed(config["seed"])  # random backbones (tiny) and the heads' initialisation
        backbone = PannsBackbone(panns_tagger(encoder, config["size"], config["audio_checkpoint"]),
                                 use_fc1=False, spec_augment=config["spec_augment"])
        text = TextFeatures(text_encoder_spec(config["text_encoder"]), device, progress=progress)
        clips = ClipStore(SAMPLE_RATE)
        head = _head(encoder, config, backbone, backbone.dim, clips)
        return PannsSbert(encoder, config, head, text, clips, backbone if config["cache_frozen_audio"] else None,
                          device, progress)
    return build


@functools.cache
def _text_parameter_count(name: str) -> int:
    return text_encoder_spec(name).parameter_count()


def _backbone_on_meta(encoder: PannsEncoder, config: Mapping[str, Any]) -> PannsBackbone:
    with torch.device("meta"):
        return PannsBackbone(encoder.architecture(**(encoder.tiny if config["size"] == "tiny" else {})),
                             use_fc1=False, spec_augment=False)


def _counter(encoder: PannsEncoder) -> Callable[[Mapping[str, Any]], ParameterCounts]:
    def parameter_counts(config: Mapping[str, Any]) -> ParameterCounts:
        """Counted from the code on the meta device: backbone without classifier, heads, text encoder."""
        _validate(encoder, config)
        backbone = _backbone_on_meta(encoder, config)
        with torch.device("meta"):
            head = _head(encoder, config, backbone, backbone.dim, None)
        text = text_encoder_spec(config["text_encoder"])
        frozen = {f"text:{text.name}": _text_parameter_count(text.name)}
        trainable = trainable_parameter_count(head)
        if config["freeze_audio"]:
            frozen[f"audio:{encoder.key}-{config['size']}"] = sum(p.numel() for p in backbone.parameters())
        return ParameterCounts(frozen, trainable)
    return parameter_counts


def _assets(encoder: PannsEncoder) -> Callable[[Mapping[str, Any]], list[str]]:
    def required_assets(config: Mapping[str, Any]) -> list[str]:
        _validate(encoder, config)
        names = [text_encoder_spec(config["text_encoder"]).asset]
        if config["size"] == "full" and config["audio_checkpoint"] == "":
            names.insert(0, encoder.asset.name)
        return names
    return required_assets


def _synthetic(encoder: PannsEncoder) -> Callable[[Mapping[str, Any]], SyntheticSystem]:
    def synthetic_system(config: Mapping[str, Any], batch: int = 8) -> SyntheticSystem:
        """The configured head (random weights, fixed random draws per pass) on 1 s synthetic clips (a
        tone per audio id) or random PANNs vectors."""
        _validate(encoder, config)
        generator = torch.Generator().manual_seed(config["seed"])
        torch.manual_seed(config["seed"])
        kwargs = encoder.tiny if config["size"] == "tiny" else {}
        backbone = PannsBackbone(encoder.architecture(**kwargs), use_fc1=False, spec_augment=config["spec_augment"])
        head = fixed_randomness(_head(encoder, config, backbone, backbone.dim, None), config["seed"])
        text_dim = text_encoder_spec(config["text_encoder"]).dim
        ids = torch.arange(batch) // 2
        audio = (torch.randn(batch, backbone.dim, generator=generator).abs() if config["cache_frozen_audio"]
                 else synthetic_tones(ids, SAMPLE_RATE, SAMPLE_RATE, generator))
        system = PannsSbert(encoder, config, head)
        return SyntheticSystem(system, audio, torch.randn(batch, text_dim, generator=generator), ids,
                               config["joint_dim"])
    return synthetic_system


def _namer(encoder: PannsEncoder) -> Callable[[Mapping[str, Any]], str]:
    def system_name(config: Mapping[str, Any]) -> str:
        audio = f"{encoder.title}{' (tiny, random init)' if config['size'] == 'tiny' else ''}"
        mode = ("frozen audio, cached" if config["cache_frozen_audio"] else "frozen audio" if config["freeze_audio"]
                else "fine-tuned audio")
        return f"PANNs {audio} + SBERT ({config['text_encoder']}), {config['loss']}, {mode}"
    return system_name


@dataclass(frozen=True)
class PannsSbertSettings(EndToEndSettings):
    """The settings of the PANNs + Sentence-BERT baselines (Park et al.)."""

    size: Size = "full"
    loss: ParkLoss = "triplet-weighted"
    text_encoder: str = "all-mpnet-base-v2"
    freeze_audio: bool = True
    cache_frozen_audio: bool = False
    audio_checkpoint: str = ""
    spec_augment: bool = True
    clip_seconds: float = 30.0
    joint_dim: int = 300
    margin: float = 0.2
    temperature: float = 0.07
    vicreg_weight: float = 0.4
    same_audio_positives: bool = False
    infonce_exp_similarity: bool = True
    lr: float = 1e-4
    batch_size: int = 96
    epochs: int = 20
    schedule: Schedule = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 5
    lr_threshold: float = 0.005
    min_lr: float = 1e-6
    grad_clip: float = 2.0


DEFAULTS = PannsSbertSettings()
MODEL_KEYS = ("size", "loss", "text_encoder", "freeze_audio", "cache_frozen_audio", "joint_dim")
PARK, CODE = "Park et al. 2023", "authors' code (jiwon3401/DCASE2023_retrieval)"
PAPER_SETTINGS = (
    PaperSetting("PANNs Cnn14, ResNet38, Wavegram-Logmel-Cnn14 at 32 kHz, Hann window 1024, 64 mel bins",
                 f"{PARK}, system", note="one baseline per PANNs model; the front end is fixed in the code"),
    PaperSetting("consistent performance with the most layers except the projector frozen", f"{PARK}, conclusion",
                 "freeze_audio", True),
    PaperSetting("frozen through requires_grad only: the encoder stays in training mode", CODE, "cache_frozen_audio",
                 False, note="so SpecAugment, dropout and batch-norm statistics act every step"),
    PaperSetting("SpecAugment frequency and time masks", f"{PARK}, system", "spec_augment", True),
    PaperSetting("Sentence-BERT", f"{PARK}, system", "text_encoder", note="the paper names no model; the code's "
                 "all-mpnet-base-v2, frozen"),
    PaperSetting("projection of both into a joint space", f"{PARK}, system", "joint_dim",
                 note="the code's MLP 2048 -> 600 -> 300 and Linear 768 -> 300"),
    PaperSetting("losses: triplet-sum, triplet-max, triplet-weighted, NT-Xent, InfoNCE, InfoNCE + VICReg",
                 f"{PARK}, Table 1", "loss", note="triplet-weighted by default: the best single model of Table 1"),
    PaperSetting("NT-Xent and InfoNCE: only the diagonal is positive", CODE, "same_audio_positives", False),
    PaperSetting("InfoNCE: log-softmax of exp(cosine) / tau, audio to text", CODE, "infonce_exp_similarity", True),
    PaperSetting("margin 0.2, tau 0.07, VICReg weight 0.4", CODE, "margin", note="temperature 0.07, vicreg_weight 0.4"),
    PaperSetting("20 epochs", f"{PARK}, training", "epochs", 20),
    PaperSetting("batch 96", f"{PARK}, training", "batch_size", 96),
    PaperSetting("learning rate 1e-4", f"{PARK}, training", "lr", 1e-4),
    PaperSetting("Adam", f"{PARK}, training", "optimizer", "adam"),
    PaperSetting("ReduceLROnPlateau", f"{PARK}, training", "schedule", "plateau",
                 note="factor 0.5, patience 5, threshold 0.005 abs, min_lr 1e-6 and gradient clipping 2: the code's"),
    PaperSetting("clips padded or cut to 30 s", CODE, "clip_seconds", 30.0),
)
PAPER = "Park et al., DCASE 2023 Workshop / Task 6b technical report (PANNs + Sentence-BERT, loss zoo, ensembles)"
LINKS = {"code": "https://github.com/jiwon3401/DCASE2023_retrieval"}


def upgrade_saved(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint from before `cache_frozen_audio`: then freeze_audio=true meant cached
    embeddings (no augmentation could act) and NT-Xent / InfoNCE took every same-clip caption as
    a positive."""
    if "cache_frozen_audio" in saved:
        return dict(saved)
    cached = bool(saved.get("freeze_audio", False))
    return {**saved, "cache_frozen_audio": cached, "same_audio_positives": True,
            "spec_augment": bool(saved.get("spec_augment", True)) and not cached}


def _spec(encoder: PannsEncoder) -> BaselineSpec:
    return BaselineSpec(
        name=f"panns-sbert-{encoder.key}",
        paper=PAPER,
        links=LINKS,
        audio_encoder=f"PANNs {encoder.title} (AudioSet, Zenodo 3987831), fine-tuned with SpecAugment; "
                      "max+mean pooled 2048-d; 32 kHz, 30 s",
        text_encoder="frozen Sentence-BERT all-mpnet-base-v2 (768-d, cached)",
        head="audio MLP 2048 -> 600 -> ReLU -> 300; text Linear 768 -> 300; both l2-normalised",
        loss="selectable: triplet-sum | triplet-max | triplet-weighted (default) | ntxent | infonce | "
             "infonce-vicreg (baselines.losses)",
        training_data="Clotho v2.1 development (paper); any text-to-audio task here",
        defaults=DEFAULTS,
        model_keys=MODEL_KEYS,
        paper_settings=PAPER_SETTINGS,
        upgrade_saved=upgrade_saved,
        build=_builder(encoder),
        parameter_counts=_counter(encoder),
        required_assets=_assets(encoder),
        synthetic_system=_synthetic(encoder),
        system_name=_namer(encoder),
    )


SPEC_CNN14, SPEC_RESNET38, SPEC_WAVEGRAM_LOGMEL_CNN14 = (_spec(ENCODERS[k]) for k in ENCODERS)
SPEC = SPEC_CNN14
SPECS = (SPEC_CNN14, SPEC_RESNET38, SPEC_WAVEGRAM_LOGMEL_CNN14)

