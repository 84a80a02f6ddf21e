"""Distilled PaSST + RoBERTa (Primus, Schmid & Widmer, DCASE Workshop 2024, "Estimated Audio-Caption
Correspondences Improve Language-Based Audio Retrieval"), after OptimusPrimus/salsa @983b450.

- audio: PaSST-S, stride 16 (`passt_s_p16_s16_128_ap468`), structured Patchout 15 time / 2 frequency
  columns while training; clips fixed to 30 s at 32 kHz (zero-padded, or a random crop when
  longer; evaluation takes the start), cut into 10 s tiles run as one batch, the tiles' 768-d
  embeddings averaged over those that hold real audio (salsa's `WindowedPrediction` + mask);
- text: RoBERTa large, captions lower-cased without punctuation, max 32 tokens, first token,
  dropout 0.2; projections Linear(768 -> 1024) and Linear(1024 -> 1024), l2-normalised;
  similarities / tau with tau = 0.05 fixed;
- stage 1 (`stage=1`): NT-Xent in both directions where every caption of the same audio in the
  batch is a positive (`baselines.losses.ntxent`);
- correspondence estimation (`stage=2`, `distill_from=a.pt;b.pt`): every member (a stage-1
  checkpoint of this or of any registered baseline) embeds the training set once; a batch's
  targets are the mean of the members' cosine similarity matrices / tau, softmaxed over captions
  and over audio (`baselines.losses.distillation`); loss = loss_weight x stage-1 loss +
  distill_weight x distillation (0 and 1 by default). Self-distillation: one member, the model's
  own stage-1 checkpoint, which also initialises the student (`init_from`, default: the first
  member; `none`: the pretrained encoders);
- AdamW (0.9, 0.999, eps 1e-8, no weight decay), lr 2e-5, linear warm-up over 1 epoch then a
  cosine decay to 1e-7 at epoch 15 (moved every step), 20 epochs, batch 64 (last partial batch
  dropped), mixed precision (fp16) on a GPU.

Stage 2 needs the end-to-end trainer (`system.fit`), which sees which captions are in a batch.
`--set size=tiny` is a 2-layer, 32-wide PaSST with random weights (CPU tests).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from baselines import checkpoint
from baselines.audio.clips import ClipStore, synthetic_tones
from baselines.audio.tiles import tile_mean
from baselines.config import Optimizer, Schedule, Size
from baselines.encoders.passt import VARIANT_URLS, VARIANTS, Passt, PasstConfig, load_passt
from baselines.encoders.text_towers import POOLINGS, TextPooling, TextTower, build_text_tower, text_tower_spec, tokenize
from baselines.losses import distillation, ntxent, same_audio_mask
from baselines.models.end_to_end import EndToEndHead, EndToEndSettings, EndToEndSystem, fixed_randomness
from baselines.spec import BaselineSpec, PaperSetting, ParameterCounts, SyntheticSystem
from baselines.task_features import TaskFeatures
from benchmark.errors import LarbError

NAME = "passt-distilled"
SAMPLE_RATE = 32_000
VARIANT = "passt_s_p16_s16_128_ap468"
# A test-sized PaSST: 1 s windows (6 x 8 patches of 16 x 16), 2 blocks of width 32.
PASST_TEST = PasstConfig(embed_dim=32, depth=2, num_heads=2, fstride=16, tstride=16, input_tdim=100,
                         window_seconds=1.0, hop_seconds=1.0)


class PasstTiles(nn.Module):
    """PaSST as a tile encoder: waveforms (tiles, samples) -> mean of the class and distillation
    tokens (tiles, 768). The AudioSet heads are removed (the embedding does not use them)."""

    def __init__(self, passt: Passt) -> None:
        super().__init__()
        del passt.head, passt.head_dist
        self.passt = passt

    @property
    def dim(self) -> int:
        return self.passt.embedding_dim

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        p = self.passt
        if tiles.shape[-1] < p.min_samples:
            tiles = nn.functional.pad(tiles, (0, p.min_samples - tiles.shape[-1]))
        with torch.autocast(tiles.device.type, enabled=False):  # power spectra overflow float16
            mel = p.mel(tiles.float())
        return p.forward_features(mel.unsqueeze(1))


class DistilledHead(EndToEndHead):
    def __init__(self, passt: PasstTiles, text: TextTower, config: Mapping[str, Any], clips: ClipStore | None = None
                 ) -> None:
        samples = round(config["clip_seconds"] * SAMPLE_RATE)
        super().__init__(clips, samples, samples, config["eval_batch_size"], config["seed"])
        # a tile never exceeds the model's window (10 s; 1 s for the test-sized model)
        self.tile = min(round(config["tile_seconds"] * SAMPLE_RATE), passt.passt.window_samples)
        self.dim = config["embed_dim"]
        self.passt = passt
        self.text = text
        self.audio_projection = nn.Linear(passt.dim, self.dim)
        self.text_projection = nn.Linear(text.dim, self.dim)

    def encode_audio(self, waves: torch.Tensor, fractions: torch.Tensor | None) -> torch.Tensor:
        return self.audio_projection(tile_mean(self.passt, waves, self.tile, fractions))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        return self.text_projection(self.text(text))


def _validate(config: Mapping[str, Any]) -> None:
    if config["size"] not in ("full", "tiny"):
        raise LarbError(f"size={config['size']!r} is not full or tiny.", fix="use --set size=full.")
    text_tower_spec(config["text_encoder"])
    if config["text_pooling"] not in POOLINGS:
        raise LarbError(f"text_pooling={config['text_pooling']!r} is not first or mean.", fix="use first.")
    if config["stage"] not in (1, 2):
        raise LarbError(f"stage={config['stage']} is not 1 or 2.", fix="use --set stage=1, then stage=2.")
    if config["stage"] == 2 and not members(config):
        raise LarbError("stage 2 needs the stage-1 models whose correspondences it learns.",
                        fix="add --set distill_from=runs/stage1/best.pt (several: separated by ';').")


def members(config: Mapping[str, Any]) -> list[Path]:
    return [Path(p.strip()) for p in config["distill_from"].split(";") if p.strip()]


def _passt(config: Mapping[str, Any], pretrained: bool) -> PasstTiles:
    patchout = {"s_patchout_t": config["s_patchout_t"], "s_patchout_f": config["s_patchout_f"]}
    source = config["audio_checkpoint"]
    if config["size"] == "tiny":
        if not pretrained or source in ("", "none"):
            return PasstTiles(Passt(replace(PASST_TEST, **patchout)))
        test_sized = {f.name: getattr(PASST_TEST, f.name) for f in dataclasses.fields(PASST_TEST)}
        return PasstTiles(load_passt(source, variant=VARIANT, **{**test_sized, **patchout}))
    if not pretrained or source == "none":
        return PasstTiles(Passt(replace(VARIANTS[VARIANT], **patchout)))
    if source == "":
        raise LarbError(f"the {VARIANT} weights have no pinned checksum here, so they are not downloaded.",
                        fix=f"download {VARIANT_URLS[VARIANT]} and pass --set audio_checkpoint=PATH "
                            "(or audio_checkpoint=none: random).")
    return PasstTiles(load_passt(source, variant=VARIANT, **patchout))


def _build_head(config: Mapping[str, Any], pretrained: bool, clips: ClipStore | None):
    torch.manual_seed(config["seed"])
    passt = _passt(config, pretrained)
    text, tokenizer = build_text_tower(config["text_encoder"], config["text_checkpoint"], config["text_dropout"],
                                       pretrained=pretrained, pooling=config["text_pooling"])
    return DistilledHead(passt, text, config, clips), tokenizer


class PasstDistilled(EndToEndSystem):
    def __init__(self, config: Mapping[str, Any], head: DistilledHead, tokenizer=None, clips: ClipStore | None = None,
                 device: str = "cpu", progress: bool = True) -> None:
        self.config = config
        self.head = head
        self.tokenizer = tokenizer
        self.clips = clips
        self.device = device
        self.progress = progress
        self.tasks: list = []
        self.teacher_audio: list[torch.Tensor] = []
        self.teacher_text: list[torch.Tensor] = []
        self.batch_teacher: torch.Tensor | None = None  # fixed targets of the synthetic (check) batch

    def task_features(self, task) -> TaskFeatures:
        self.tasks.append(task)
        return super().task_features(task)

    def features(self, ground_truth, paths: Sequence[Path]) -> TaskFeatures:
        if self.tokenizer is None or self.clips is None:
            raise RuntimeError("this system was built without encoders (synthetic check only)")
        tokens = tokenize(self.tokenizer, ground_truth.query_texts, self.config["max_text_tokens"],
                          strip_punctuation=True)
        return TaskFeatures(ground_truth, self.clips.register(paths), tokens)

    # -- losses ---------------------------------------------------------------------------------

    def _similarity(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return audio.float() @ text.float().T

    def _stage1(self, sim: torch.Tensor, audio_ids: torch.Tensor) -> torch.Tensor:
        return ntxent(sim, same_audio=same_audio_mask(audio_ids.tolist()), temperature=self.config["temperature"])

    def _stage2(self, sim: torch.Tensor, audio_ids: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        config = self.config
        loss = config["distill_weight"] * distillation(sim, teacher_similarities=teacher.to(sim.device),
                                                       temperature=config["temperature"])
        if config["loss_weight"]:
            loss = loss + config["loss_weight"] * self._stage1(sim, audio_ids)
        return loss

    def loss(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        sim = self._similarity(audio, text)
        if self.config["stage"] == 1:
            return self._stage1(sim, audio_ids)
        if self.batch_teacher is None:
            raise LarbError("stage 2 learns estimated correspondences of the captions in each batch, which only "
                            "the end-to-end trainer supplies.",
                            fix="train it with larb baseline train (the streamed loop).")
        return self._stage2(sim, audio_ids, self.batch_teacher)

    def batch_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        if self.config["stage"] == 1 or not self.teacher_audio:
            return self.loss(audio, text, clips, generator)
        teacher = torch.stack([a[clips.to(a.device)] @ t[queries.to(t.device)].T
                               for a, t in zip(self.teacher_audio, self.teacher_text, strict=True)])
        return self._stage2(self._similarity(audio, text), clips, teacher)

    def validation_loss(self, audio: torch.Tensor, text: torch.Tensor, clips: torch.Tensor, queries: torch.Tensor,
                        generator: torch.Generator | None) -> torch.Tensor:
        """Stage 1's loss: the members' correspondences are estimated for the training set only."""
        return self._stage1(self._similarity(audio, text), clips)

    # -- stage 2 --------------------------------------------------------------------------------

    def prepare_training(self, train: TaskFeatures, val: TaskFeatures, output: Path, progress: bool) -> None:
        super().prepare_training(train, val, output, progress)
        if self.config["stage"] != 2:
            return
        init = self.config["init_from"] or str(members(self.config)[0])
        if init != "none":
            payload = checkpoint.load(init, NAME)
            clash = [k for k in MODEL_KEYS if k not in ("stage", "distill_from")
                     and payload["config"].get(k) != self.config[k]]
            if clash:
                raise LarbError(f"init_from is a model with another {clash[0]} ({payload['config'].get(clash[0])!r}).",
                                path=init, fix="initialise from a stage-1 model of this configuration, or "
                                               "--set init_from=none.")
            self.head.load_state_dict(payload["head"])
        self.estimate_correspondences(train, progress)

    def estimate_correspondences(self, train: TaskFeatures, progress: bool = True) -> None:
        """Every member embeds the training set (eval mode); their l2-normalised embeddings give the
        cosine similarity of any (audio, caption) pair of a batch."""
        from baselines.inference import Member, embed, load_member

        task = self._task_of(train)
        self.teacher_audio, self.teacher_text = [], []
        for path in members(self.config):
            member = load_member(Member(checkpoint=path), (f"device={self.device}",), progress)
            features = member.system.task_features(task)
            captions, audio = embed(member.system.head, features, self.device)
            self.teacher_audio.append(torch.from_numpy(audio).to(self.device))
            self.teacher_text.append(torch.from_numpy(captions).to(self.device))
            del member

    def _task_of(self, features: TaskFeatures):
        """The task `features` were made from, narrowed to their ground truth (a holdout keeps a subset)."""
        corpus = set(features.ground_truth.corpus)
        for task in reversed(self.tasks):
            if corpus <= set(task.ground_truth.corpus):
                return dataclasses.replace(task, ground_truth=features.ground_truth)
        raise RuntimeError("the training features do not come from a task of this system")


def build(config: Mapping[str, Any], device: str, progress: bool = True) -> PasstDistilled:
    _validate(config)
    clips = ClipStore(SAMPLE_RATE)
    head, tokenizer = _build_head(config, True, clips)
    return PasstDistilled(config, head, tokenizer, clips, device, progress)


def parameter_counts(config: Mapping[str, Any]) -> ParameterCounts:
    """The student (PaSST without its AudioSet heads, the text encoder without pooler, two
    projections), all trained; the teachers are used in training only and not counted."""
    _validate(config)
    return _counts(config["size"], config["text_encoder"], config["embed_dim"])


@functools.cache
def _counts(size: str, text_encoder: str, embed_dim: int) -> ParameterCounts:
    text = text_tower_spec(text_encoder)
    with torch.device("meta"):
        passt = PasstTiles(Passt(PASST_TEST if size == "tiny" else VARIANTS[VARIANT]))
        projections = [nn.Linear(passt.dim, embed_dim), nn.Linear(text.dim, embed_dim)]
    count = sum(p.numel() for m in (passt, *projections) for p in m.parameters())
    return ParameterCounts({}, count + text.parameter_count())


def required_assets(config: Mapping[str, Any]) -> list[str]:
    """Pinned assets only (the stride-16 PaSST and RoBERTa files have no pinned checksum here)."""
    _validate(config)
    text = text_tower_spec(config["text_encoder"])
    return [text.asset] if text.asset and not config["text_checkpoint"] else []


def synthetic_system(config: Mapping[str, Any], batch: int = 8) -> SyntheticSystem:
    """Random weights (fixed random draws per pass), 2 s synthetic clips, random tokens; in stage 2 a
    fixed random 'teacher' similarity matrix stands in for the members."""
    _validate(config)
    generator = torch.Generator().manual_seed(config["seed"])
    head, _ = _build_head(config, False, None)
    fixed_randomness(head, config["seed"])
    vocab = text_tower_spec(config["text_encoder"]).architecture["vocab_size"]
    tokens = torch.randint(3, vocab, (batch, 12), generator=generator)
    tokens[:, 0] = 0
    ids = torch.arange(batch) // 2
    system = PasstDistilled(config, head)
    if config["stage"] == 2:
        teacher = nn.functional.normalize(torch.randn(2, batch, 16, generator=generator), dim=-1)
        system.batch_teacher = teacher @ teacher.transpose(1, 2)
    audio = synthetic_tones(ids, 2 * SAMPLE_RATE, SAMPLE_RATE, generator)
    return SyntheticSystem(system, audio, tokens, ids, config["embed_dim"])


def system_name(config: Mapping[str, Any]) -> str:
    size = " (tiny, random init)" if config["size"] == "tiny" else ""
    if config["stage"] == 1:
        stage = "stage 1 (NT-Xent)"
    else:
        n = len(members(config))
        stage = "stage 2, self-distilled" if n == 1 else f"stage 2, distilled from {n} models"
    return f"PaSST{size} + {config['text_encoder']}, {stage}"


@dataclass(frozen=True)
class PasstDistilledSettings(EndToEndSettings):
    """The settings of distilled PaSST (Primus et al.)."""

    size: Size = "full"
    text_encoder: str = "roberta-large"
    text_checkpoint: str = ""
    text_pooling: TextPooling = "first"
    text_dropout: float = 0.2
    audio_checkpoint: str = ""
    s_patchout_t: int = 15
    s_patchout_f: int = 2
    clip_seconds: float = 30.0
    tile_seconds: float = 10.0
    max_text_tokens: int = 32
    embed_dim: int = 1024
    temperature: float = 0.05
    stage: Literal[1, 2] = 1
    distill_from: str = ""
    init_from: str = ""
    loss_weight: float = 0.0
    distill_weight: float = 1.0
    lr: float = 2e-5
    optimizer: Optimizer = "adamw"
    weight_decay: float = 0.0
    schedule: Schedule = "warmup-cosine"
    warmup_epochs: float = 1.0
    rampdown_start: float = 1.0
    rampdown_stop: float = 15.0
    min_lr: float = 1e-7
    epochs: int = 20
    batch_size: int = 64
    drop_last: bool = True


DEFAULTS = PasstDistilledSettings()
PRIMUS, SALSA = "Primus et al. 2024", "authors' code (OptimusPrimus/salsa)"
PAPER_SETTINGS = (
    PaperSetting("PaSST passt_s_p16_s16_128_ap468, no patch overlap", f"{PRIMUS}, model", "audio_checkpoint",
                 note="the stride-16 release file, passed by path (no pinned checksum here)"),
    PaperSetting("structured patchout: 15 over time", f"{PRIMUS}, model", "s_patchout_t", 15),
    PaperSetting("structured patchout: 2 over frequency", f"{PRIMUS}, model", "s_patchout_f", 2),
    PaperSetting("up to 30 s", f"{PRIMUS}, model", "clip_seconds", 30.0),
    PaperSetting("cut into non-overlapping 10 s snippets, embeddings averaged", f"{PRIMUS}, model", "tile_seconds",
                 10.0),
    PaperSetting("RoBERTa large", f"{PRIMUS}, model", "text_encoder", "roberta-large"),
    PaperSetting("normalised dot product in the shared space", f"{PRIMUS}, model", "embed_dim",
                 note="1024-d, the code's"),
    PaperSetting("temperature constant", f"{PRIMUS}, model", "temperature", note="0.05, the code's"),
    PaperSetting("stage 1: NT-Xent; stage 2: targets from the members' mean agreement matrices",
                 f"{PRIMUS}, model", "stage", 1),
    PaperSetting("batch 64 (PaSST)", f"{PRIMUS}, training", "batch_size", 64),
    PaperSetting("Adam with PyTorch defaults", f"{PRIMUS}, training", "optimizer",
                 note="adamw with weight_decay 0, which is Adam (the code's)"),
    PaperSetting("learning rate not stated", f"{PRIMUS}, training", "lr", note="2e-5, the code's"),
    PaperSetting("20 epochs", f"{PRIMUS}, training", "epochs", 20),
    PaperSetting("one warm-up epoch", f"{PRIMUS}, training", "warmup_epochs", 1.0),
    PaperSetting("then cosine decay of the learning rate", f"{PRIMUS}, training", "schedule", "warmup-cosine",
                 note="to 1e-7 at epoch 15, the code's"),
    PaperSetting("captions lower-cased, punctuation removed, 32 tokens, first token", SALSA, "max_text_tokens", 32),
)
MODEL_KEYS = ("size", "text_encoder", "text_pooling", "embed_dim", "stage", "distill_from")

SPEC = BaselineSpec(
    name=NAME,
    paper="Primus, Schmid & Widmer, Estimated Audio-Caption Correspondences Improve Language-Based Audio "
          "Retrieval, DCASE Workshop 2024 (arXiv 2408.11641)",
    links={"paper": "https://arxiv.org/abs/2408.11641", "code": "https://github.com/OptimusPrimus/salsa"},
    audio_encoder="PaSST-S stride 16 (AudioSet mAP .468), fine-tuned, Patchout 15/2; 10 s tiles of up to 30 s, "
                  "averaged",
    text_encoder="RoBERTa large, fine-tuned, first token, lower case without punctuation, 32 tokens",
    head="Linear 768 -> 1024 (audio), Linear 1024 -> 1024 (text), l2-normalised; tau 0.05 fixed",
    loss="stage 1: NT-Xent, same-audio captions positive; stage 2: cross-entropy to the members' estimated "
         "correspondences (baselines.losses.distillation), optionally + stage 1",
    training_data="Clotho v2 development (paper's Clotho-only runs); any text-to-audio task here",
    defaults=DEFAULTS,
    model_keys=MODEL_KEYS,
    paper_settings=PAPER_SETTINGS,
    build=build,
    parameter_counts=parameter_counts,
    required_assets=required_assets,
    synthetic_system=synthetic_system,
    system_name=system_name,
    local_files={"audio_checkpoint": (VARIANT_URLS[VARIANT].rsplit("/", 1)[-1], VARIANT_URLS[VARIANT])},
)
