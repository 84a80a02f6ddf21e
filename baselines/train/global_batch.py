"""The whole global batch on every process, for losses whose negatives are the other pairs.

Each process embeds its slice `[rank::world]` of a global batch. A contrastive or triplet loss on
the slice alone would see 1/world of the negatives and differ from a one-process run with the
same batch size; so the slices are gathered, put back in the global order, and every process
computes the loss of the whole batch. Only the process's own slice carries gradients (the others
are gathered as plain tensors, as in OpenCLIP's `gather_features`), and DDP averages the
gradients over processes, so the loss is scaled by `world` before the backward pass: the
averaged gradient is then exactly the one-process gradient (up to float summation order).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _gather(local: torch.Tensor, size: int, world: int, rank: int) -> list[torch.Tensor]:
    """Every process's slice of one tensor (own slice kept with its gradient)."""
    padded = torch.zeros((size, *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[:len(local)] = local.detach()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    parts[rank] = local
    return parts


def global_batch(tensors: list[torch.Tensor], batch_size: int, world: int, rank: int) -> list[torch.Tensor]:
    """The global batch of `batch_size` rows from each process's `[rank::world]` slice, in the
    order a single process would hold it. The tensors must be on the process's device (NCCL
    gathers device tensors only); the batch's indices need no gathering, every process has them."""
    counts = [len(range(r, batch_size, world)) for r in range(world)]
    size = max(counts)
    # row i of the concatenated slices is global row order[i]; argsort puts them back
    order = torch.cat([torch.arange(r, batch_size, world) for r in range(world)])
    back = torch.argsort(order).to(tensors[0].device)
    out = []
    for tensor in tensors:
        parts = _gather(tensor, size, world, rank)
        joined = torch.cat([part[:count] for part, count in zip(parts, counts, strict=True)])
        out.append(joined[back.to(joined.device)])
    return out
