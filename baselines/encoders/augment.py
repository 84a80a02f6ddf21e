"""SpecAugment-style masking of spectrogram stripes, applied by the encoders in training mode."""

from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """torchlibrosa's `SpecAugmentation` as PANNs and HTSAT use it: per example, `stripes` random
    stripes of up to `time_width` frames and of up to `freq_width` bands set to zero. Training only."""

    def __init__(self, time_width: int = 64, time_stripes: int = 2, freq_width: int = 8, freq_stripes: int = 2
                 ) -> None:
        super().__init__()
        self.time = (time_width, time_stripes)
        self.freq = (freq_width, freq_stripes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, channels, frames, bands)."""
        if not self.training:
            return x
        keep = torch.ones_like(x[:, :1])
        for dim, (width, stripes) in ((2, self.time), (3, self.freq)):
            total = x.shape[dim]
            positions = torch.arange(total, device=x.device)
            for _ in range(stripes):
                length = torch.randint(0, width + 1, (x.shape[0],), device=x.device).clamp(max=total)
                start = (torch.rand(x.shape[0], device=x.device) * (total - length + 1)).floor().long()
                stripe = (positions >= start[:, None]) & (positions < (start + length)[:, None])  # (batch, total)
                shape = (x.shape[0], 1, total, 1) if dim == 2 else (x.shape[0], 1, 1, total)
                keep = keep * (~stripe).reshape(shape).to(x.dtype)
        return x * keep
