"""The baseline framework without pretrained files: settings, embedding cache, the PaSST-MPNet-tags
head and loss, training (best checkpoint, exact resume), submission writing and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.functional import normalize

from baselines.config import apply_overrides
from baselines.embedding_cache import EmbeddingCache, cached_extract
from baselines.models.passt_mpnet_tags import DEFAULTS, SPEC, PasstMpnetTags, pellegrini_triplet
from baselines.models.tags_head import N_TAGS, TagsHead, head_parameter_count
from baselines.registry import all_baselines
from baselines.submission_writer import SubmissionInfo, write_submission
from baselines.task_features import TaskFeatures
from baselines.train import loop as training
from benchmark.errors import LarbError
from benchmark.groundtruth import captions_t2a
from benchmark.rankings import read_ranking
from benchmark.submission_folders import load_submission
from benchmark.tasks import folder_task

# -- settings ---------------------------------------------------------------------------------

def test_overrides_take_the_type_of_their_default():
    config = apply_overrides(DEFAULTS, ["lambda=0", "epochs=3", "tagger=mn04", "lr=2e-3"])
    assert config["lambda"] == 0.0 and isinstance(config["lambda"], float)
    assert config["epochs"] == 3 and isinstance(config["epochs"], int)
    assert config["tagger"] == "mn04" and config["lr"] == 2e-3
    assert DEFAULTS["lambda"] == 0.8  # the declaration is not mutated


@pytest.mark.parametrize("assignment, message", [
    ("nope=1", "unknown setting 'nope'"), ("epochs=ten", "epochs=ten: expected an int"),
    ("lr=1e400", "expected a finite float"), ("drop_last=maybe", "expected a bool"),
    ("schedule=cosine", "expected one of plateau|step|warmup-cosine"), ("lambda", "not key=value")])
def test_bad_overrides_are_one_error_listing_the_keys_with_their_types(assignment, message):
    with pytest.raises(LarbError, match=message) as caught:
        apply_overrides(DEFAULTS, [assignment])
    if "=" in assignment:
        assert "batch_size (int)" in str(caught.value) and "tagger (passt|cnn14|mn04)" in str(caught.value)
        assert str(caught.value).count("(") >= len(DEFAULTS)


def test_settings_are_frozen_typed_mappings_and_saved_values_are_checked():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.lr = 1.0  # type: ignore[misc]
    assert dict(DEFAULTS)["lambda"] == 0.8 and len(DEFAULTS) == len(dict(DEFAULTS)) == len(list(DEFAULTS))
    assert {**DEFAULTS, "lr": 2.0}["lr"] == 2.0
    assert DEFAULTS.updated({"epochs": 3, "lr": 1})["lr"] == 1.0  # an int where a float is declared
    for saved in ({"epochs": 3.5}, {"lambda": "0.8"}, {"drop_last": 1}, {"tagger": "vggish"}, {"old_key": 1}):
        with pytest.raises(LarbError, match="expected|unknown setting"):
            DEFAULTS.updated(saved, path="best.pt")
    with pytest.raises(KeyError):
        DEFAULTS["nope"]


def test_every_baseline_declares_its_settings_as_a_frozen_dataclass():
    for spec in all_baselines():
        assert dataclasses.is_dataclass(spec.defaults) and type(spec.defaults).__dataclass_params__.frozen
        for key, value in spec.defaults.items():  # each default round-trips through its own --set text
            text = str(value).lower() if isinstance(value, bool) else str(value)
            assert apply_overrides(spec.defaults, [f"{key}={text}"])[key] == value, (spec.name, key)


# -- embedding cache --------------------------------------------------------------------------

def _counting(calls: list[list[str]]):
    def compute(batch: list[str]) -> np.ndarray:
        calls.append(batch)
        return np.array([[len(item), ord(item[0])] for item in batch], dtype=np.float32)
    return compute


def test_second_extraction_computes_nothing(tmp_path):
    items = ["a", "bb", "a", "ccc", "dddd"]
    calls: list[list[str]] = []
    first, n_first = cached_extract(EmbeddingCache("enc", "sha256:1", "p", tmp_path), items, items,
                                    _counting(calls), 2, "test", progress=False)
    again, n_again = cached_extract(EmbeddingCache("enc", "sha256:1", "p", tmp_path), items, items,
                                    _counting(calls), 2, "test", progress=False)
    assert n_first == 4 and n_again == 0  # "a" twice is computed once
    assert sum(len(batch) for batch in calls) == 4
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[:, 0], [1, 2, 1, 3, 4])  # in the order asked


def test_interrupted_extraction_resumes_after_the_last_finished_batch(tmp_path):
    items = [f"item{i}" for i in range(7)]

    def crash_on_second_batch(batch: list[str]) -> np.ndarray:
        if batch[0] == "item3":
            raise KeyboardInterrupt
        return np.ones((len(batch), 2), dtype=np.float32)

    with pytest.raises(KeyboardInterrupt):
        cached_extract(EmbeddingCache("enc", "sha256:1", "p", tmp_path), items, items, crash_on_second_batch, 3,
                       "test", progress=False)
    calls: list[list[str]] = []
    _, computed = cached_extract(EmbeddingCache("enc", "sha256:1", "p", tmp_path), items, items,
                                 _counting(calls), 3, "test", progress=False)
    assert computed == 4 and calls[0][0] == "item3"


def test_cache_namespaces_do_not_mix(tmp_path):
    one = EmbeddingCache("enc", "sha256:1", "p", tmp_path)
    one.add(["k"], np.ones((1, 2)))
    assert "k" in EmbeddingCache("enc", "sha256:1", "p", tmp_path)
    assert "k" not in EmbeddingCache("enc", "sha256:2", "p", tmp_path)  # other checkpoint
    assert "k" not in EmbeddingCache("enc", "sha256:1", "q", tmp_path)  # other preprocessing


# -- head and loss ----------------------------------------------------------------------------

def test_head_follows_the_paper_formula():
    torch.manual_seed(0)
    tags = torch.randn(N_TAGS, 12)
    head = TagsHead(tags, mix=0.8)
    logits, sentences = 2 * torch.randn(5, N_TAGS), torch.randn(5, 12)
    audio, text = head(logits, sentences)
    tag_vector = normalize(torch.sigmoid(logits) @ normalize(tags, dim=-1), dim=-1)
    learned = normalize(head.projection(head.logit_norm(logits)), dim=-1)
    torch.testing.assert_close(audio, normalize(0.8 * learned + 0.2 * tag_vector, dim=-1))
    spread = torch.sqrt(sentences.var(1, unbiased=False, keepdim=True) + 1e-5)
    centred = (sentences - sentences.mean(1, keepdim=True)) / spread
    torch.testing.assert_close(text, normalize(centred, dim=-1))


def test_lambda_zero_is_the_tag_vector_with_nothing_to_train():
    tags = torch.randn(N_TAGS, 6)
    head = TagsHead(tags, mix=0.0)
    logits = torch.randn(3, N_TAGS)
    torch.testing.assert_close(head.embed_audio(logits), head.tag_vector(logits))
    assert not head.needs_training and head.trainable_parameter_count() == 0


def test_trainable_parameter_counts():
    # LayerNorm(527) affine + Linear(527 -> D): 2 * 527 + 527 * D + D
    assert head_parameter_count(768, 0.8) == 2 * 527 + 527 * 768 + 768 == 406_558
    assert head_parameter_count(384, 0.8) == 203_806
    assert SPEC.parameter_counts(DEFAULTS).trainable == 406_558


def test_triplet_loss_is_zero_once_every_impostor_is_beyond_the_margin():
    audio = torch.eye(4)
    assert float(pellegrini_triplet(audio, audio, torch.arange(4), margin=0.4)) == 0.0
    # A caption closer to another audio than to its own costs something.
    text = audio.clone()
    text[0] = normalize(torch.tensor([1.0, 1.0, 0.0, 0.0]), dim=0)
    assert float(pellegrini_triplet(audio, text, torch.arange(4), margin=0.4)) > 0.0


def test_captions_of_the_same_audio_are_never_impostors():
    audio = torch.eye(3)
    text = torch.ones(3, 3) / math.sqrt(3)
    assert float(pellegrini_triplet(audio, text, torch.zeros(3, dtype=torch.long), margin=0.4)) == 0.0


# -- training ---------------------------------------------------------------------------------

DIM = 16
_MIXING = torch.randn(N_TAGS, DIM, generator=torch.Generator().manual_seed(123))


def _learnable(n_clips: int, seed: int, prefix: str) -> TaskFeatures:
    """Captions are a fixed linear function of their clip's logits plus noise: a head can learn it."""
    generator = torch.Generator().manual_seed(seed)
    rows = [(f"{prefix}{i}.wav", [f"{prefix} clip {i} caption {k}" for k in range(3)]) for i in range(n_clips)]
    gt = captions_t2a(rows)
    logits = 3 * torch.randn(n_clips, N_TAGS, generator=generator)
    text = logits.repeat_interleave(3, 0) @ _MIXING / math.sqrt(N_TAGS)
    return TaskFeatures(gt, logits, text + 0.3 * torch.randn(text.shape, generator=generator))


def _system(overrides: list[str]) -> PasstMpnetTags:
    config = apply_overrides(DEFAULTS, ["device=cpu", "batch_size=32", "lr=0.003", *overrides])
    torch.manual_seed(config["seed"])
    head = TagsHead(torch.randn(N_TAGS, DIM, generator=torch.Generator().manual_seed(7)), config["lambda"])
    return PasstMpnetTags(config, head)


def _train(output: Path, overrides: list[str]) -> training.TrainResult:
    return training.train(SPEC, _system(overrides), _learnable(60, 1, "t"), _learnable(20, 2, "v"),
                          [{"dataset": "synthetic", "split": "train"}], output, progress=False)


def test_training_learns_and_keeps_the_best_checkpoint(tmp_path):
    result = _train(tmp_path, ["epochs=8"])
    maps = [r["val_mAP@10"] for r in result.history]
    assert len(maps) == 8 and max(maps) > maps[0] + 0.1
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    best = torch.load(result.best_checkpoint, weights_only=True)
    assert best["validation"]["val_mAP@10"] == max(maps) and best["epoch"] == 1 + maps.index(max(maps))
    assert best["training_data"] == [{"dataset": "synthetic", "split": "train"}]
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 8
    head = _system(["epochs=8"]).head
    head.load_state_dict(best["head"])
    assert training.retrieval_scores(head, _learnable(20, 2, "v"))["mAP@10"] == pytest.approx(max(maps))


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    straight = _train(tmp_path / "straight", ["epochs=5"])
    real_scores = training.retrieval_scores
    calls = {"n": 0}

    def crash_in_epoch_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_scores(*args, **kwargs)

    monkeypatch.setattr(training, "retrieval_scores", crash_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed", ["epochs=5"])
    monkeypatch.setattr(training, "retrieval_scores", real_scores)
    resumed = _train(tmp_path / "resumed", ["epochs=5"])
    assert resumed.history == straight.history
    a = torch.load(straight.best_checkpoint, weights_only=True)["head"]
    b = torch.load(resumed.best_checkpoint, weights_only=True)["head"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_patience_stops_once_validation_stops_improving_and_the_summary_says_so(tmp_path, monkeypatch):
    from baselines.cli import training_summary

    scores = iter([0.2, 0.5, 0.4, 0.5, 0.3, 0.9, 0.9])  # best at epoch 2, then three epochs not better
    monkeypatch.setattr(training, "retrieval_scores",
                        lambda *args, **kwargs: {"mAP@10": next(scores), "R@1": 0.0, "R@5": 0.0, "R@10": 0.0})
    result = training.train(SPEC, _system(["epochs=7"]), _learnable(60, 1, "t"), _learnable(20, 2, "v"),
                            [{"dataset": "synthetic", "split": "train"}], tmp_path, progress=False, patience=3)
    assert result.stopped_early and [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    assert torch.load(result.best_checkpoint, weights_only=True)["epoch"] == 2
    summary = training_summary(result)
    assert "stopped early after epoch 5 (no better validation mAP@10 for 3 epochs)" in summary
    assert "best: epoch 2, validation mAP@10 0.5000" in summary and str(tmp_path / "best.pt") in summary
    # Resuming with the same patience trains nothing more; without it, the run goes on to epoch 7.
    again = training.train(SPEC, _system(["epochs=7"]), _learnable(60, 1, "t"), _learnable(20, 2, "v"),
                           [{"dataset": "synthetic", "split": "train"}], tmp_path, progress=False, patience=3)
    assert again.stopped_early and len(again.history) == 5
    longer = training.train(SPEC, _system(["epochs=7"]), _learnable(60, 1, "t"), _learnable(20, 2, "v"),
                            [{"dataset": "synthetic", "split": "train"}], tmp_path, progress=False)
    assert not longer.stopped_early and longer.best["epoch"] == 6 and "trained 7 epochs" in training_summary(longer)


def test_resuming_with_other_settings_is_refused(tmp_path):
    _train(tmp_path, ["epochs=1"])
    with pytest.raises(LarbError, match="lr: 0.003 -> 0.01"):
        _train(tmp_path, ["epochs=2", "lr=0.01"])


def test_the_zero_shot_configuration_has_nothing_to_train(tmp_path):
    with pytest.raises(LarbError, match="no trainable part"):
        _train(tmp_path, ["lambda=0"])


def test_the_papers_validation_split_is_the_default_when_training_on_clotho_development():
    from baselines.runner import default_validation

    assert default_validation(["clotho-v2.1/development"]) == "clotho-v2.1/validation"
    assert default_validation(["clotho-v2.1/development", "audiocaps-v1/train"]) == "clotho-v2.1/validation"
    # the CLAP recipe trains on development + validation: nothing left to select on, so hold out
    assert default_validation(["clotho-v2.1/development", "clotho-v2.1/validation"]) is None
    assert default_validation(["demo-train"]) is None


def test_holdout_splits_by_audio_file():
    features = _learnable(30, 0, "h")
    train, val = features.holdout(0.2, seed=3)
    assert len(val.ground_truth.corpus) == 6 and len(train.ground_truth.corpus) == 24
    assert not set(train.ground_truth.corpus) & set(val.ground_truth.corpus)
    assert train.ground_truth.n_queries + val.ground_truth.n_queries == features.ground_truth.n_queries
    index = {name: i for i, name in enumerate(features.ground_truth.corpus)}
    for name, row in zip(val.ground_truth.corpus, val.audio, strict=True):
        assert torch.equal(row, features.audio[index[name]])


# -- submissions ------------------------------------------------------------------------------

@pytest.fixture
def small_task(tmp_path, make_wav, write_csv):
    folder = tmp_path / "task"
    rows = [[f"clip{i}.wav", f"caption {i} a", f"caption {i} b"] for i in range(12)]
    for row in rows:
        make_wav(folder / row[0])
    write_csv(folder / "captions.csv", ["file_name", "caption_1", "caption_2"], rows)
    return folder_task(folder)


def _info(**changes) -> SubmissionInfo:
    fields = {"system": "test system", "description": "a test", "links": {}, "total_parameters": 10,
              "trainable_parameters": 2, "training_data": [{"dataset": "demo", "split": "train"}] * 2,
              "members": ["m"]}
    return SubmissionInfo(**{**fields, **changes})


def test_written_submission_passes_the_harness_validator(tmp_path, small_task):
    gt = small_task.ground_truth
    indices = np.array([np.roll(np.arange(12), -int(q.split("clip")[1].split(".")[0]))[:10] for q in gt.query_ids])
    folder = write_submission(tmp_path / "subs" / "my-system", small_task, indices, _info())
    submission = load_submission(folder)
    assert submission.metadata["training_data"] == [{"dataset": "demo", "split": "train"}]  # deduplicated
    assert submission.metadata["parameters"] == {"total": 10, "trainable": 2} and not submission.metadata["ensemble"]
    ranking = read_ranking(submission.ranking_path(small_task.id), gt)
    np.testing.assert_array_equal(ranking.indices, indices)
    assert (folder / "metadata.yaml").stat().st_mode & 0o044  # readable by others, not a 0600 temp file
    write_submission(folder, small_task, indices[:, ::-1].copy(), _info(members=["a", "b"]))
    again = load_submission(folder)
    assert again.metadata["ensemble"] and again.metadata["ensemble_method"] == "score-mean"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["my-system"]  # no staging left behind


def test_bad_submission_id_is_refused_before_writing(tmp_path, small_task):
    with pytest.raises(LarbError, match="not a valid submission id"):
        write_submission(tmp_path / "My System", small_task, np.zeros((24, 10), dtype=int), _info())
    assert not (tmp_path / "My System").exists()


# -- command line -----------------------------------------------------------------------------

def test_list_json_declares_exact_parameter_counts(run_cli):
    code, out, _ = run_cli("baseline", "list", "passt-mpnet-tags", "--json", "--set", "tagger=mn04", "--set",
                           "text_encoder=all-MiniLM-L6-v2")
    (declaration,) = json.loads(out)
    assert code == 0 and declaration["name"] == "passt-mpnet-tags"
    # mn04 983,599 + MiniLM 22,713,216 frozen, head 203,806 trainable
    assert declaration["parameters"] == {"trainable": 203_806, "total": 983_599 + 22_713_216 + 203_806}
    assert declaration["assets"][0] == "efficientat/mn04_as"


def test_contract_check_passes_offline(run_cli):
    code, out, _ = run_cli("baseline", "check", "passt-mpnet-tags")
    assert code == 0, out
    assert "ok    l2-normalised" in out and "trainable parameters: head has 406,558, declared 406,558" in out
    assert "optimiser steps lower the loss" in out and "FAIL" not in out


def test_contract_check_reports_a_broken_head(run_cli, monkeypatch):
    monkeypatch.setattr(TagsHead, "embed_text", lambda self, s: self.text_norm(s.float()))  # no l2
    code, out, _ = run_cli("baseline", "check", "passt-mpnet-tags")
    assert code == 1
    assert "FAIL  l2-normalised" in out and "Fix: end both branches with" in out


@pytest.mark.parametrize("args, message", [
    (["baseline", "check", "nope"], "unknown baseline 'nope'"),
    (["baseline", "run", "passt-mpnet-tags", "--task", "demo", "--output", "subs/x1"], "no checkpoint was given"),
    (["baseline", "run", "passt-mpnet-tags", "--task", "demo", "--output", "subs/Bad Id", "--set", "lambda=0"],
     "not a valid submission id"),
    (["baseline", "run", "passt-mpnet-tags", "--task", "demo", "--checkpoint", "missing.pt", "--output",
      "subs/x2"], "checkpoint not found"),
    (["baseline", "train", "passt-mpnet-tags", "--train-task", "demo-train", "--set", "tagger=vggish"],
     "tagger=vggish: expected one of passt|cnn14|mn04"),
    (["baseline", "train", "passt-mpnet-tags", "--train-task", "demo-train", "--train-task", "demo-train"],
     "training task demo-train is given twice"),
])
def test_user_errors_exit_2_with_one_line(run_cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(*args)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_patience_that_is_not_a_positive_number_is_a_usage_error(capsys):
    from benchmark.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["baseline", "train", "passt-mpnet-tags", "--train-task", "demo-train", "--patience", "0"])
    assert exit_.value.code == 2 and "'0' is not a whole number of epochs >= 1" in capsys.readouterr().err


def test_demo_step_downloads_nothing_without_the_assets(tmp_path, capsys):
    from baselines.demo import demo_submissions

    assert demo_submissions(tmp_path) == []
    assert "efficientat/mn04_as" in capsys.readouterr().out and not any(tmp_path.iterdir())
