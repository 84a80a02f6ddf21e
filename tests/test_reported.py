"""Reported paper figures beside reproduced runs: matching a submission's declared baselines to a
reported configuration, the checks on reported.yaml, and the leaderboard's reported table."""

from __future__ import annotations

import itertools
import re

import pytest
import yaml
from conftest import PAIR, SHARED, SINGLE
from conftest import reported_member as _member

from baselines.registry import get_baseline
from benchmark.reported import REPORTED_ONLY_TASKS, load_reported
from benchmark.tasks import TASKS


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
        assert set(settings) <= set(spec.declared_settings(spec.defaults)), system
        if settings.get("stage") == 2:
            settings = {**settings, "distill_from": "stage1/best.pt"}  # stage 2 must name its teachers
        config = spec.defaults.updated(settings)  # checks each value against its declared type
        spec.parameter_counts(config)  # validates the values (unknown loss, tagger, encoder, stage)
        for key, value in settings.items():
            assert type(value) is type(spec.defaults[key]), (system, key)


# -- every figure of ../shared/notes/seed-papers.md is in reported.yaml --------------------------

SEED_PAPERS = SHARED / "notes" / "seed-papers.md"
CL, CLA, AC, ACA = "clotho-v2.1/evaluation", "clotho-v2.1/evaluation-a2t", "audiocaps-v1/test", "audiocaps-v1/test-a2t"
RECALLS = ("R@1", "R@5", "R@10")
UNIFORMITY = ("sigma text", "sigma audio", "sigma uniform", "sigma Gaussians", "h text", "h audio", "h uniform",
              "h Gaussians")


def _by_test_set(test_set_column: int, clotho: str, audiocaps: str):
    return lambda row: clotho if row[test_set_column] == "Clotho" else audiocaps


# (paper section, table) -> (the source's author, and per column group: the first column, the task
# (or a function of the row giving it), the figures' names, metrics or diagnostics, and the divisor
# that makes them fractions: 100 for a table printed in %)
LAYOUTS = {
    (1, 1): ("Pellegrini", [(2, CL, ("mAP@10", *RECALLS), "metrics", 1),
                            (6, "dcase2022-task6b/challenge-evaluation", ("mAP@10", *RECALLS), "metrics", 1)]),
    (2, 1): ("Primus", [(3, CL, ("mAP@10", *RECALLS), "metrics", 100), (7, AC, ("mAP@10", *RECALLS), "metrics", 100)]),
    (2, 2): ("Primus", [(2, CL, ("mAP@10", *RECALLS), "metrics", 100)]),
    (3, 3): ("Deshmukh", [(4, _by_test_set(3, CL, AC), ("mAP@10", *RECALLS, "R@50"), "metrics", 100),
                          (9, _by_test_set(3, CLA, ACA), ("mAP@10", *RECALLS, "R@50"), "metrics", 100)]),
    (3, 4): ("Deshmukh", [(2, _by_test_set(1, CL, AC), ("mAP@10", "R@1"), "metrics", 100),
                          (4, _by_test_set(1, CLA, ACA), ("mAP@10", "R@1"), "metrics", 100)]),
    (4, 1): ("Park", [(2, CL, (*RECALLS, "mAP@10"), "metrics", 100)]),
    (5, 1): ("Tourbabin", [(1, AC, RECALLS, "metrics", 100), (4, ACA, RECALLS, "metrics", 100)]),
    (5, 2): ("Tourbabin", [(1, AC, RECALLS, "metrics", 100), (4, ACA, RECALLS, "metrics", 100)]),
    (5, 3): ("Tourbabin", [(1, AC, UNIFORMITY, "diagnostics", 1)]),
    (5, 4): ("Tourbabin", [(1, AC, RECALLS, "metrics", 100), (4, ACA, RECALLS, "metrics", 100),
                           (7, AC, ("h audio", "h text"), "diagnostics", 1)]),
}


def _seed_tables(text: str) -> dict[tuple[int, int], list[list[str]]]:
    """Each markdown table under 'Table N (' in its paper's section, as rows of cells (no header);
    the CS224N Table 2, printed as a sentence, as rows in the shape of its Table 1."""
    found: dict[tuple[int, int], list[list[str]]] = {}
    section = table = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"## (\d)\. ", line):
            section, table = int(m.group(1)), None
        if titles := re.findall(r"Table (\d) \(", line):
            table = int(titles[-1])
        if line.startswith("|") and table is not None and not lines[i - 1].startswith("|"):
            block = [row for row in itertools.takewhile(lambda r: r.startswith("|"), lines[i:])]
            found[(section, table)] = [[c.strip() for c in row.strip().strip("|").split("|")] for row in block[2:]]
            table = None
    sentence = text[text.index("Table 2 (fine-tuned encoders"):].split("\n\n")[0]
    number = r"(\d+\.\d+)"
    found[(5, 2)] = [[dim, *figures] for dim, *figures in re.findall(
        rf"(\d+)(?: \(Mei et al\.\))?: T-A {number} / {number} / {number}, A-T {number} / {number} / {number}",
        sentence)]
    return found


@pytest.mark.skipif(not SEED_PAPERS.exists(), reason="../shared/notes/seed-papers.md is not present")
def test_every_figure_of_the_seed_papers_tables_is_reported_with_its_table_as_source():
    tables = _seed_tables(SEED_PAPERS.read_text("utf-8"))
    rows_per_table = {key: len(rows) for key, rows in tables.items()}
    assert rows_per_table == {(1, 1): 6, (2, 1): 10, (2, 2): 5, (3, 3): 10, (3, 4): 4, (4, 1): 8, (5, 1): 5,
                              (5, 2): 2, (5, 3): 5, (5, 4): 4}, "a table of seed-papers.md was not read whole"
    reported = load_reported()
    for (section, number), rows in tables.items():
        author, groups = LAYOUTS[(section, number)]
        for row in rows:
            for first, task, names, kind, scale in groups:
                task_id = task(row) if callable(task) else task
                wanted = {name: round(float(cell) / scale, 6) for name, cell in zip(names, row[first:], strict=False)
                          if cell != "-"}
                sources = [e for e in reported[task_id]
                           if author in e.source and re.search(rf"\bTable {number}\b", e.source)]
                assert any(all(getattr(e, kind).get(k) == v for k, v in wanted.items()) for e in sources), (
                    f"{author} Table {number}, row {row[:3]}: {wanted} is not in reported.yaml under {task_id}")


def test_the_challenge_evaluation_set_is_never_mixed_with_clotho_evaluation():
    """Pellegrini's two columns are two test sets: the DCASE 2022 challenge one is reported-only."""
    reported = load_reported()
    challenge = reported["dcase2022-task6b/challenge-evaluation"]
    assert "dcase2022-task6b/challenge-evaluation" in REPORTED_ONLY_TASKS
    assert "dcase2022-task6b/challenge-evaluation" not in TASKS
    assert all("challenge evaluation" in e.source for e in challenge)
    assert not any("challenge evaluation" in e.source for e in reported["clotho-v2.1/evaluation"])
    with pytest.raises(ValueError, match="neither registered tasks"):
        load_reported(yaml.safe_dump({"dcase2022/eval": [{"system": "x", "source": "s", "training_data": "t",
                                                          "metrics": {"mAP@10": 0.2}}]}))


def test_a_row_pinned_to_its_training_data_matches_only_runs_with_exactly_that_data():
    rows = {e.system: e for e in load_reported()["clotho-v2.1/evaluation"]}
    plain, pretrained = rows["PaSST-MPNet-tags (lambda 0.8, margin 0.4)"], rows[
        "PaSST-MPNet-tags-AC (AudioCaps pre-training, then Clotho)"]
    member = [_member("passt-mpnet-tags", tagger="passt", text_encoder="all-mpnet-base-v2", margin=0.4)]
    member[0]["settings"]["lambda"] = 0.8

    def run(*splits: str) -> dict:
        return {"baselines": member, "training_data": [dict(zip(("dataset", "split"), s.rsplit("/", 1), strict=True))
                                                       for s in splits]}

    clotho = ("clotho-v2.1/development", "clotho-v2.1/validation")
    assert plain.reproduced_by(run(*clotho)) and not pretrained.reproduced_by(run(*clotho))
    with_audiocaps = run("audiocaps/train", "audiocaps/val", *clotho)
    assert pretrained.reproduced_by(with_audiocaps) and not plain.reproduced_by(with_audiocaps)
    margin = rows["PaSST-MPNet-tags, margin 1.0"]
    assert not margin.reproduced_by(run(*clotho))  # margin 0.4 is not the ablation's 1.0
