"""The registered baselines, by name (`larb baseline list`)."""

from __future__ import annotations

from baselines.models import clap_cnn14_htsat, panns_sbert, passt_distilled, passt_mpnet_tags
from baselines.spec import BaselineSpec
from benchmark.errors import LarbError

_SPECS = (passt_mpnet_tags.SPEC, *panns_sbert.SPECS, clap_cnn14_htsat.SPEC, passt_distilled.SPEC)
BASELINES: dict[str, BaselineSpec] = {spec.name: spec for spec in _SPECS}
if len(BASELINES) != len(_SPECS):
    raise ValueError("two registered baselines share a name")


def get_baseline(name: str) -> BaselineSpec:
    try:
        return BASELINES[name]
    except KeyError:
        raise LarbError(f"unknown baseline {name!r}.",
                        fix=f"use one of {sorted(BASELINES)} (see 'larb baseline list').") from None
