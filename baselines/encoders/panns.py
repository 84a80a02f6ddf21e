"""PANNs AudioSet taggers (Kong et al. 2020): Cnn14, ResNet38 and Wavegram-Logmel-Cnn14.

Our own implementation of the architectures in qiuqiangkong/audioset_tagging_cnn
(`pytorch/models.py`), with module names that follow the published state dicts so that the
Zenodo checkpoints (record 3987831) load strictly. Input: mono waveforms at 32 kHz, any length
(global pooling); log-mel front end of 64 bands, n_fft 1024, hop 320, 50-14000 Hz.

Outputs: `logits` (the pre-sigmoid activations of the AudioSet classifier: logit(p) without the
clamping a logit of the stored probabilities would need), `probabilities` (sigmoid, PANNs'
`clipwise_output`) and the 2048-d `embedding` (ReLU(fc1), PANNs' `embedding`).
Training mode applies PANNs' dropouts; SpecAugment and mixup are not reproduced.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from baselines import assets as declared
from baselines.encoders.audio_frontend import LogmelFilterBank, Spectrogram, load_strict, read_checkpoint
from benchmark.assets import Asset, fetch
from benchmark.errors import LarbError

SAMPLE_RATE = 32_000
N_CLASSES = 527

# The pretrained checkpoints, declared with the other baseline assets (listed without torch).
CNN14_ASSET = declared.PANNS_CNN14
RESNET38_ASSET = declared.PANNS_RESNET38
WAVEGRAM_LOGMEL_CNN14_ASSET = declared.PANNS_WAVEGRAM_LOGMEL_CNN14


class ConvBlock(nn.Module):
    """Two 3x3 conv -> BN -> ReLU, then average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: tuple[int, int] = (2, 2)) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool)


class PannsTagger(nn.Module):
    """Log-mel front end, batch norm over mel bands, a convolutional trunk, PANNs' pooling and head.

    Subclasses build the trunk in `_trunk(logmel, waveform) -> (batch, channels, frames, bands)`.
    """

    sample_rate: int = SAMPLE_RATE
    embedding_dim: int = 2048

    def __init__(self, embedding_dim: int, mel_bins: int = 64, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.spectrogram_extractor = Spectrogram(n_fft=1024, hop_length=320)
        self.logmel_extractor = LogmelFilterBank(SAMPLE_RATE, 1024, mel_bins, fmin=50.0, fmax=14_000.0)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        self.fc1 = nn.Linear(embedding_dim, embedding_dim)
        self.fc_audioset = nn.Linear(embedding_dim, n_classes)

    def _trunk(self, logmel: torch.Tensor, waveform: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _dropout(self, x: torch.Tensor, p: float = 0.2) -> torch.Tensor:
        return F.dropout(x, p, training=self.training)

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        logmel = self.logmel_extractor(self.spectrogram_extractor(waveform))  # (B, 1, frames, mels)
        logmel = self.bn0(logmel.transpose(1, 3)).transpose(1, 3)
        x = self._trunk(logmel, waveform).mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2)
        x = F.relu(self.fc1(self._dropout(x, 0.5)))
        logits = self.fc_audioset(x)
        return {"logits": logits, "probabilities": torch.sigmoid(logits), "embedding": self._dropout(x, 0.5)}


class Cnn14(PannsTagger):
    """Six conv blocks (64 ... 2048 channels); `widths` shrinks it for tests."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048), mel_bins: int = 64,
                 n_classes: int = N_CLASSES) -> None:
        super().__init__(widths[-1], mel_bins, n_classes)
        channels = (1, *widths)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(channels[i], channels[i + 1]))

    def _trunk(self, logmel: torch.Tensor, waveform: torch.Tensor) -> torch.Tensor:
        x = logmel
        for i in range(1, 7):
            x = self._dropout(getattr(self, f"conv_block{i}")(x, (2, 2) if i < 6 else (1, 1)))
        return x


class BasicBlock(nn.Module):
    """PANNs' ResNet basic block: with stride 2 it average-pools first, then two 3x3 convs."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride == 2:  # indices follow the checkpoint: 0 is the (parameter-free) pooling
            self.downsample = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_channels, channels, 1, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(x, 2) if self.stride == 2 else x
        out = F.dropout(F.relu(self.bn1(self.conv1(out))), 0.1, training=self.training)
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class ResNetTrunk(nn.Module):
    """Four stages of basic blocks; every stage but the first halves time and frequency."""

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...]) -> None:
        super().__init__()
        in_channels = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if stage == 0 else 2
            layers = [BasicBlock(in_channels, width, stride)]
            layers += [BasicBlock(width, width, 1) for _ in range(count - 1)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
            in_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return x


class ResNet38(PannsTagger):
    """Conv block (64) -> ResNet stages (3, 4, 6, 3 blocks; 64 ... 512) -> conv block (2048)."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), blocks: tuple[int, ...] = (3, 4, 6, 3),
                 embedding_dim: int = 2048, mel_bins: int = 64, n_classes: int = N_CLASSES) -> None:
        super().__init__(embedding_dim, mel_bins, n_classes)
        self.conv_block1 = ConvBlock(1, widths[0])
        self.resnet = ResNetTrunk(widths, blocks)
        self.conv_block_after1 = ConvBlock(widths[-1], embedding_dim)

    def _trunk(self, logmel: torch.Tensor, waveform: torch.Tensor) -> torch.Tensor:
        x = self._dropout(self.conv_block1(logmel))
        x = self._dropout(F.avg_pool2d(self.resnet(x), 2))
        return self._dropout(self.conv_block_after1(x, (1, 1)))


class ConvPreWavBlock(nn.Module):
    """1-D conv (k3) and dilated conv (k3, dilation 2), each BN + ReLU, then max pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, padding=2, dilation=2, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.bn2 = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool1d(x, pool)


class WavegramLogmelCnn14(PannsTagger):
    """A learned "wavegram" from the raw waveform, stacked with the log-mel branch after block 1.

    The wavegram's channels are regrouped into (channels / bands, bands) maps with bands = mel_bins / 2,
    the frequency size of the log-mel branch after its first pooling.
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048),
                 wave_widths: tuple[int, ...] = (64, 64, 128, 128), mel_bins: int = 64,
                 n_classes: int = N_CLASSES) -> None:
        super().__init__(widths[-1], mel_bins, n_classes)
        self.bands = mel_bins // 2
        if wave_widths[-1] % self.bands:
            raise ValueError(f"the last wavegram width ({wave_widths[-1]}) must be a multiple of {self.bands}")
        self.pre_conv0 = nn.Conv1d(1, wave_widths[0], 11, stride=5, padding=5, bias=False)
        self.pre_bn0 = nn.BatchNorm1d(wave_widths[0])
        for i in range(3):
            setattr(self, f"pre_block{i + 1}", ConvPreWavBlock(wave_widths[i], wave_widths[i + 1]))
        self.pre_block4 = ConvBlock(wave_widths[-1] // self.bands, widths[0])
        channels = (1, 2 * widths[0], *widths[1:])
        self.conv_block1 = ConvBlock(1, widths[0])
        for i in range(1, 6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(channels[i], widths[i]))

    def _trunk(self, logmel: torch.Tensor, waveform: torch.Tensor) -> torch.Tensor:
        wave = F.relu(self.pre_bn0(self.pre_conv0(waveform.unsqueeze(1))))
        for i in range(1, 4):
            wave = getattr(self, f"pre_block{i}")(wave, 4)
        wave = wave.reshape(wave.shape[0], -1, self.bands, wave.shape[-1]).transpose(2, 3)
        wave = self.pre_block4(wave, (2, 1))
        x = self.conv_block1(logmel)
        # The two branches agree on the frame count only for some lengths (e.g. whole seconds);
        # upstream then fails, here the longer branch loses its last frame.
        frames = min(x.shape[2], wave.shape[2])
        x = self._dropout(torch.cat((x[:, :, :frames], wave[:, :, :frames]), dim=1))
        for i in range(2, 7):
            x = self._dropout(getattr(self, f"conv_block{i}")(x, (2, 2) if i < 6 else (1, 1)))
        return x


def _load(model: PannsTagger, checkpoint: str | Path | None, asset: Asset) -> PannsTagger:
    path = Path(checkpoint) if checkpoint is not None else fetch(asset.name)
    content = read_checkpoint(path, pinned=asset)
    state = content.get("model", content) if isinstance(content, dict) else content
    load_strict(model, state, path, type(model).__name__)
    if not model.spectrogram_extractor.matches_kernels():
        raise LarbError(f"the checkpoint's STFT kernels are not the periodic-Hann DFT {type(model).__name__} "
                        "computes, so its log-mels would not be the ones it was trained on.", path=path,
                        fix="use a PANNs checkpoint trained with n_fft 1024 and a Hann window.")
    return model.eval()


def load_cnn14(checkpoint: str | Path | None = None, **config) -> Cnn14:
    """Cnn14 with the official weights (or `checkpoint`), loaded strictly, in eval mode."""
    return _load(Cnn14(**config), checkpoint, CNN14_ASSET)


def load_resnet38(checkpoint: str | Path | None = None, **config) -> ResNet38:
    """ResNet38 with the official weights (or `checkpoint`), loaded strictly, in eval mode."""
    return _load(ResNet38(**config), checkpoint, RESNET38_ASSET)


def load_wavegram_logmel_cnn14(checkpoint: str | Path | None = None, **config) -> WavegramLogmelCnn14:
    """Wavegram-Logmel-Cnn14 with the official weights (or `checkpoint`), loaded strictly, in eval mode."""
    return _load(WavegramLogmelCnn14(**config), checkpoint, WAVEGRAM_LOGMEL_CNN14_ASSET)
