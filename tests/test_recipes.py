"""`larb baseline recipe`: every recipe of every baseline runs end to end on `demo` with tiny
settings (the splits stood in for by shares of `demo-train`), and the recipes say what the
papers did (Clotho selection on validation, CLAP's one model on all its data, Pellegrini's
AudioCaps pre-training and two-seed ensemble, Primus's stage 1 before stage 2)."""

from __future__ import annotations

import shlex

import pytest
from conftest import MIRROR, PANNS_TINY, require_shared, split_task

from baselines.recipes import (
    AUDIOCAPS_TRAIN,
    AUDIOCAPS_VAL,
    CLOTHO_DEVELOPMENT,
    CLOTHO_VALIDATION,
    WAVTEXT5K,
    recipes,
)

COMMON = ["num_workers=0", "device=cpu", "epochs=1", "val_fraction=0.25"]  # 12 of a 48-clip share held out
TINY = {
    "passt-mpnet-tags": ["tagger=mn04", "text_encoder=all-MiniLM-L6-v2", *COMMON],
    "panns-sbert-cnn14": [*PANNS_TINY, "clip_seconds=1", "batch_size=32", *COMMON],
    "clap-cnn14-htsat": ["size=tiny", "text_encoder=all-MiniLM-L6-v2", "text_pooling=mean", "htsat_checkpoint=none",
                         "cnn14_seconds=2", "htsat_seconds=1", "eval_seconds=2", "embed_dim=32", "batch_size=16",
                         "epoch_unit=clips", *COMMON],
    "resnet38-bert-ntxent": ["size=tiny", "text_encoder=tiny-roberta", "clip_seconds=1", "batch_size=32",
                             "joint_dim=16", *COMMON],  # a random word-hashing tower: the commands, not learning
    "passt-distilled": ["size=tiny", "text_encoder=all-MiniLM-L6-v2", "text_pooling=mean", "clip_seconds=2",
                        "tile_seconds=1", "audio_checkpoint=none", "batch_size=16", "epoch_unit=clips",
                        "warmup_epochs=0.5", *COMMON],
}
SOURCES = (CLOTHO_DEVELOPMENT, CLOTHO_VALIDATION, AUDIOCAPS_TRAIN, AUDIOCAPS_VAL, WAVTEXT5K)


def test_a_validation_share_too_small_to_rank_is_refused_before_training(stand_ins, run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    code, _, err = run_cli("baseline", "train", "passt-mpnet-tags", "--train-task", stand_ins[AUDIOCAPS_TRAIN],
                           "--val-task", "holdout", "--output", tmp_path / "run", "--set", "tagger=mn04",
                           "--set", "text_encoder=all-MiniLM-L6-v2")
    assert code == 2 and "validation data has 5 audio files" in err and "val_fraction" in err
    assert not (tmp_path / "run").exists()


def test_the_recipes_follow_the_papers_protocols():
    tags = {r.system: r for r in recipes("passt-mpnet-tags") if r.task == "clotho-v2.1/evaluation"}
    plain = tags["PaSST-MPNet-tags (lambda 0.8, margin 0.4)"].text()
    assert "--train-task tasks/clotho-development --val-task tasks/clotho-validation" in plain
    assert "--set lambda=0.8" in plain and "larb evaluate" in plain and "--task clotho-v2.1/evaluation" in plain
    ensemble = tags["Ensemble of 2 PaSST-MPNet-tags-AC (two seeds, scores averaged)"]
    trains = [step for step in ensemble.steps if step[:2] == ("baseline", "train")]
    assert len(trains) == 4  # AudioCaps pre-training, then Clotho, for each of two seeds
    assert all("schedule=constant" in step and "epochs=100" in step for step in trains[::2])
    assert all("--init-from" in step for step in trains[1::2])
    assert ("baseline", "ensemble") == ensemble.steps[-2][:2] and "score-mean" in ensemble.steps[-2]
    zero_shot = tags["PaSST-MPNet-tags, lambda 0 (tag embeddings only, nothing learned)"]
    assert [step[:2] for step in zero_shot.steps] == [("baseline", "run"), ("evaluate", zero_shot.submission)]
    clap = recipes("clap-cnn14-htsat")
    assert {r.task for r in clap} == {"clotho-v2.1/evaluation", "clotho-v2.1/evaluation-a2t", "audiocaps-v1/test",
                                      "audiocaps-v1/test-a2t"}
    runs = {step[step.index("--output") + 1] for r in clap for step in r.steps if step[:2] == ("baseline", "train")}
    assert len(runs) == 1  # one model for both test sets, trained on all four sources
    a2t = next(r for r in clap if r.task == "clotho-v2.1/evaluation-a2t")
    assert "--audio tasks/clotho-evaluation" in a2t.text() and "HTSAT_AudioSet_Saved_1.ckpt" in a2t.text()
    distilled = [r for r in recipes("passt-distilled") if any("stage=2" in step for step in r.steps)]
    assert distilled and all("stage=1" in r.steps[0] and "distill_from=" in " ".join(r.steps[1]) for r in distilled)


@pytest.mark.parametrize("baseline", sorted(TINY))
def test_every_printed_line_is_a_command_larb_accepts_and_each_split_is_built_once(baseline, run_cli):
    from benchmark.cli import build_parser

    code, out, _ = run_cli("baseline", "recipe", baseline)
    commands = [shlex.split(line)[1:] for line in out.splitlines() if line.startswith("larb ")]
    assert code == 0 and commands
    parser = build_parser()
    for command in commands:
        parser.parse_args(command)  # argparse exits (SystemExit) on a flag the CLI does not take
    outputs = [c[c.index("--output") + 1] for c in commands if c[:2] == ["data", "build"]]
    assert outputs and len(outputs) == len(set(outputs))  # a second build into one folder would be refused


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """A share of demo-train for each split a recipe trains or selects on."""
    require_shared(MIRROR / "all-MiniLM-L6-v2" / "model.safetensors")
    folders = split_task("demo-train", tmp_path_factory.mktemp("splits"), [s.folder.split("/")[1] for s in SOURCES])
    return dict(zip(SOURCES, folders, strict=True))


@pytest.mark.parametrize("baseline", sorted(TINY))
def test_every_recipe_runs_end_to_end_on_demo(baseline, stand_ins, run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    monkeypatch.chdir(tmp_path)
    found = recipes(baseline, folder=lambda source: str(stand_ins[source]), extra=TINY[baseline],
                    evaluate_on=lambda task_id: "demo")
    assert found, f"no reported row links {baseline}"
    done: set[tuple[str, ...]] = set()
    for recipe in found:
        for step in recipe.steps:
            if step in done:  # a run two rows share (its second train would only resume)
                continue
            code, out, err = run_cli(*step)
            assert code == 0, f"{recipe.system}: larb {shlex.join(step)}\n{err}"
            done.add(step)
        assert "mAP@10" in out, recipe.system  # the last step scored the row's submission
