"""Baseline configurations: declared defaults, overridden on the command line by `--set key=value`.

Values are parsed to the type of the default they replace, so `--set lambda=0` is a float and
`--set epochs=5` an int; an unknown key or an unparsable value is a user error naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.errors import LarbError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(key: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(text)
            return lowered in _TRUE
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise LarbError(f"--set {key}={text}: expected a {type(default).__name__} like {default!r}.",
                        fix=f"write --set {key}={default}.") from None
    return text


def apply_overrides(defaults: Mapping[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """`defaults` updated by `key=value` strings, each parsed to the type of its default."""
    config = dict(defaults)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise LarbError(f"--set {assignment!r} is not key=value.", fix="write e.g. --set lambda=0.")
        if key not in defaults:
            raise LarbError(f"unknown setting {key!r}.", fix=f"use one of: {', '.join(sorted(defaults))}.")
        config[key] = _parse(key, value, defaults[key])
    return config


def resolve_device(config: Mapping[str, Any]) -> str:
    """The torch device of `device=auto|cpu|cuda`: auto is CUDA when one is visible."""
    device = config["device"]
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise LarbError(f"device={device!r} is not one of auto, cpu, cuda.", fix="use --set device=auto.")
    return device
