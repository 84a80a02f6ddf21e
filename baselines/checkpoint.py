"""Checkpoints of trained heads: the weights plus everything needed to use them honestly.

A checkpoint records the baseline, its full configuration and the training data it used
(declared in the submission's metadata), so `larb baseline run --checkpoint` needs nothing else.
Files hold only tensors and plain Python values and load with `weights_only=True`.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from benchmark.atomic import atomic_write_bytes
from benchmark.errors import LarbError

FORMAT = "larb-baseline-checkpoint/1"


def save(path: Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a crash leaves the previous checkpoint, never half a file."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load(path: str | Path, baseline: str | None = None) -> dict[str, Any]:
    """A checkpoint written by `save`, checked to belong to `baseline`."""
    path = Path(path)
    if not path.is_file():
        raise LarbError("checkpoint not found.", path=path, fix="pass the best.pt written by 'larb baseline train'.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError) as exc:
        raise LarbError(f"not a readable checkpoint ({type(exc).__name__}).", path=path,
                        fix="pass the best.pt written by 'larb baseline train'.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LarbError("not a LARB baseline checkpoint.", path=path,
                        fix="pass the best.pt written by 'larb baseline train'.")
    if not isinstance(payload.get("baseline"), str):
        raise LarbError("this checkpoint does not say which baseline it is of (no 'baseline' key).", path=path,
                        fix="pass the best.pt written by 'larb baseline train'.")
    if baseline is not None and payload["baseline"] != baseline:
        raise LarbError(f"this checkpoint is of baseline {payload['baseline']!r}, not {baseline!r}.", path=path,
                        fix=f"run it as 'larb baseline run {payload['baseline']} ...'.")
    return payload
