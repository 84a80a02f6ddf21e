"""CNN14 + HTSAT CLAP with RoBERTa (Deshmukh et al. 2022, "Audio Retrieval with WavText5K and CLAP
Training", arXiv 2209.14275). No official code or weights exist; this is a re-implementation.

- audio: concat(CNN14 embedding 2048, HTSAT embedding 768) -> projection to 1024. CNN14 is PANNs'
  (`baselines.encoders.panns`, Zenodo weights; PANNs' embedding = ReLU(fc1), as msclap's CLAP
  uses it), which is laion-clap's PANN-14 layer for layer (same keys, same embedding: tested);
  LAION released no PANN-14 CLAP checkpoint, so the Zenodo AudioSet weights are the released ones;
  HTSAT-tiny is laion-clap's module (`baselines.encoders.htsat`) initialised, as the paper's is,
  from the AudioSet-trained HTS-AT (the official release, `htsat_weights=audioset`; its file has
  no pinned checksum here, so it is passed by path and its sha256 recorded in run.json).
  `--set htsat_weights=laion-clap` takes the audio branch of a LAION-CLAP checkpoint instead
  (`630k-audioset-best.pt`), trained on LAION-630k, which holds AudioCaps and Clotho training
  data: a run then declares `laion-630k/train` among its training data;
- front end (both encoders): log-mel, 64 bands, window 1024, hop 320, 50-8000 Hz, at 44.1 kHz;
  training: a random 20 s crop for CNN14 and, inside it, a random 10 s crop for HTSAT; evaluation:
  the first 30 s (zero-padded) for CNN14, HTSAT averaged over the 10 s tiles that hold audio;
  no augmentation (the paper names none; `--set spec_augment=true` adds SpecAugment as PANNs and
  HTSAT use it when fine-tuned); HTSAT's input image is 1024 frames, so a 10 s crop (1379 frames)
  is resampled in time to fit;
- text: RoBERTa (roberta-base), first-token embedding (msclap's), max 77 tokens -> projection to 1024;
- projections: linear (`--set projection=msclap` for msclap's Linear-GELU-Linear-LayerNorm block);
- loss: symmetric cross-entropy with a learned temperature (`baselines.losses.clap_cross_entropy`),
  initialised at tau = 0.007 as the paper says (msclap's code uses 0.07: `--set temperature_init=0.07`).
  Reading: "tau initialised to 0.007" is a logit scale of 1/0.007 = 142.9. After each step the scale
  is clamped to at most max(`max_logit_scale`, its initial value); `max_logit_scale` is CLIP's cap
  of 100 by default, so with the paper's initialisation the scale can fall but never rise above
  142.9 (`--set max_logit_scale=1000` lets it rise);
- Adam 1e-4, x0.1 every 20 epochs, 45 epochs, batch 128, an epoch = every (audio, caption) pair
  once, the audio repeated for each of its captions (the paper's 65,002 pairs; `--set
  epoch_unit=clips`: every file once with one caption drawn at random, as CLAP trainers do);
  trained on Clotho development + validation (4,884 files), AudioCaps train and the 4,348
  WavText5K rows with a description (captions "{title}. {description}") in the paper: pass the
  tasks (folders from `larb data export`) with repeated `--train-task`.

Text-to-audio and audio-to-text rankings: `baselines.ensemble.run_models` on either kind of task.
`--set size=tiny` is a narrow CNN14, a test-sized HTSAT and `tiny-roberta`, all random (CPU tests).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from baselines.audio.clips import ClipStore, synthetic_tones
from baselines.audio.tiles import tile_mean
from baselines.config import EpochUnit, Optimizer, Schedule, Size
from baselines.encoders.audio_frontend import LogmelFilterBank, Spectrogram
from baselines.encoders.htsat import (
    CLAP_CHECKPOINT_URL,
    HTSAT_AUDIOSET_RELEASE,
    HTSAT_TEST,
    HTSAT_TINY,
    HtsatEncoder,
    htsat_parameter_count,
    load_htsat,
)
from baselines.encoders.text_towers import TextPooling, TextTower, build_text_tower, text_tower_spec, tokenize
from baselines.losses import clap_cross_entropy, same_audio_mask
from baselines.models.end_to_end import EndToEndHead, EndToEndSettings, EndToEndSystem, fixed_randomness
from baselines.models.panns_sbert import ENCODERS, PannsBackbone, panns_tagger
from baselines.spec import BaselineSpec, PaperSetting, ParameterCounts, SyntheticSystem
from baselines.task_features import TaskFeatures
from benchmark.errors import LarbError

NAME = "clap-cnn14-htsat"
SAMPLE_RATE = 44_100
MEL = {"n_fft": 1024, "hop": 320, "n_mels": 64, "fmin": 50.0, "fmax": 8_000.0}


class LogMel(nn.Module):
    """The paper's front end: (batch, samples) at 44.1 kHz -> log-mel (batch, 1, frames, 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.spectrogram = Spectrogram(MEL["n_fft"], MEL["hop"])
        self.mel = LogmelFilterBank(SAMPLE_RATE, MEL["n_fft"], MEL["n_mels"], MEL["fmin"], MEL["fmax"])

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        with torch.autocast(waves.device.type, enabled=False):  # power spectra overflow float16
            return self.mel(self.spectrogram(waves.float()))


class MsclapProjection(nn.Module):
    """msclap's `Projection`: LayerNorm(e1 + Dropout(Linear(GELU(e1)))), e1 = Linear(x), no biases."""

    def __init__(self, d_in: int, d_out: int, p: float = 0.5) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = nn.LayerNorm(d_out)
        self.drop = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedded = self.linear1(x)
        return self.layer_norm(embedded + self.drop(self.linear2(nn.functional.gelu(embedded))))


Projection = Literal["linear", "msclap"]
HtsatWeights = Literal["audioset", "laion-clap"]


def projection(kind: str, d_in: int, d_out: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(d_in, d_out)
    if kind == "msclap":
        return MsclapProjection(d_in, d_out)
    raise LarbError(f"projection={kind!r} is not linear or msclap.", fix="use --set projection=linear.")


class ClapHead(EndToEndHead):
    """CNN14 || HTSAT -> projection; RoBERTa -> projection; a learned logit scale for the loss."""

    def __init__(self, cnn14: PannsBackbone, htsat: HtsatEncoder, text: TextTower, config: Mapping[str, Any],
                 clips: ClipStore | None = None) -> None:
        seconds = {k: round(config[k] * SAMPLE_RATE) for k in ("cnn14_seconds", "htsat_seconds", "eval_seconds")}
        super().__init__(clips, seconds["cnn14_seconds"], seconds["eval_seconds"], config["eval_batch_size"],
                         config["seed"])
        self.htsat_samples = seconds["htsat_seconds"]
        self.dim = config["embed_dim"]
        self.logmel = LogMel()
        self.cnn14 = cnn14
        self.htsat = htsat
        self.text = text
        self.audio_projection = projection(config["projection"], cnn14.dim + htsat.dim, self.dim)
        self.text_projection = projection(config["projection"], text.dim, self.dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config["temperature_init"])))
        self.max_logit_scale = max(math.log(config["max_logit_scale"]), math.log(1.0 / config["temperature_init"]))

    def _htsat_crop(self, waves: torch.Tensor, fractions: torch.Tensor | None) -> torch.Tensor:
        """A random `htsat_seconds` crop of each example's real audio (training)."""
        crop = self.htsat_samples
        if waves.shape[1] <= crop:
            return nn.functional.pad(waves, (0, crop - waves.shape[1]))
        real = (fractions * waves.shape[1]).long() if fractions is not None else torch.full(
            (len(waves),), waves.shape[1], device=waves.device)
        room = (real - crop).clamp(min=0).clamp(max=waves.shape[1] - crop)
        starts = (torch.rand(len(waves), device=waves.device) * (room + 1).float()).long()
        index = starts[:, None] + torch.arange(crop, device=waves.device)[None, :]
        return waves.gather(1, index)

    def encode_audio(self, waves: torch.Tensor, fractions: torch.Tensor | None) -> torch.Tensor:
        cnn = self.cnn14(waves)
        if self.training:
            hts = self.htsat(self.logmel(self._htsat_crop(waves, fractions)))
        else:
            hts = tile_mean(lambda tiles: self.htsat(self.logmel(tiles)), waves, self.htsat_samples, fractions)
        return self.audio_projection(torch.cat([cnn, hts], dim=-1))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        return self.text_projection(self.text(text))


def _validate(config: Mapping[str, Any]) -> None:
    if config["size"] not in ("full", "tiny"):
        raise LarbError(f"size={config['size']!r} is not full or tiny.", fix="use --set size=full.")
    text_tower_spec(config["text_encoder"])
    if not 0 < config["temperature_init"] < 1:
        raise LarbError(f"temperature_init={config['temperature_init']} is not in (0, 1).", fix="use 0.007.")


def _htsat(config: Mapping[str, Any], pretrained: bool) -> HtsatEncoder:
    htsat_config = HTSAT_TEST if config["size"] == "tiny" else HTSAT_TINY
    source = config["htsat_checkpoint"]
    if not pretrained or source == "none" or (source == "" and config["size"] == "tiny"):
        return HtsatEncoder(htsat_config, config["spec_augment"])
    if source == "":
        release = HTSAT_AUDIOSET_RELEASE if config["htsat_weights"] == "audioset" else CLAP_CHECKPOINT_URL
        raise LarbError(f"the HTSAT weights ({config['htsat_weights']} release) have no pinned checksum here, so "
                        "they are not downloaded.", fix=f"download {release} and pass --set htsat_checkpoint=PATH "
                                                        "(or htsat_checkpoint=none: random).")
    return load_htsat(source, htsat_config, config["spec_augment"], config["htsat_weights"])


def _cnn14(config: Mapping[str, Any], pretrained: bool) -> PannsBackbone:
    encoder = ENCODERS["cnn14"]
    source = config["cnn14_checkpoint"] if pretrained else "none"
    tagger = panns_tagger(encoder, config["size"], source)
    tagger.logmel_extractor = LogmelFilterBank(SAMPLE_RATE, MEL["n_fft"], MEL["n_mels"], MEL["fmin"], MEL["fmax"])
    return PannsBackbone(tagger, use_fc1=True, spec_augment=config["spec_augment"])


class Clap(EndToEndSystem):
    def __init__(self, config: Mapping[str, Any], head: ClapHead, tokenizer=None,
                 clips: ClipStore | None = None) -> None:
        self.config = config
        self.head = head
        self.tokenizer = tokenizer
        self.clips = clips

    def features(self, ground_truth, paths: Sequence[Path]) -> TaskFeatures:
        if self.tokenizer is None or self.clips is None:
            raise RuntimeError("this system was built without encoders (synthetic check only)")
        tokens = tokenize(self.tokenizer, ground_truth.query_texts, self.config["max_text_tokens"])
        return TaskFeatures(ground_truth, self.clips.register(paths), tokens)

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        sim = audio.float() @ text.float().T
        same_audio = same_audio_mask(audio_ids.tolist())
        return clap_cross_entropy(sim, logit_scale=self.head.logit_scale, same_audio=same_audio)

    def after_step(self, head: nn.Module) -> None:
        with torch.no_grad():
            head.logit_scale.clamp_(0.0, head.max_logit_scale)


def _build_head(config: Mapping[str, Any], pretrained: bool, clips: ClipStore | None):
    torch.manual_seed(config["seed"])
    cnn14, htsat = _cnn14(config, pretrained), _htsat(config, pretrained)
    text, tokenizer = build_text_tower(config["text_encoder"], config["text_checkpoint"], pretrained=pretrained,
                                       pooling=config["text_pooling"])
    return ClapHead(cnn14, htsat, text, config, clips), tokenizer


def build(config: Mapping[str, Any], device: str, progress: bool = True) -> Clap:
    _validate(config)
    clips = ClipStore(SAMPLE_RATE)
    head, tokenizer = _build_head(config, True, clips)
    return Clap(config, head, tokenizer, clips)


@functools.cache
def _counts(size: str, text_encoder: str, projection_kind: str, embed_dim: int) -> ParameterCounts:
    with torch.device("meta"):
        cnn14 = PannsBackbone(ENCODERS["cnn14"].architecture(**(ENCODERS["cnn14"].tiny if size == "tiny" else {})),
                              use_fc1=True, spec_augment=False)
        cnn = sum(p.numel() for p in cnn14.parameters())
    htsat = htsat_parameter_count(HTSAT_TEST if size == "tiny" else HTSAT_TINY)
    text = text_tower_spec(text_encoder)
    with torch.device("meta"):
        audio_projection = projection(projection_kind, cnn14.dim + (HTSAT_TEST if size == "tiny" else HTSAT_TINY).dim,
                                      embed_dim)
        text_projection = projection(projection_kind, text.dim, embed_dim)
    heads = sum(p.numel() for m in (audio_projection, text_projection) for p in m.parameters())
    return ParameterCounts({}, cnn + htsat + text.parameter_count() + heads + 1)  # + the logit scale


def parameter_counts(config: Mapping[str, Any]) -> ParameterCounts:
    """Everything is trained: CNN14 (no classifier), HTSAT (no classifier), RoBERTa (no pooler),
    both projections and the logit scale."""
    _validate(config)
    return _counts(config["size"], config["text_encoder"], config["projection"], config["embed_dim"])


def required_assets(config: Mapping[str, Any]) -> list[str]:
    """Pinned assets only: the HTSAT (LAION-CLAP) and RoBERTa files have no pinned checksum here."""
    _validate(config)
    names = [ENCODERS["cnn14"].asset.name] if config["size"] == "full" and config["cnn14_checkpoint"] == "" else []
    text = text_tower_spec(config["text_encoder"])
    return names + ([text.asset] if text.asset and not config["text_checkpoint"] else [])


def synthetic_system(config: Mapping[str, Any], batch: int = 8) -> SyntheticSystem:
    """The configured model with random weights (and fixed random draws per forward pass) on 4 s
    synthetic clips (a tone each; rows that share an audio id share the clip) and random token ids."""
    _validate(config)
    generator = torch.Generator().manual_seed(config["seed"])
    head, _ = _build_head(config, False, None)
    fixed_randomness(head, config["seed"])
    vocab = text_tower_spec(config["text_encoder"]).architecture["vocab_size"]
    tokens = torch.randint(3, vocab, (batch, 12), generator=generator)
    tokens[:, 0], tokens[1::2, 8:] = 0, 1  # <s> first; every other caption padded
    ids = torch.arange(batch) // 2
    return SyntheticSystem(Clap(config, head), synthetic_tones(ids, 4 * SAMPLE_RATE, SAMPLE_RATE, generator),
                           tokens, ids, config["embed_dim"])


def system_name(config: Mapping[str, Any]) -> str:
    size = " (tiny, random init)" if config["size"] == "tiny" else ""
    return f"CLAP CNN14 + HTSAT-tiny + {config['text_encoder']}{size}"


@dataclass(frozen=True)
class ClapSettings(EndToEndSettings):
    """The settings of CLAP CNN14 + HTSAT (Deshmukh et al.)."""

    size: Size = "full"
    text_encoder: str = "roberta-base"
    text_checkpoint: str = ""
    text_pooling: TextPooling = "first"
    cnn14_checkpoint: str = ""
    htsat_checkpoint: str = ""
    htsat_weights: HtsatWeights = "audioset"
    projection: Projection = "linear"
    embed_dim: int = 1024
    temperature_init: float = 0.007
    max_logit_scale: float = 100.0  # the cap is max(this, 1 / temperature_init): see the module docstring
    spec_augment: bool = False
    cnn14_seconds: float = 20.0
    htsat_seconds: float = 10.0
    eval_seconds: float = 30.0
    max_text_tokens: int = 77
    lr: float = 1e-4
    optimizer: Optimizer = "adam"
    schedule: Schedule = "step"
    lr_step_epochs: int = 20
    lr_factor: float = 0.1
    epochs: int = 45
    batch_size: int = 128
    epoch_unit: EpochUnit = "pairs"
    eval_batch_size: int = 16


DEFAULTS = ClapSettings()
DESHMUKH = "Deshmukh et al. 2022"
PAPER_SETTINGS = (
    PaperSetting("f(a) = Concat(CNN14(a), HTSAT(a)); 44.1 kHz log-mel, hop 320, window 1024, 64 bins, 50-8000 Hz",
                 f"{DESHMUKH}, model", note="fixed in the code"),
    PaperSetting("HTSAT (AudioSet-trained)", f"{DESHMUKH}, model", "htsat_weights", "audioset",
                 note="the official HTS-AT release, passed by path (no pinned checksum here)"),
    PaperSetting("random truncation to 20 s for CNN14", f"{DESHMUKH}, model", "cnn14_seconds", 20.0),
    PaperSetting("random truncation to 10 s for HTSAT", f"{DESHMUKH}, model", "htsat_seconds", 10.0),
    PaperSetting("RoBERTa", f"{DESHMUKH}, model", "text_encoder", "roberta-base"),
    PaperSetting("linear projections", f"{DESHMUKH}, model", "projection", "linear"),
    PaperSetting("joint dimension d = 1024", f"{DESHMUKH}, model", "embed_dim", 1024),
    PaperSetting("tau initialised to 0.007", f"{DESHMUKH}, model", "temperature_init", 0.007,
                 note="read as a logit scale of 1/0.007; see the module docstring"),
    PaperSetting("no cap on the learned temperature is stated", f"{DESHMUKH}, model", "max_logit_scale",
                 note="CLIP's cap of 100, raised to the initial 142.9"),
    PaperSetting("audio repeated for each of its captions: every (audio, caption) pair one item",
                 f"{DESHMUKH}, training", "epoch_unit", "pairs"),
    PaperSetting("no augmentation is mentioned", f"{DESHMUKH}, training", "spec_augment", False),
    PaperSetting("Adam", f"{DESHMUKH}, training", "optimizer", "adam"),
    PaperSetting("learning rate 1e-4", f"{DESHMUKH}, training", "lr", 1e-4),
    PaperSetting("x0.1 every 20 epochs", f"{DESHMUKH}, training", "lr_step_epochs", 20),
    PaperSetting("decay factor 0.1", f"{DESHMUKH}, training", "lr_factor", 0.1),
    PaperSetting("45 epochs", f"{DESHMUKH}, training", "epochs", 45),
    PaperSetting("batch 128 on 8 GPUs", f"{DESHMUKH}, training", "batch_size", 128,
                 note="the global batch under a launcher"),
    PaperSetting("45 epochs on all the training data; no model selection is described", f"{DESHMUKH}, training",
                 note="deviation: the loop selects best.pt on a held-out 10 % (val_fraction); last.pt is the "
                      "45th epoch"),
    PaperSetting("Clotho development + validation, AudioCaps train, the 4,348 described WavText5K rows",
                 f"{DESHMUKH}, training", note="larb baseline recipe clap-cnn14-htsat; WavText5K builds --option "
                                            "rows=described by default"),
)
MODEL_KEYS = ("size", "text_encoder", "text_pooling", "projection", "embed_dim", "htsat_weights")


def inherited_training_data(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """Training data that comes with the initial weights: LAION-CLAP's audio tower was trained on
    LAION-630k (AudioCaps and Clotho training data among it); the AudioSet HTS-AT and the PANNs
    weights saw AudioSet only, which no task here is built from."""
    return [{"dataset": "laion-630k", "split": "train"}] if config["htsat_weights"] == "laion-clap" else []

SPEC = BaselineSpec(
    name=NAME,
    paper="Deshmukh, Elizalde & Wang, Audio Retrieval with WavText5K and CLAP Training, Interspeech 2023 "
          "(arXiv 2209.14275)",
    links={"paper": "https://arxiv.org/abs/2209.14275", "code": "https://github.com/microsoft/WavText5K"},
    audio_encoder="concat(PANNs CNN14 2048-d, HTSAT-tiny 768-d from the AudioSet HTS-AT), fine-tuned; log-mel "
                  "64 bands, hop 320, window 1024, 50-8000 Hz at 44.1 kHz; random 20 s / 10 s crops",
    text_encoder="RoBERTa base, fine-tuned, first token",
    head="linear projections to 1024 (audio 2816 -> 1024, text 768 -> 1024), l2-normalised",
    loss="symmetric cross-entropy, learned temperature initialised at 0.007 (baselines.losses.clap_cross_entropy)",
    training_data="Clotho development + validation, AudioCaps train, WavText5K (paper); any text-to-audio task "
                  "here",
    defaults=DEFAULTS,
    model_keys=MODEL_KEYS,
    paper_settings=PAPER_SETTINGS,
    upgrade_saved=lambda saved: {"htsat_weights": "laion-clap", **saved},  # the only HTSAT weights read before
    build=build,
    parameter_counts=parameter_counts,
    required_assets=required_assets,
    synthetic_system=synthetic_system,
    system_name=system_name,
    inherited_training_data=inherited_training_data,
    local_files={"htsat_checkpoint": ("HTSAT_AudioSet_Saved_1.ckpt", HTSAT_AUDIOSET_RELEASE)},
)
