"""The log-mel front end of EfficientAT (and PaSST), rebuilt with torch.stft, no torchaudio.

Evaluation mode of `AugmentMelSTFT` (fschmid56/EfficientAT `models/preprocess.py`): pre-emphasis
[-0.97, 1] -> STFT (n_fft 1024, window 800 symmetric Hann, hop 320, centred) -> power ->
Kaldi triangular mel banks (128 bands, fmin 0, fmax = sr/2 - 1000 Hz) with a zero column for the
Nyquist bin -> log(x + 1e-5) -> (x + 4.5) / 5. The weights were trained on exactly this input,
so any deviation costs tagging accuracy silently.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def kaldi_mel_banks(n_mels: int, n_fft: int, sample_rate: int, fmin: float, fmax: float) -> torch.Tensor:
    """Kaldi's triangular mel filters (`torchaudio.compliance.kaldi.get_mel_banks`, no VTLN).

    Shape (n_mels, n_fft // 2 + 1); the last (Nyquist) column is zero, as EfficientAT pads it.
    """

    def mel(freq: torch.Tensor | float) -> torch.Tensor | float:
        if isinstance(freq, torch.Tensor):
            return 1127.0 * torch.log1p(freq / 700.0)
        return 1127.0 * math.log1p(freq / 700.0)

    mel_low, mel_high = mel(fmin), mel(fmax)
    delta = (mel_high - mel_low) / (n_mels + 1)
    band = torch.arange(n_mels, dtype=torch.float64).unsqueeze(1)
    left = mel_low + band * delta
    centre = mel_low + (band + 1.0) * delta
    right = mel_low + (band + 2.0) * delta
    bin_mel = mel(sample_rate / n_fft * torch.arange(n_fft // 2, dtype=torch.float64)).unsqueeze(0)
    up = (bin_mel - left) / (centre - left)
    down = (right - bin_mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return nn.functional.pad(banks, (0, 1)).to(torch.float32)


class EfficientATMel(nn.Module):
    """Waveforms (batch, samples) at 32 kHz -> normalised log-mel (batch, n_mels, frames)."""

    def __init__(self, n_mels: int = 128, sample_rate: int = 32_000, win_length: int = 800,
                 hop_length: int = 320, n_fft: int = 1024, fmax_aug_range: int = 2000) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        fmax = sample_rate // 2 - fmax_aug_range // 2
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        self.register_buffer("mel_banks", kaldi_mel_banks(n_mels, n_fft, sample_rate, 0.0, fmax),
                             persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = nn.functional.conv1d(waveforms.unsqueeze(1), self.preemphasis).squeeze(1)
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=True, normalized=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        with torch.autocast(device_type=power.device.type, enabled=False):
            mel = torch.matmul(self.mel_banks, power.float())
        return (torch.log(mel + 1e-5) + 4.5) / 5.0
