"""EfficientAT MobileNetV3 "mn04": a 1 M-parameter AudioSet tagger (527 logits) that runs on a CPU.

Schmid, Koutini & Widmer, "Efficient Large-scale Audio Tagging via Transformer-to-CNN Knowledge
Distillation", ICASSP 2023. The network is MobileNetV3-Large (Howard et al. 2019) at width 0.4
on one-channel 128-band log-mels: channel squeeze-and-excitation (ReLU, then sigmoid; one branch,
so EfficientAT's "concurrent" aggregation is the identity), batch norm eps 1e-3, and an MLP head
pool -> Linear(384, 512) -> Hardswish -> Dropout -> Linear(512, 527). Module names follow the
published state dict so that it loads strictly; `tests/test_mn04.py` checks every shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from baselines.encoders.audio_frontend import load_strict, read_checkpoint
from baselines.encoders.efficientat_mel import EfficientATMel

WIDTH = 0.4
SAMPLE_RATE = 32_000
N_CLASSES = 527


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of `divisor`, never 10 % below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class Bottleneck:
    """One inverted-residual block of MobileNetV3-Large (Table 1 of the paper), before width scaling."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    squeeze_excite: bool
    hardswish: bool
    stride: int


# in, kernel, expanded, out, SE, hard-swish, stride
MOBILENET_V3_LARGE = tuple(Bottleneck(*row) for row in (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
))
LAST_CHANNEL = 1280  # width of the head's hidden layer before scaling


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=0.001, momentum=0.01)


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> batch norm -> optional activation, 'same' padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1, activation: type[nn.Module] | None = None) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            _batch_norm(out_channels)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class ChannelSqueezeExcite(nn.Module):
    """Mean over frequency and time -> fc -> ReLU -> fc -> sigmoid -> rescale the channels."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3))
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(scale))))
        return x * scale[:, :, None, None]


class SqueezeExciteBlock(nn.Module):
    """Holds the SE layer under EfficientAT's name (`conc_se_layers.0`) so the checkpoint loads."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSqueezeExcite(channels, make_divisible(channels // 4))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (kxk, strided) -> optional SE -> project (1x1), residual when shapes allow."""

    def __init__(self, cfg: Bottleneck, width: float) -> None:
        super().__init__()
        in_ch, mid_ch, out_ch = (make_divisible(c * width) for c in (cfg.in_channels, cfg.expanded,
                                                                     cfg.out_channels))
        activation = nn.Hardswish if cfg.hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if mid_ch != in_ch:
            layers.append(ConvBNAct(in_ch, mid_ch, activation=activation))
        layers.append(ConvBNAct(mid_ch, mid_ch, cfg.kernel, cfg.stride, groups=mid_ch, activation=activation))
        if cfg.squeeze_excite:
            layers.append(SqueezeExciteBlock(mid_ch))
        layers.append(ConvBNAct(mid_ch, out_ch))
        self.block = nn.Sequential(*layers)
        self.residual = cfg.stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class MobileNetV3Tagger(nn.Module):
    """Log-mel (batch, 1, mels, frames) -> (527 logits, pooled embedding)."""

    def __init__(self, width: float = WIDTH, n_classes: int = N_CLASSES, dropout: float = 0.2) -> None:
        super().__init__()
        first = make_divisible(MOBILENET_V3_LARGE[0].in_channels * width)
        last_in = make_divisible(MOBILENET_V3_LARGE[-1].out_channels * width)
        self.embedding_dim = 6 * last_in
        hidden = make_divisible(LAST_CHANNEL * width)
        self.features = nn.Sequential(
            ConvBNAct(1, first, 3, 2, activation=nn.Hardswish),
            *(InvertedResidual(cfg, width) for cfg in MOBILENET_V3_LARGE),
            ConvBNAct(last_in, self.embedding_dim, activation=nn.Hardswish),
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(self.embedding_dim, hidden), nn.Hardswish(),
            nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.features(mel)
        return self.classifier(fmap), fmap.mean(dim=(2, 3))


class Mn04(nn.Module):
    """Waveforms (batch, samples) at 32 kHz -> {"logits": (batch, 527), "embedding": (batch, 384)}.

    The network is fully convolutional with global pooling, so clips of any length go through
    in one pass (EfficientAT's own inference does the same); no windowing.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        super().__init__()
        self.mel = EfficientATMel()
        self.net = MobileNetV3Tagger()

    @property
    def embedding_dim(self) -> int:
        return self.net.embedding_dim

    def forward(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, embedding = self.net(self.mel(waveforms).unsqueeze(1))
        return {"logits": logits, "embedding": embedding}


def load_mn04(checkpoint: Path) -> Mn04:
    """The published mn04 weights, loaded strictly (a missing or extra key is an error), in eval mode."""
    model = Mn04()
    load_strict(model.net, read_checkpoint(Path(checkpoint)), Path(checkpoint), "EfficientAT mn04")
    return model.eval()
