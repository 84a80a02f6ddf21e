"""The registered baselines, by name (`larb baseline list`)."""

from __future__ import annotations

from baselines.models import passt_mpnet_tags
from baselines.spec import BaselineSpec
from benchmark.errors import LarbError

BASELINES: dict[str, BaselineSpec] = {spec.name: spec for spec in (passt_mpnet_tags.SPEC,)}


def get_baseline(name: str) -> BaselineSpec:
    try:
        return BASELINES[name]
    except KeyError:
        raise LarbError(f"unknown baseline {name!r}.",
                        fix=f"use one of {sorted(BASELINES)} (see 'larb baseline list').") from None
