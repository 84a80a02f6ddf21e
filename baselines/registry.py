"""The registered baselines, by name (`larb baseline list`): declarations loaded when asked for.

Every baseline, LARB's own and an outside package's alike, is an entry point of the group
`larb.baselines`: its name and `"module:attr"` naming a `BaselineSpec`. Nothing is imported
until a baseline is used, so asking for one imports its module alone, and the registry imports
no model (which is what keeps `models -> ... -> registry` from closing a loop).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint

from baselines.spec import BaselineSpec
from benchmark import plugins
from benchmark.errors import LarbError

ENTRY_POINT_GROUP = "larb.baselines"


@cache
def _declared() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in plugins.declared(ENTRY_POINT_GROUP):
        if point.name in found and found[point.name].value != point.value:
            raise ValueError(f"two packages declare the baseline {point.name!r}: {found[point.name].value} "
                             f"and {point.value}")
        found[point.name] = point
    return found


def baseline_names() -> list[str]:
    """The names of every declared baseline, sorted."""
    return sorted(_declared())


def get_baseline(name: str) -> BaselineSpec:
    """The baseline called `name`, its module imported now."""
    point = _declared().get(name)
    if point is None:
        raise LarbError(f"unknown baseline {name!r}.",
                        fix=f"use one of {baseline_names()} (see 'larb baseline list').")
    spec = point.load()
    if not isinstance(spec, BaselineSpec) or spec.name != name:
        raise ValueError(f"the entry point {name} = {point.value} is not the BaselineSpec named {name!r}")
    return spec


def all_baselines() -> list[BaselineSpec]:
    """Every declared baseline (imports all their modules)."""
    return [get_baseline(name) for name in baseline_names()]
