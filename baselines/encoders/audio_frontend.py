"""Shared pieces of the pretrained audio encoders: the PANNs log-mel front end and checkpoint loading.

PANNs (and every CNN14 derivative, e.g. CLAP's) were trained on torchlibrosa's `Spectrogram` +
`LogmelFilterBank`: a centred, reflect-padded STFT with a periodic Hann window, power, librosa's
Slaney mel filters, then 10 * log10(max(x, 1e-10)). Here the same numbers come from `torch.stft`
(no librosa at run time). The published checkpoints carry torchlibrosa's DFT kernels and mel
matrix under `spectrogram_extractor.stft.conv_{real,imag}.weight` and `logmel_extractor.melW`, so
the modules below keep those names: strict loading then accounts for every key, and the loaded
DFT kernels prove that the checkpoint expects the STFT computed here.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.assets import Asset, file_checksum
from benchmark.errors import LarbError

# The tables below are computed on the CPU in float64 (so that a model built under
# `torch.device("meta")`, e.g. to count parameters, still gets them) and stored as float32.
_CPU64 = {"dtype": torch.float64, "device": "cpu"}


def dft_kernels(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchlibrosa's STFT kernels (real, imaginary), each (n_fft // 2 + 1, 1, n_fft).

    Row k holds hann(n) * exp(-2 pi i k n / n_fft), the periodic Hann window that
    `librosa.filters.get_window("hann", n_fft, fftbins=True)` returns.
    """
    n = torch.arange(n_fft, **_CPU64)
    k = torch.arange(n_fft // 2 + 1, **_CPU64).unsqueeze(1)
    window = torch.hann_window(n_fft, periodic=True, **_CPU64)
    # (k * n) mod n_fft keeps the phase argument small, so float64 stays exact.
    phase = -2.0 * math.pi * torch.remainder(k * n, n_fft) / n_fft
    real = (torch.cos(phase) * window).to(torch.float32).unsqueeze(1)
    imag = (torch.sin(phase) * window).to(torch.float32).unsqueeze(1)
    return real, imag


_F_SP = 200.0 / 3  # Slaney mel scale: linear (1 mel per 66.7 Hz) below 1 kHz, logarithmic above
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_slaney_mel(freq: float) -> float:
    if freq < _MIN_LOG_HZ:
        return freq / _F_SP
    return _MIN_LOG_MEL + math.log(freq / _MIN_LOG_HZ) / _LOGSTEP


def _slaney_mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return torch.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), _F_SP * mel)


def slaney_mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """`librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax).T`: (n_fft // 2 + 1, n_mels), Slaney-normalised."""
    fft_freqs = torch.arange(n_fft // 2 + 1, **_CPU64) * sample_rate / n_fft
    mels = torch.linspace(_hz_to_slaney_mel(fmin), _hz_to_slaney_mel(fmax), n_mels + 2, **_CPU64)
    mel_freqs = _slaney_mel_to_hz(mels)
    widths = mel_freqs.diff()
    ramps = mel_freqs.unsqueeze(1) - fft_freqs.unsqueeze(0)
    lower = -ramps[:-2] / widths[:-1].unsqueeze(1)
    upper = ramps[2:] / widths[1:].unsqueeze(1)
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2])).unsqueeze(1)
    return weights.T.to(torch.float32).contiguous()


class _Kernel(nn.Module):
    """Holds one DFT kernel under torchlibrosa's Conv1d name (`...conv_real.weight`)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)


class _DftKernels(nn.Module):
    def __init__(self, n_fft: int) -> None:
        super().__init__()
        real, imag = dft_kernels(n_fft)
        self.conv_real = _Kernel(real)
        self.conv_imag = _Kernel(imag)


class Spectrogram(nn.Module):
    """(batch, samples) -> power spectrogram (batch, 1, frames, n_fft // 2 + 1), as torchlibrosa's.

    Frames = samples // hop_length + 1 (centred, reflect padding).
    """

    def __init__(self, n_fft: int = 1024, hop_length: int = 320) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.stft = _DftKernels(n_fft)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(waveform, self.n_fft, hop_length=self.hop_length, window=self.window,
                          center=True, pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return power.transpose(1, 2).unsqueeze(1)

    def matches_kernels(self, atol: float = 1e-4) -> bool:
        """Whether the (loaded) DFT kernels are the ones `forward` computes with torch.stft."""
        real, imag = dft_kernels(self.n_fft)
        return (torch.allclose(self.stft.conv_real.weight.cpu(), real, atol=atol)
                and torch.allclose(self.stft.conv_imag.weight.cpu(), imag, atol=atol))


class LogmelFilterBank(nn.Module):
    """Power spectrogram (..., n_fft // 2 + 1) -> log-mel in dB (..., n_mels), ref 1, amin 1e-10, no top_db.

    `melW` is the checkpoint's mel matrix once loaded, so the model sees the filters it was trained on.
    """

    def __init__(self, sample_rate: int = 32_000, n_fft: int = 1024, n_mels: int = 64,
                 fmin: float = 50.0, fmax: float = 14_000.0, amin: float = 1e-10) -> None:
        super().__init__()
        self.amin = amin
        self.register_buffer("melW", slaney_mel_filters(sample_rate, n_fft, n_mels, fmin, fmax))

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(power @ self.melW, min=self.amin))


# What torch.load raises on files it refuses or cannot parse.
_REFUSED = (pickle.UnpicklingError, RuntimeError, KeyError, EOFError, ValueError, AttributeError)


def read_checkpoint(path: Path, pinned: Asset | None = None) -> Any:
    """The object a checkpoint file holds, unpickled safely.

    Tensors-only files load with `weights_only=True`. Official files that pickle other objects
    (PANNs stores its sampler state) are unpickled in full only when their bytes match the
    pinned checksum of `pinned`, i.e. when they are the published file.
    """
    if not path.is_file():
        raise LarbError("checkpoint file not found.", path=path,
                        fix="pass the path of an existing checkpoint, or none to fetch the official one.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except _REFUSED as exc:
        failure = type(exc).__name__
    if pinned is not None and _is_pinned_file(pinned, path):
        return torch.load(path, map_location="cpu", weights_only=False)
    raise LarbError(f"not a tensors-only PyTorch checkpoint ({failure}) and not a pinned official file, "
                    "so it is not unpickled.", path=path,
                    fix="point to the right file; save your own checkpoints as plain state dicts "
                        "(torch.save(model.state_dict(), path)).")


def _is_pinned_file(asset: Asset, path: Path) -> bool:
    algorithm, _, digest = asset.checksum.partition(":")
    return file_checksum(path, algorithm) == digest.lower()


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """`load_state_dict(strict=True)`; a mismatch is a user error that names the file and the keys."""
    expected = model.state_dict()
    problems = []
    for label, keys in (("missing", [k for k in expected if k not in state_dict]),
                        ("unexpected", [k for k in state_dict if k not in expected])):
        if keys:
            problems.append(f"{len(keys)} {label} key(s) ({_first(keys)})")
    reshaped = [f"{k}: {tuple(v.shape)} instead of {tuple(expected[k].shape)}" for k, v in state_dict.items()
                if k in expected and isinstance(v, torch.Tensor) and v.shape != expected[k].shape]
    if reshaped:
        problems.append(f"{len(reshaped)} with other shapes ({_first(reshaped)})")
    if problems:
        raise LarbError(f"the checkpoint does not fit {what}: " + "; ".join(problems) + ".", path=path,
                        fix=f"pass a checkpoint of {what}, or the model configuration it was trained with.")
    model.load_state_dict(state_dict, strict=True)


def _first(items: list[str], count: int = 3) -> str:
    return ", ".join(items[:count]) + (", ..." if len(items) > count else "")
