"""The registries are declarations loaded lazily: baselines through `larb.baselines`, assets through
`larb.assets` (see test_assets.py for the listing on a core install)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from baselines.registry import all_baselines, baseline_names, get_baseline
from benchmark.errors import LarbError


def test_every_declared_baseline_loads_under_its_own_name():
    assert baseline_names() == sorted(spec.name for spec in all_baselines())
    assert {"passt-mpnet-tags", "panns-sbert-cnn14", "panns-sbert-resnet38", "panns-sbert-wavegram-logmel-cnn14",
            "clap-cnn14-htsat", "passt-distilled"} <= set(baseline_names())


def test_asking_for_one_baseline_imports_its_module_alone():
    code = ("import json, sys\n"
            "from baselines.registry import get_baseline\n"
            "get_baseline('passt-mpnet-tags')\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('baselines.models.'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == ["baselines.models.passt_mpnet_tags", "baselines.models.tags_head"]


def test_an_unknown_baseline_lists_the_known_ones():
    with pytest.raises(LarbError, match="unknown baseline 'nope'.*passt-mpnet-tags"):
        get_baseline("nope")


def test_every_declared_dataset_loads_a_builder_of_that_name():
    pytest.importorskip("datasets")
    from datasets_builders import builder_class, dataset_names
    from datasets_builders.base import LarbBuilder

    assert dataset_names()[:5] == ["clotho", "audiocaps", "wavtext5k", "wavcaps", "macs"]
    for name in dataset_names():
        cls = builder_class(name)
        assert issubclass(cls, LarbBuilder) and cls.NAME == name
