"""PaSST, the Patchout faSt Spectrogram Transformer (Koutini et al., Interspeech 2022), AudioSet-trained.

Our own implementation of the model in kkoutini/PaSST and its inference package `hear21passt`:
a DeiT-style ViT (class and distillation tokens) over 16x16 patches of a 128-band log-mel, with
separate time and frequency position embeddings; structured Patchout drops whole time columns
and frequency rows of the patch grid while training. Parameter names follow the published
state dicts, which therefore load strictly. Input: mono waveforms at 32 kHz. The log-mel is
hear21passt's evaluation-mode `AugmentMelSTFT` (shared with EfficientAT, `efficientat_mel.py`).

Outputs: `logits` (AudioSet, pre-sigmoid) and the 768-d `embedding` (mean of the class and
distillation tokens after the final LayerNorm, hear21passt's "embed_only" features).

Clips longer than the model's window (10 s; 30 s for the 30-second variant) are handled as
hear21passt's `get_scene_embeddings` does: reflect-pad by half a window on both sides, cut
windows with a hop (2.5 s; 10 s for the 30-second variant), average logits and embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from baselines import assets as declared
from baselines.encoders.audio_frontend import load_strict, read_checkpoint
from baselines.encoders.efficientat_mel import EfficientATMel
from benchmark.assets import Asset, fetch
from benchmark.errors import LarbError

SAMPLE_RATE = 32_000
N_CLASSES = 527


@dataclass(frozen=True)
class PasstConfig:
    """Architecture and windowing of one PaSST variant; small values make a test-sized model."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    fstride: int = 10
    tstride: int = 10
    n_mels: int = 128
    input_tdim: int = 998  # frames the time position table was sized for (upstream: input_tdim // tstride)
    n_classes: int = N_CLASSES
    window_seconds: float = 10.0
    hop_seconds: float = 2.5
    s_patchout_t: int = 0  # time columns dropped while training
    s_patchout_f: int = 0  # frequency rows dropped while training


DEFAULT_VARIANT = "passt_s_swa_p16_128_ap476"
VARIANTS: dict[str, PasstConfig] = {
    # stride 10 (overlapping patches), SWA weights, AudioSet mAP .476; hear21passt's default
    DEFAULT_VARIANT: PasstConfig(),
    # stride 16 (no overlap), mAP .468; the audio encoder of Primus et al. 2024 (salsa)
    "passt_s_p16_s16_128_ap468": PasstConfig(fstride=16, tstride=16),
    # time positions for 30 s (hear21passt.base30sec), mAP .473
    "passt_s_f128_30sec_p16_s10_ap473_swa": PasstConfig(input_tdim=3000, window_seconds=30.0, hop_seconds=10.0),
}
VARIANT_URLS = {
    DEFAULT_VARIANT: "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/"
                     "passt-s-f128-p16-s10-ap.476-swa.pt",
    "passt_s_p16_s16_128_ap468": "https://github.com/kkoutini/PaSST/releases/download/v0.0.2-audioset/"
                                 "passt-s-f128-p16-s16-ap.468.pt",
    "passt_s_f128_30sec_p16_s10_ap473_swa": "https://github.com/kkoutini/PaSST/releases/download/v0.0.5/"
                                            "passt-s-f128-30sec-p16-s10-ap.473-swa.pt",
}
# Only the default's checksum could be pinned (see baselines.assets); the other variants load
# from a local `checkpoint`.
ASSETS: dict[str, Asset] = {DEFAULT_VARIANT: declared.PASST_S_SWA}


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, as timm's ViT)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, stride: tuple[int, int], embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, patch_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Passt(nn.Module):
    """Waveforms (batch, samples) at 32 kHz -> {"logits": (batch, 527), "embedding": (batch, 768)}."""

    sample_rate: int = SAMPLE_RATE
    embedding_dim: int = 768

    def __init__(self, config: PasstConfig = VARIANTS[DEFAULT_VARIANT]) -> None:
        super().__init__()
        self.config = config
        self.embedding_dim = dim = config.embed_dim
        self.mel = EfficientATMel(n_mels=config.n_mels)
        self.patch_embed = PatchEmbed(config.patch_size, (config.fstride, config.tstride), dim)
        freq_patches = (config.n_mels - config.patch_size) // config.fstride + 1
        time_positions = config.input_tdim // config.tstride
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, dim, freq_patches, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, dim, 1, time_positions))
        for parameter in (self.cls_token, self.dist_token, self.new_pos_embed, self.freq_new_pos_embed,
                          self.time_new_pos_embed):
            nn.init.trunc_normal_(parameter, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, config.n_classes))
        # The distillation head is trained and published but unused at inference, as upstream.
        self.head_dist = nn.Linear(dim, config.n_classes)
        self.window_samples = round(config.window_seconds * SAMPLE_RATE)
        self.hop_samples = round(config.hop_seconds * SAMPLE_RATE)
        # The shortest input that still yields one patch column (pre-emphasis drops one sample).
        self.min_samples = (config.patch_size - 1) * self.mel.hop_length + 2

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        if waveform.shape[-1] <= self.window_samples:
            return self.forward_window(waveform)
        outputs = [self.forward_window(window) for window in self.windows(waveform)]
        return {key: torch.stack([out[key] for out in outputs]).mean(dim=0) for key in outputs[0]}

    def windows(self, waveform: torch.Tensor) -> torch.Tensor:
        """(n_windows, batch, window_samples): hear21passt's reflect-padded, hopped scene windows."""
        half = self.window_samples // 2
        padded = F.pad(waveform.unsqueeze(1), (half, half), mode="reflect").squeeze(1)
        return padded.unfold(-1, self.window_samples, self.hop_samples).transpose(0, 1)

    def forward_window(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """One pass over at most one window; shorter inputs are right-padded with zeros to one patch."""
        if waveform.shape[-1] < self.min_samples:
            waveform = F.pad(waveform, (0, self.min_samples - waveform.shape[-1]))
        features = self.forward_features(self.mel(waveform).unsqueeze(1))
        return {"logits": self.head(features), "embedding": features}

    def forward_features(self, spec: torch.Tensor) -> torch.Tensor:
        """Log-mel (batch, 1, n_mels, frames) -> mean of the class and distillation tokens (batch, dim)."""
        x = self.patch_embed(spec)  # (batch, dim, freq patches, time patches)
        if x.shape[-1] > self.time_new_pos_embed.shape[-1]:
            raise ValueError(f"{x.shape[-1]} time patches exceed the {self.time_new_pos_embed.shape[-1]} "
                             "time positions of this model; pass the waveform to forward(), which windows it")
        x = x + self.time_new_pos_embed[..., : x.shape[-1]] + self.freq_new_pos_embed
        if self.training:
            x = self._structured_patchout(x)
        x = x.flatten(2).transpose(1, 2)
        tokens = torch.cat((self.cls_token, self.dist_token), dim=1) + self.new_pos_embed
        x = torch.cat((tokens.expand(x.shape[0], -1, -1), x), dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return (x[:, 0] + x[:, 1]) / 2

    def _structured_patchout(self, x: torch.Tensor) -> torch.Tensor:
        """Keep a random, order-preserving subset of time columns and frequency rows."""
        freq, time = x.shape[2], x.shape[3]
        if 0 < self.config.s_patchout_t < time:
            x = x[:, :, :, torch.randperm(time)[: time - self.config.s_patchout_t].sort().values]
        if 0 < self.config.s_patchout_f < freq:
            x = x[:, :, torch.randperm(freq)[: freq - self.config.s_patchout_f].sort().values]
        return x


def load_passt(checkpoint: str | Path | None = None, *, variant: str = DEFAULT_VARIANT, **config) -> Passt:
    """A PaSST variant with its published weights (or `checkpoint`), loaded strictly, in eval mode.

    `config` overrides fields of the variant's `PasstConfig` (e.g. s_patchout_t for fine-tuning).
    """
    if variant not in VARIANTS:
        raise LarbError(f"unknown PaSST variant {variant!r}.", fix=f"use one of {sorted(VARIANTS)}.")
    model = Passt(replace(VARIANTS[variant], **config))
    if checkpoint is None:
        if variant not in ASSETS:
            raise LarbError(f"no pinned checksum for the {variant} weights, so they are not downloaded.",
                            fix=f"download {VARIANT_URLS[variant]} yourself and pass it as checkpoint.")
        path = fetch(ASSETS[variant].name)
    else:
        path = Path(checkpoint)
    state = read_checkpoint(path, pinned=ASSETS.get(variant))
    load_strict(model, _patch_weight_as_conv(state, model), path, f"PaSST {variant}")
    return model.eval()


def _patch_weight_as_conv(state: dict[str, torch.Tensor], model: Passt) -> dict[str, torch.Tensor]:
    """Checkpoints from before conv patchification store the patch projection flattened;
    upstream's loader reshapes it to the conv kernel, and so do we."""
    weight = state.get("patch_embed.proj.weight")
    target = model.patch_embed.proj.weight.shape
    if weight is not None and weight.dim() < 4 and weight.numel() == target.numel():
        state = {**state, "patch_embed.proj.weight": weight.reshape(target)}
    return state
