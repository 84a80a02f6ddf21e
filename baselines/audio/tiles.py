"""Encoding a waveform longer than the encoder's window: the mean over fixed tiles."""

from __future__ import annotations

from collections.abc import Callable

import torch


def tile_mean(encode: Callable[[torch.Tensor], torch.Tensor], waves: torch.Tensor, tile: int,
              fractions: torch.Tensor | None) -> torch.Tensor:
    """salsa's `WindowedPrediction`: non-overlapping tiles of `tile` samples, encoded as one batch,
    averaged over the tiles that hold real audio (the first ceil(fraction x tiles), at least one)."""
    batch, samples = waves.shape
    if samples <= tile:
        return encode(waves)
    count = samples // tile
    tiles = waves[:, : count * tile].reshape(batch * count, tile)
    out = encode(tiles).reshape(batch, count, -1)
    if fractions is None:
        return out.mean(dim=1)
    used = torch.ceil(fractions.to(out.device).float() * count).clamp(1, count)
    mask = (torch.arange(count, device=out.device)[None, :] < used[:, None]).to(out.dtype)
    return (out * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)
