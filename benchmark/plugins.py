"""Entry points (`larb.commands`, `larb.assets`, `larb.baselines`, `larb.datasets`, `larb.demo`),
read once per process.

`importlib.metadata.entry_points` scans every installed distribution on each call (about 60 ms
in a full environment); the CLI, the asset registry and the baseline registry each need it, so
one scan is shared.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any


@cache
def _all() -> Any:
    """Every entry point, from one scan (3.11's SelectableGroups and 3.12's EntryPoints both `select`)."""
    return entry_points()


def declared(group: str) -> list[EntryPoint]:
    """The entry points of `group`, sorted by name."""
    return sorted(_all().select(group=group), key=lambda point: point.name)
