"""Baseline configurations: a frozen dataclass per baseline, overridden by `--set key=value`.

Each baseline declares its settings as a frozen `Settings` dataclass whose type hints are the
contract: `--set` text is parsed by the field's type (`bool`, `int`, `float`, `str`, or a
`Literal` of the allowed choices), and a saved configuration (a checkpoint's) is checked the same
way. An unknown key or a bad value is one `LarbError` that lists every key with its type.

`Settings` is also a read-only `Mapping`, so a configuration reads as `config["lr"]`, spreads as
`{**config}` and is stored as `dict(config)` (checkpoints, `run.json`) like the plain dicts before it.
A key that is a Python keyword (`lambda`) is the field name with a trailing underscore (`lambda_`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from benchmark.errors import LarbError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

Device = Literal["auto", "cpu", "cuda"]
MixedPrecision = Literal["auto", "no", "fp16", "bf16"]
Size = Literal["full", "tiny"]
Optimizer = Literal["adam", "adamw"]
Schedule = Literal["plateau", "step", "warmup-cosine", "constant"]
EpochUnit = Literal["pairs", "clips"]
# what selects best.pt: validation mAP@10, or R@1 + R@5 + R@10 (Mei et al.; Tourbabin and Ben-Hur)
Selection = Literal["mAP@10", "recall-sum"]
ThresholdMode = Literal["abs", "rel"]
Retrieval = Literal["chunked", "faiss", "faiss-hnsw", "faiss-ivf"]


def _key(field_name: str) -> str:
    return field_name[:-1] if field_name.endswith("_") else field_name


@cache
def _types(cls: type) -> dict[str, Any]:
    """Key -> declared type, resolved from the (string) annotations once per class."""
    hints = get_type_hints(cls)
    return {_key(f.name): hints[f.name] for f in dataclasses.fields(cls)}


def _type_name(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return "|".join(str(choice) for choice in get_args(kind))
    return kind.__name__


def _expected(kind: Any) -> str:
    """What a field takes, in words: "one of pairs|clips", "an int", "a bool (true or false)"."""
    if get_origin(kind) is Literal:
        return f"one of {_type_name(kind)}"
    return {bool: "a bool (true or false)", int: "an int", float: "a finite float"}.get(kind, "a string")


def _check(kind: Any, value: Any) -> Any:
    """`value` as a `kind`, or ValueError: a float field takes an int, nothing else is coerced."""
    if get_origin(kind) is Literal:
        if value not in get_args(kind) or isinstance(value, bool):
            raise ValueError(value)
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ValueError(value)
    if kind is float and not math.isfinite(value):
        raise ValueError(value)
    return value


def _parse_text(kind: Any, text: str) -> Any:
    """`--set` text as a `kind` (a Literal's choices are parsed as their own type)."""
    if get_origin(kind) is Literal:
        for choice in get_args(kind):
            if str(choice) == text.strip():
                return choice
        raise ValueError(text)
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise ValueError(text)
        return lowered in _TRUE
    if kind in (int, float):
        return _check(kind, kind(text))
    return text


@dataclasses.dataclass(frozen=True)
class Settings(Mapping[str, Any]):
    """The base of every baseline's settings: typed fields, read as a mapping."""

    def __getitem__(self, key: str) -> Any:
        if key not in _types(type(self)):
            raise KeyError(key)
        return getattr(self, key + "_" if key + "_" in self.__dataclass_fields__ else key)

    def __iter__(self) -> Iterator[str]:
        return iter(_types(type(self)))

    def __len__(self) -> int:
        return len(_types(type(self)))

    @classmethod
    def described_keys(cls) -> str:
        """Every key with its type, for error messages: `batch_size (int), device (auto|cpu|cuda), ...`."""
        return ", ".join(f"{key} ({_type_name(kind)})" for key, kind in sorted(_types(cls).items()))

    def _unknown(self, key: str, where: str, path: str | Path | None) -> LarbError:
        return LarbError(f"{where}unknown setting {key!r}.", path=path,
                         fix=f"use one of: {self.described_keys()}.")

    def _bad(self, key: str, value: Any, where: str, path: str | Path | None) -> LarbError:
        kind = _types(type(self))[key]
        return LarbError(f"{where}{key}={value}: expected {_expected(kind)}.", path=path,
                         fix=f"write e.g. {key}={self[key]}; the settings are: {self.described_keys()}.")

    def _with(self, changes: dict[str, Any]) -> Settings:
        fields = self.__dataclass_fields__
        return dataclasses.replace(self, **{k + "_" if k + "_" in fields else k: v for k, v in changes.items()})

    def updated(self, values: Mapping[str, Any], *, path: str | Path | None = None) -> Settings:
        """These settings with `values` (a saved configuration: checkpoint, reproduce link), each
        checked against its declared type."""
        types = _types(type(self))
        changes = {}
        for key, value in values.items():
            if key not in types:
                raise self._unknown(key, "", path)
            try:
                changes[key] = _check(types[key], value)
            except ValueError:
                raise self._bad(key, value, "", path) from None
        return self._with(changes)

    def overridden(self, assignments: Sequence[str]) -> Settings:
        """These settings with `key=value` strings (`--set`), each parsed by its field's type."""
        types = _types(type(self))
        changes = {}
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            key = key.strip()
            if not sep or not key:
                raise LarbError(f"--set {assignment!r} is not key=value.", fix="write e.g. --set lr=0.001.")
            if key not in types:
                raise self._unknown(key, "--set: ", None)
            try:
                changes[key] = _parse_text(types[key], text)
            except ValueError:
                raise self._bad(key, text, "--set ", None) from None
        return self._with(changes)


def apply_overrides(defaults: Settings, assignments: Sequence[str]) -> Settings:
    """`defaults` updated by `key=value` strings, each parsed to its declared type."""
    return defaults.overridden(assignments)


def resolve_device(config: Mapping[str, Any]) -> str:
    """The torch device of `device=auto|cpu|cuda`: auto is CUDA when one is visible."""
    device = config["device"]
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise LarbError(f"device={device!r} is not one of auto, cpu, cuda.", fix="use --set device=auto.")
    return device
