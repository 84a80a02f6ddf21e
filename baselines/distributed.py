"""Which share of the work this process does when a launcher starts several.

`accelerate launch --multi_gpu --num_processes N` (or `torchrun --nproc_per_node N`) starts N
copies of the same command with RANK / WORLD_SIZE in their environment. Every copy runs the
whole program; the places that divide work (embedding extraction, the training loop) ask here for
their rank, and only the main process writes run files. Without a launcher this is one process
and nothing here imports Accelerate or starts a process group.

On a machine without CUDA the process group is Accelerate's CPU one (gloo). Note: Accelerate's
`accelerate launch --cpu --num_processes N` starts one process unless given an MPI host file
(`--mpirun_hostfile`); the launcher that starts N CPU processes is `--multi_gpu` on a machine
without GPUs (torch.distributed.run underneath), which is what the tests use.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    """The number of processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _state() -> Any:
    """Accelerate's process state, created on first use: gloo on CPU-only machines, NCCL on GPUs."""
    import torch
    from accelerate import PartialState

    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true" or not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def rank() -> int:
    return _state().process_index if world_size() > 1 else 0


def is_main_process() -> bool:
    return rank() == 0


def wait_for_everyone() -> None:
    """A barrier across the launched processes (nothing when there is one)."""
    if world_size() > 1:
        _state().wait_for_everyone()
