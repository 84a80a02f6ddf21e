"""The published JSON Schemas shipped in `benchmark/schemas/`."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def load(name: str) -> dict:
    """A schema by file name, e.g. `result.schema.json`."""
    return json.loads(resources.files("benchmark").joinpath("schemas", name).read_text("utf-8"))
