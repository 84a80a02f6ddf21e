"""Hugging Face `datasets` builders for the LARB datasets, their download helpers and scrapers.

`DATASETS` maps a dataset name to its builder class (imported lazily, so listing is cheap).
Use `datasets_builders.build.build(...)` or `larb data build NAME`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from benchmark.errors import LarbError

if TYPE_CHECKING:
    from datasets_builders.base import LarbBuilder

DATASETS: dict[str, str] = {
    "clotho": "datasets_builders.clotho:ClothoBuilder",
    "audiocaps": "datasets_builders.audiocaps:AudioCapsBuilder",
    "wavtext5k": "datasets_builders.wavtext5k:WavText5KBuilder",
    "wavcaps": "datasets_builders.wavcaps:WavCapsBuilder",
    "macs": "datasets_builders.macs:MacsBuilder",
}


def builder_class(name: str) -> type[LarbBuilder]:
    """The builder class of dataset `name`."""
    try:
        target = DATASETS[name]
    except KeyError:
        raise LarbError(f"unknown dataset {name!r}.",
                        fix=f"choose one of {', '.join(DATASETS)} (see 'larb data list').") from None
    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)
