"""Ensembles of any registered models (score averaging, embedding averaging), declared in the
submission metadata, and audio-to-text rankings through a text-to-audio view."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import MIRROR, chance_map, harness_scores, require_shared

from baselines.ensemble import METHODS, combine
from baselines.inference import Member, t2a_view
from baselines.models import panns_sbert
from baselines.runner import run_models, train_baseline
from baselines.submission_writer import SubmissionInfo, write_submission
from benchmark.errors import LarbError
from benchmark.groundtruth import captions_a2t
from benchmark.submission_folders import load_submission
from benchmark.tasks import get_task


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_score_mean_is_the_mean_of_the_members_similarities():
    rng = np.random.default_rng(0)
    members = [(_unit_rows(rng, 5, d), _unit_rows(rng, 7, d)) for d in (3, 8, 4)]
    queries, corpus = combine(members, "score-mean")
    expected = np.mean([q @ c.T for q, c in members], axis=0)
    np.testing.assert_allclose(queries @ corpus.T, expected, rtol=1e-5, atol=1e-6)


def test_embedding_mean_averages_then_renormalises_and_needs_one_size():
    rng = np.random.default_rng(1)
    members = [(_unit_rows(rng, 5, 6), _unit_rows(rng, 7, 6)) for _ in range(3)]
    queries, corpus = combine(members, "embedding-mean")
    mean_q = np.mean([q for q, _ in members], axis=0)
    np.testing.assert_allclose(queries, mean_q / np.linalg.norm(mean_q, axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(corpus, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(LarbError, match="one embedding size"):
        combine([members[0], (_unit_rows(rng, 5, 4), _unit_rows(rng, 7, 4))], "embedding-mean")
    with pytest.raises(LarbError, match="unknown ensemble method"):
        combine(members, "median")
    assert METHODS == ("score-mean", "embedding-mean")


def test_audio_to_text_view_inverts_the_relevance():
    rows = [("a.wav", ["a dog barks", "a shared caption"]), ("b.wav", ["rain falls", "a shared caption"])]
    task = get_task("demo")
    import dataclasses

    a2t = dataclasses.replace(task, ground_truth=captions_a2t(rows))
    _, view = t2a_view(a2t)
    assert view.direction == "t2a" and view.corpus == ("a.wav", "b.wav")
    relevance = {text: view.relevance[qid] for qid, text in zip(view.query_ids, view.query_texts, strict=True)}
    assert relevance == {"a dog barks": {"a.wav": 1}, "a shared caption": {"a.wav": 1, "b.wav": 1},
                         "rain falls": {"b.wav": 1}}


@pytest.mark.parametrize("method", METHODS)
def test_ensemble_metadata_declares_method_and_members_and_validates(tmp_path, method):
    task = get_task("demo")
    gt = task.ground_truth
    indices = np.stack([np.roll(np.arange(len(gt.corpus)), -i)[:10] for i in range(gt.n_queries)])
    info = SubmissionInfo("test ensemble", "two models", {}, 100, 10, [{"dataset": "demo", "split": "train"}] * 2,
                          ["runs/a/best.pt", "runs/b/best.pt"])
    folder = write_submission(tmp_path / f"ens-{method}", task, indices, info, method)
    metadata = load_submission(folder).metadata
    assert metadata["ensemble"] and metadata["ensemble_method"] == method
    assert metadata["members"] == ["runs/a/best.pt", "runs/b/best.pt"]
    assert metadata["training_data"] == [{"dataset": "demo", "split": "train"}]


# -- real members on the demo task -----------------------------------------------------------------

@pytest.fixture(scope="module")
def members(tmp_path_factory, tiny_panns_run):
    """A tiny fine-tuned PANNs + SBERT model and a PaSST-MPNet-tags head (mn04 + MiniLM), trained on
    demo-train, and the zero-shot tags-only system: three models of two baselines."""
    for name in ("mn04_as_mAP_432.pt", "class_labels_indices.csv", "all-MiniLM-L6-v2/model.safetensors"):
        require_shared(MIRROR / name)
    work = tmp_path_factory.mktemp("ensemble")
    panns = tiny_panns_run
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
        tags = train_baseline("passt-mpnet-tags", "demo-train", None, work / "tags",
                              ["tagger=mn04", "text_encoder=all-MiniLM-L6-v2", "epochs=15"], progress=False)
    return {"panns": Member(panns.best_checkpoint, panns_sbert.SPEC), "tags": Member(tags.best_checkpoint),
            "zero-shot": Member(baseline="passt-mpnet-tags",
                                overrides=("tagger=mn04", "text_encoder=all-MiniLM-L6-v2", "lambda=0"))}


def test_score_mean_ensemble_of_two_baselines(members, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    folder = run_models([members["panns"], members["tags"]], "demo", tmp_path / "ens-score", progress=False)
    scores = harness_scores(folder, "demo")
    single = {name: harness_scores(run_models([members[name]], "demo", tmp_path / f"single-{name}",
                                              progress=False), "demo") for name in ("panns", "tags")}
    print(f"\nscore-mean ensemble on demo: {scores}; members: {single} (chance {chance_map(60):.4f})")
    assert scores["mAP@10"] > 3 * chance_map(60)
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    assert metadata["ensemble"] and metadata["ensemble_method"] == "score-mean" and len(metadata["members"]) == 2
    assert metadata["system"].startswith("Ensemble: PANNs") and "PaSST-MPNet-tags" in metadata["system"]
    assert [(b["name"], b["settings"]["text_encoder"]) for b in metadata["baselines"]] == [
        ("panns-sbert-cnn14", "all-MiniLM-L6-v2"), ("passt-mpnet-tags", "all-MiniLM-L6-v2")]
    settings = metadata["baselines"][1]["settings"]
    assert {k: settings[k] for k in ("tagger", "text_encoder", "lambda")} == {
        "tagger": "mn04", "text_encoder": "all-MiniLM-L6-v2", "lambda": 0.8}
    assert settings["margin"] == 0.4 and "device" not in settings  # the recipe is declared, not the machine
    # the shared MiniLM is counted once; both trainable parts are counted
    counts = [m.spec.parameter_counts(m.system.config) for m in _loaded(members, "panns", "tags")]
    frozen = {k: v for c in counts for k, v in c.frozen.items()}
    assert metadata["parameters"] == {"total": sum(frozen.values()) + sum(c.trainable for c in counts),
                                      "trainable": sum(c.trainable for c in counts)}


def _loaded(members, *names):
    from baselines.inference import load_member

    return [load_member(members[n], progress=False) for n in names]


def test_embedding_mean_ensemble(members, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    folder = run_models([members["tags"], members["zero-shot"]], "demo", tmp_path / "ens-embedding",
                        method="embedding-mean", progress=False)
    scores = harness_scores(folder, "demo")
    print(f"\nembedding-mean ensemble (tags head + zero-shot tags) on demo: {scores}")
    assert scores["mAP@10"] > 3 * chance_map(60)
    assert yaml.safe_load((folder / "metadata.yaml").read_text())["ensemble_method"] == "embedding-mean"
    with pytest.raises(LarbError, match="one embedding size"):  # 300-d PANNs + SBERT with 384-d tags
        run_models([members["panns"], members["tags"]], "demo", tmp_path / "ens-bad", method="embedding-mean",
                   progress=False)
    assert not (tmp_path / "ens-bad").exists()
