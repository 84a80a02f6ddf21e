"""Hugging Face `datasets` builders for the LARB datasets, their download helpers and scrapers.

The builders are declarations, as the baselines and assets are: entry points of the group
`larb.datasets`, each a dataset name and `"module:Class"`, imported only when that dataset is
built or described (so listing them is cheap, and an outside package can add its own).
Use `datasets_builders.build.build(...)` or `larb data build NAME`.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

from benchmark import plugins
from benchmark.errors import LarbError

if TYPE_CHECKING:
    from datasets_builders.base import LarbBuilder

ENTRY_POINT_GROUP = "larb.datasets"
# The order `larb data list` shows LARB's own datasets in; outside ones follow by name.
_OWN_ORDER = ("clotho", "audiocaps", "wavtext5k", "wavcaps", "macs")


@cache
def _declared() -> dict[str, EntryPoint]:
    points = {point.name: point for point in plugins.declared(ENTRY_POINT_GROUP)}
    order = [n for n in _OWN_ORDER if n in points] + sorted(set(points) - set(_OWN_ORDER))
    return {name: points[name] for name in order}


def dataset_names() -> list[str]:
    """The declared dataset names, LARB's own first."""
    return list(_declared())


def builder_class(name: str) -> type[LarbBuilder]:
    """The builder class of dataset `name`, its module imported now."""
    point = _declared().get(name)
    if point is None:
        raise LarbError(f"unknown dataset {name!r}.",
                        fix=f"choose one of {', '.join(dataset_names())} (see 'larb data list').")
    return point.load()
