"""`larb baseline card`: every paper setting names a real key whose default is the paper's value
(or says why not), and the committed cards in docs/cards are the declarations' current rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from baselines.cards import card, status
from baselines.registry import all_baselines, baseline_names, get_baseline

CARDS = Path(__file__).resolve().parents[1] / "docs" / "cards"
PAPER_BASELINES = ("passt-mpnet-tags", "panns-sbert-cnn14", "clap-cnn14-htsat", "passt-distilled")


@pytest.mark.parametrize("name", PAPER_BASELINES)
def test_each_paper_setting_is_a_real_key_and_its_default_is_the_papers(name):
    spec = get_baseline(name)
    assert len(spec.paper_settings) >= 10
    for setting in spec.paper_settings:
        assert setting.paper and setting.where, setting
        if setting.key:
            assert setting.key in spec.defaults, f"{name}: {setting.key} is not a setting"
        if setting.value is not None:
            here = spec.defaults[setting.key]
            assert here == setting.value or setting.differs, f"{name}: {setting.key} = {here}, paper {setting.value}"


def test_a_default_that_leaves_the_paper_shows_as_an_undeclared_difference():
    spec = get_baseline("passt-mpnet-tags")
    margin = next(s for s in spec.paper_settings if s.key == "margin")
    moved = type(spec)(**{**spec.__dict__, "defaults": spec.defaults.updated({"margin": 1.0})})
    assert status(spec, margin) == "as stated" and status(moved, margin) == "differs: UNDECLARED"


@pytest.mark.parametrize("name", baseline_names())
def test_the_committed_card_is_the_current_rendering(name, run_cli):
    code, out, _ = run_cli("baseline", "card", name)
    assert code == 0 and out == card(get_baseline(name))
    regenerate = f"larb baseline card {name} > docs/cards/{name}.md"
    assert (CARDS / f"{name}.md").read_text("utf-8") == out, f"stale card: {regenerate}"


def test_the_readme_links_every_card():
    readme = (CARDS.parents[1] / "README.md").read_text("utf-8")
    assert all(f"docs/cards/{spec.name}.md" in readme for spec in all_baselines())
