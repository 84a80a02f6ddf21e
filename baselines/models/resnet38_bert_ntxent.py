"""ResNet38 + BERT with NT-Xent (Mei et al. 2022, "On metric learning for audio-text cross-modal
retrieval"), as Tourbabin and Ben-Hur's Stanford CS224N report uses it (the fifth seed paper).

- audio: PANNs ResNet38 (Zenodo weights) without its classifier, log-mel with a 1024-point Hann
  window, hop 320, 64 mel bins at 32 kHz; the last block averaged over frequency and **max-pooled**
  over time, as the report says (`--set pooling=max+mean`: Mei et al.'s code, max + mean); clips
  cut or zero-padded to 10 s (AudioCaps);
- text: BERT base (uncased), the last hidden state of `[CLS]` (the first token);
- heads: the same two-layer MLP on each side, Linear(d -> 2D) -> ReLU -> Linear(2D -> D), as
  Mei et al.'s `ASE_model`; both l2-normalised, cosine similarity; D = `joint_dim`, 1024 by
  default (Mei et al.; 512 is the report's best);
- loss: NT-Xent as the report's Eq. 2, -(1/B) * (sum_i log softmax_j(s_ij / tau)[i] + sum_i
  log softmax_j(s_ji / tau)[i]) with tau = 0.07: the diagonal is the only positive, and the two
  directions are summed (twice `baselines.losses.ntxent`, which averages them);
- Adam 1e-4, x0.1 every 20 epochs, 50 epochs; Exp 1.a (the default): both encoders frozen, batch
  64; Exp 1.b (`--set freeze_encoders=false --set batch_size=32`): fine-tuned; the checkpoint is
  selected by the sum of the validation recalls R@1 + R@5 + R@10 (`selection=recall-sum`);
- `--set alpha=A` adds the report's non-uniformity penalty: loss = NT-Xent - A (h_audio + h_text),
  h the soft voxel entropy of the batch on 8 dimensions drawn per batch (`baselines.voxel_penalty`,
  whose network LARB trains on first use); 0 by default (the report's Table 4 tries 0.10-1.00).

Frozen as the other PANNs baselines freeze: no gradient, the encoders stay in the training loop.
BERT is read from the Hugging Face Hub by name (no pinned checksum could be verified offline; the
run records what it loaded), as the RoBERTa towers are. `--set size=tiny` is a narrow ResNet38
with random weights; `--set text_encoder=all-MiniLM-L6-v2` a small pinned BERT (CPU tests).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from baselines import voxel_penalty
from baselines.audio.clips import ClipStore, synthetic_tones
from baselines.config import Schedule, Selection, Size
from baselines.encoders import panns
from baselines.encoders.text_towers import TextPooling, TextTower, build_text_tower, text_tower_spec, tokenize
from baselines.losses import ntxent
from baselines.models.end_to_end import EndToEndHead, EndToEndSettings, EndToEndSystem, fixed_randomness
from baselines.models.panns_sbert import ENCODERS, PannsBackbone, panns_tagger
from baselines.spec import BaselineSpec, PaperSetting, ParameterCounts, SyntheticSystem
from baselines.task_features import TaskFeatures
from benchmark.errors import LarbError

NAME = "resnet38-bert-ntxent"
SAMPLE_RATE = panns.SAMPLE_RATE
ENCODER = ENCODERS["resnet38"]
Pooling = Literal["max", "max+mean"]


def mlp(d_in: int, joint_dim: int) -> nn.Sequential:
    """Mei et al.'s projection: Linear(d -> 2D) -> ReLU -> Linear(2D -> D)."""
    return nn.Sequential(nn.Linear(d_in, 2 * joint_dim), nn.ReLU(), nn.Linear(2 * joint_dim, joint_dim))


class Resnet38BertHead(EndToEndHead):
    """ResNet38 -> MLP; BERT [CLS] -> MLP; encoders frozen (no gradient) or fine-tuned."""

    def __init__(self, backbone: PannsBackbone, text: TextTower, config: Mapping[str, Any],
                 clips: ClipStore | None = None) -> None:
        samples = round(config["clip_seconds"] * SAMPLE_RATE)
        super().__init__(clips, samples, samples, config["eval_batch_size"], config["seed"])
        self.dim = config["joint_dim"]
        self.backbone = backbone
        self.text = text
        self.audio_linear = mlp(backbone.dim, self.dim)
        self.text_linear = mlp(text.dim, self.dim)
        if config["freeze_encoders"]:
            backbone.requires_grad_(False)
            text.requires_grad_(False)

    def encode_audio(self, waves: torch.Tensor, fractions: torch.Tensor | None) -> torch.Tensor:
        return self.audio_linear(self.backbone(waves))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        return self.text_linear(self.text(text))


def eq2_ntxent(sim: torch.Tensor, temperature: float) -> torch.Tensor:
    """The report's Eq. 2: both directions' diagonal log-softmax, summed and divided by the batch."""
    return 2 * ntxent(sim, temperature=temperature)


class Resnet38Bert(EndToEndSystem):
    def __init__(self, config: Mapping[str, Any], head: Resnet38BertHead, tokenizer=None,
                 clips: ClipStore | None = None) -> None:
        self.config = config
        self.head = head
        self.tokenizer = tokenizer
        self.clips = clips
        self.voxel_network: nn.Module | None = None  # loaded on the first penalised batch

    def features(self, ground_truth, paths: Sequence[Path]) -> TaskFeatures:
        if self.tokenizer is None or self.clips is None:
            raise RuntimeError("this system was built without encoders (synthetic check only)")
        tokens = tokenize(self.tokenizer, ground_truth.query_texts, self.config["max_text_tokens"])
        return TaskFeatures(ground_truth, self.clips.register(paths), tokens)

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        loss = eq2_ntxent(audio.float() @ text.float().T, self.config["temperature"])
        if self.config["alpha"] == 0:
            return loss
        if self.voxel_network is None:
            self.voxel_network = voxel_penalty.load_network().requires_grad_(False)
        net = self.voxel_network.to(audio.device)
        return loss + self.config["alpha"] * voxel_penalty.penalty(audio.float(), text.float(), net, generator)


def _validate(config: Mapping[str, Any]) -> None:
    if config["size"] not in ("full", "tiny"):
        raise LarbError(f"size={config['size']!r} is not full or tiny.", fix="use --set size=full.")
    text_tower_spec(config["text_encoder"])


def _backbone(config: Mapping[str, Any], pretrained: bool) -> PannsBackbone:
    source = config["audio_checkpoint"] if pretrained else "none"
    return PannsBackbone(panns_tagger(ENCODER, config["size"], source), use_fc1=False,
                         spec_augment=config["spec_augment"], pooling=config["pooling"])


def _build_head(config: Mapping[str, Any], pretrained: bool, clips: ClipStore | None):
    torch.manual_seed(config["seed"])
    backbone = _backbone(config, pretrained)
    text, tokenizer = build_text_tower(config["text_encoder"], config["text_checkpoint"], pretrained=pretrained,
                                       pooling=config["text_pooling"])
    return Resnet38BertHead(backbone, text, config, clips), tokenizer


def build(config: Mapping[str, Any], device: str, progress: bool = True) -> Resnet38Bert:
    _validate(config)
    clips = ClipStore(SAMPLE_RATE)
    head, tokenizer = _build_head(config, True, clips)
    return Resnet38Bert(config, head, tokenizer, clips)


@functools.cache
def _counts(size: str, text_encoder: str, joint_dim: int, frozen: bool) -> ParameterCounts:
    with torch.device("meta"):
        backbone = PannsBackbone(ENCODER.architecture(**(ENCODER.tiny if size == "tiny" else {})), use_fc1=False,
                                 spec_augment=False)
        audio = sum(p.numel() for p in backbone.parameters())
        text = text_tower_spec(text_encoder)
        heads = sum(p.numel() for m in (mlp(backbone.dim, joint_dim), mlp(text.dim, joint_dim))
                    for p in m.parameters())
    if frozen:
        return ParameterCounts({f"audio:resnet38-{size}": audio, f"text:{text_encoder}": text.parameter_count()},
                               heads)
    return ParameterCounts({}, audio + text.parameter_count() + heads)


def parameter_counts(config: Mapping[str, Any]) -> ParameterCounts:
    """ResNet38 without fc1 and classifier, BERT without pooler, the two MLPs; frozen encoders are
    counted apart from the trained heads."""
    _validate(config)
    return _counts(config["size"], config["text_encoder"], config["joint_dim"], config["freeze_encoders"])


def required_assets(config: Mapping[str, Any]) -> list[str]:
    """Pinned assets only (BERT base comes from the Hub, unpinned)."""
    _validate(config)
    names = [ENCODER.asset.name] if config["size"] == "full" and config["audio_checkpoint"] == "" else []
    text = text_tower_spec(config["text_encoder"])
    return names + ([text.asset] if text.asset and not config["text_checkpoint"] else [])


def synthetic_system(config: Mapping[str, Any], batch: int = 8) -> SyntheticSystem:
    """Random weights (fixed random draws per pass) on 1 s tones and random token ids."""
    _validate(config)
    generator = torch.Generator().manual_seed(config["seed"])
    head, _ = _build_head(config, False, None)
    fixed_randomness(head, config["seed"])
    spec = text_tower_spec(config["text_encoder"])
    tokens = torch.randint(3, spec.architecture["vocab_size"], (batch, 12), generator=generator)
    tokens[1::2, 8:] = spec.pad_token_id  # every other caption padded
    ids = torch.arange(batch) // 2
    return SyntheticSystem(Resnet38Bert(config, head), synthetic_tones(ids, SAMPLE_RATE, SAMPLE_RATE, generator),
                           tokens, ids, config["joint_dim"])


def system_name(config: Mapping[str, Any]) -> str:
    size = " (tiny, random init)" if config["size"] == "tiny" else ""
    mode = "frozen encoders" if config["freeze_encoders"] else "fine-tuned encoders"
    return f"ResNet38{size} + {config['text_encoder']} (NT-Xent), {mode}, joint dim {config['joint_dim']}"


@dataclass(frozen=True)
class Resnet38BertSettings(EndToEndSettings):
    """The settings of ResNet38 + BERT NT-Xent (Mei et al. 2022; Tourbabin and Ben-Hur)."""

    size: Size = "full"
    text_encoder: str = "bert-base-uncased"
    text_checkpoint: str = ""
    text_pooling: TextPooling = "first"
    audio_checkpoint: str = ""
    pooling: Pooling = "max"
    spec_augment: bool = False
    freeze_encoders: bool = True
    clip_seconds: float = 10.0
    max_text_tokens: int = 32
    joint_dim: int = 1024
    temperature: float = 0.07
    alpha: float = 0.0
    schedule: Schedule = "step"  # lr 1e-4, Adam, x0.1 every 20 epochs: EndToEndSettings' lr, optimizer and step
    lr_factor: float = 0.1
    epochs: int = 50
    batch_size: int = 64
    selection: Selection = "recall-sum"


DEFAULTS = Resnet38BertSettings()
MODEL_KEYS = ("size", "text_encoder", "text_pooling", "pooling", "joint_dim", "freeze_encoders")

REPORT = "Tourbabin & Ben-Hur (CS224N)"
PAPER_SETTINGS = (
    PaperSetting("PANNs ResNet38, log-mel with a 1024-point Hann window, hop 320, 64 mel bins", f"{REPORT}, model",
                 note="fixed in the code (32 kHz)"),
    PaperSetting("max pooling", f"{REPORT}, model", "pooling", "max", note="Mei et al.'s code: max + mean"),
    PaperSetting("BERT with a <CLS> token", f"{REPORT}, model", "text_encoder", "bert-base-uncased",
                 note="BERT base uncased from the Hub"),
    PaperSetting("the <CLS> output", f"{REPORT}, model", "text_pooling", "first"),
    PaperSetting("two linear layers with ReLU between, on each side", f"{REPORT}, model", "joint_dim",
                 note="Linear(d -> 2D) -> ReLU -> Linear(2D -> D), as Mei et al.'s ASE_model"),
    PaperSetting("joint dimension 1024 (Mei et al.); 128-2048 swept, 512 best", f"{REPORT}, Table 1", "joint_dim",
                 1024),
    PaperSetting("NT-Xent, Eq. 2, tau = 0.07", f"{REPORT}, Eq. 2", "temperature", 0.07),
    PaperSetting("Exp 1.a: frozen pre-trained encoders", f"{REPORT}, Exp 1.a", "freeze_encoders", True),
    PaperSetting("batch 64 with frozen encoders (32 fine-tuned, Exp 1.b)", f"{REPORT}, Exp 1.a", "batch_size", 64),
    PaperSetting("Adam", f"{REPORT}, Exp 1.a", "optimizer", "adam"),
    PaperSetting("learning rate 1e-4", f"{REPORT}, Exp 1.a", "lr", 1e-4),
    PaperSetting("x0.1 every 20 epochs", f"{REPORT}, Exp 1.a", "lr_step_epochs", 20),
    PaperSetting("decay factor 0.1", f"{REPORT}, Exp 1.a", "lr_factor", 0.1),
    PaperSetting("50 epochs", f"{REPORT}, Exp 1.a", "epochs", 50),
    PaperSetting("best model by the sum of recalls on validation", f"{REPORT}, Exp 1.a", "selection", "recall-sum"),
    PaperSetting("AudioCaps clips of 10 s", f"{REPORT}, data", "clip_seconds", 10.0),
    PaperSetting("non-uniformity penalty: loss = NT-Xent - alpha (h_audio + h_text), alpha 0 in the main runs",
                 f"{REPORT}, Table 4", "alpha", 0.0, note="the voxel network is trained by LARB on first use"),
)

SPEC = BaselineSpec(
    name=NAME,
    paper="Tourbabin & Ben-Hur, Audio-text cross-modal retrieval, Stanford CS224N project report; after Mei et al., "
          "On metric learning for audio-text cross-modal retrieval, Interspeech 2022",
    links={"code": "https://github.com/XinhaoMei/audio-text_retrieval"},
    audio_encoder="PANNs ResNet38 (no classifier), max-pooled over time; log-mel 64 bands, hop 320, window 1024, "
                  "32 kHz; frozen (Exp 1.a) or fine-tuned",
    text_encoder="BERT base uncased, [CLS]; frozen (Exp 1.a) or fine-tuned",
    head="MLP d -> 2D -> D (ReLU) on each side, l2-normalised, cosine similarity; D = joint_dim (1024)",
    loss="NT-Xent (Eq. 2, tau 0.07, both directions summed)",
    training_data="AudioCaps train (the report: 49,274 clips); any text-to-audio task here",
    defaults=DEFAULTS,
    model_keys=MODEL_KEYS,
    build=build,
    parameter_counts=parameter_counts,
    required_assets=required_assets,
    synthetic_system=synthetic_system,
    system_name=system_name,
    paper_settings=PAPER_SETTINGS,
)
