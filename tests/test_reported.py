"""Reported paper figures beside reproduced runs: matching a submission's declared baselines to a
reported configuration, the checks on reported.yaml, and the leaderboard's reported table."""

from __future__ import annotations

import pytest
import yaml
from conftest import PAIR, SINGLE
from conftest import reported_member as _member

from baselines.registry import get_baseline
from benchmark.reported import load_reported


@pytest.mark.parametrize("metadata, expected", [
    ({"baselines": [_member("panns-sbert-cnn14", loss="ntxent")]}, True),
    ({"baselines": [_member("panns-sbert-cnn14", loss="triplet-max")]}, False),
    ({"baselines": [_member("panns-sbert-resnet38", loss="ntxent")]}, False),
    ({"baselines": [{"name": "panns-sbert-cnn14", "settings": {}}]}, False),
    ({}, False),
    ({"baselines": [_member("panns-sbert-cnn14", loss="ntxent")] * 2, "ensemble_method": "score-mean"}, False),
])
def test_a_single_model_entry_matches_only_its_configuration(metadata, expected):
    assert SINGLE.reproduced_by(metadata) is expected


def test_an_ensemble_entry_matches_its_members_in_any_order_and_its_method():
    members = [_member("panns-sbert-cnn14", loss="triplet-max"), _member("panns-sbert-cnn14", loss="ntxent")]
    assert PAIR.reproduced_by({"baselines": members, "ensemble_method": "embedding-mean"})
    assert not PAIR.reproduced_by({"baselines": members, "ensemble_method": "score-mean"})
    twice = [_member("panns-sbert-cnn14", loss="ntxent")] * 2  # one member may not stand for two
    assert not PAIR.reproduced_by({"baselines": twice, "ensemble_method": "embedding-mean"})


@pytest.mark.parametrize("entry, message", [
    ({"system": "x", "source": "s", "training_data": "t", "metrics": {}, "figures": 1}, "unknown key"),
    ({"system": "x", "source": "s", "training_data": "t", "metrics": {"mAP@10": 23.4}}, "each in"),
    ({"system": "x", "source": "s", "training_data": "t", "metrics": {},
      "reproduce": [{"baseline": "a"}, {"baseline": "b"}]}, "needs ensemble_method"),
    ({"system": "x", "source": "s", "training_data": "t", "metrics": {}, "reproduce": [{"name": "a"}]},
     "each reproduce member"),
])
def test_reported_file_mistakes_are_named(entry, message):
    with pytest.raises(ValueError, match=message):
        load_reported(yaml.safe_dump({"demo": [entry]}))


def test_every_packaged_reproduce_link_names_registered_settings():
    """A typo here (e.g. loss 'nt-xent') would silently never match a run, so check every link."""
    links = [(entry.system, member) for entries in load_reported().values() for entry in entries
             for member in entry.members]
    assert {m["baseline"] for _, m in links} >= {"passt-mpnet-tags", "panns-sbert-cnn14", "clap-cnn14-htsat",
                                                 "passt-distilled"}
    for system, member in links:
        spec = get_baseline(member["baseline"])
        settings = member.get("settings", {})
        assert set(settings) <= set(spec.model_keys), system
        if settings.get("stage") == 2:
            settings = {**settings, "distill_from": "stage1/best.pt"}  # stage 2 must name its teachers
        config = spec.defaults.updated(settings)  # checks each value against its declared type
        spec.parameter_counts(config)  # validates the values (unknown loss, tagger, encoder, stage)
        for key, value in settings.items():
            assert type(value) is type(spec.defaults[key]), (system, key)
