"""Any model through one protocol: `baselines.evaluate_model`, `larb model run`, the cache, the
errors, and the tagger + sentence encoder adapter against the registered baseline it equals."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import MIRROR, REFERENCE, require_shared

from baselines import evaluate_model
from baselines.model_protocol import check_model
from baselines.model_runner import ModelMetadata, load_model, run_model
from baselines.runner import run_baseline
from benchmark import evaluate, get_task
from benchmark.errors import LarbError
from benchmark.groundtruth import captions_a2t

TOY_MODEL = '''
import hashlib
import numpy as np


class Toy:
    """Audio: a coarse spectrum; text: hashed words. Deterministic, numpy only."""

    def __init__(self, name="toy-v1", dim="16"):
        self.name, self.dim, self.sample_rate = name, int(dim), 8000
        self.parameters = {"total": 0, "trainable": 0}
        self.audio_calls, self.text_calls = [], []

    def encode_audio(self, waveforms):
        self.audio_calls.append(len(waveforms))
        spectra = [np.abs(np.fft.rfft(w, n=2 * self.dim))[: self.dim] for w in waveforms]
        return np.stack(spectra) + 1e-3

    def encode_text(self, texts):
        self.text_calls.append(len(texts))
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out + 1e-3


def build(**kwargs):
    return Toy(**kwargs)
'''


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    """A user's model file in the current folder, as `larb model run toy_model:build` finds it."""
    (tmp_path / "toy_model.py").write_text(TOY_MODEL, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import toy_model

    return importlib.reload(toy_model)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def test_evaluate_model_scores_the_cosine_similarities_and_caches_every_vector(toy_module):
    from baselines.audio.io import load_mono

    task = get_task("demo")
    model = toy_module.Toy()
    result = evaluate_model(model, "demo", progress=False)["demo"]
    waves = [load_mono(task.audio_path(name), model.sample_rate) for name in task.corpus]
    expected = _cosine(toy_module.Toy().encode_text(task.query_texts), toy_module.Toy().encode_audio(waves))
    assert result.metrics == evaluate(expected.astype(np.float32), task).metrics
    assert result.metrics["mAP@10"] > 0 and result.submission_id == "toy-v1"
    assert sum(model.audio_calls) == len(task.corpus) and sum(model.text_calls) == len(set(task.query_texts))
    again = toy_module.Toy()
    assert evaluate_model(again, task, progress=False)["demo"].metrics == result.metrics
    assert again.audio_calls == [] and again.text_calls == []  # all from the cache
    renamed = toy_module.Toy(name="toy-v2")
    evaluate_model(renamed, task, progress=False)
    assert sum(renamed.audio_calls) == len(task.corpus)  # another name is another cache


def test_an_audio_to_text_task_ranks_captions_for_each_clip(toy_module):
    task = get_task("demo")
    gt = task.ground_truth
    captions: dict[str, list[str]] = {}
    for qid, text in zip(gt.query_ids, gt.query_texts, strict=True):
        captions.setdefault(next(iter(gt.relevance[qid])), []).append(text)
    a2t = dataclasses.replace(task, ground_truth=captions_a2t([(name, captions[name]) for name in gt.corpus]))
    result = evaluate_model(toy_module.Toy(), a2t, progress=False)[task.id]
    assert result.ranking.indices.shape == (len(gt.corpus), 10) and result.task.direction == "a2t"


class _Broken:
    name, sample_rate = "broken", 8000

    def __init__(self, audio=None, text=None):
        self._audio, self._text = audio, text

    def encode_audio(self, waveforms):
        return self._audio(len(waveforms)) if self._audio else np.ones((len(waveforms), 4))

    def encode_text(self, texts):
        return self._text(len(texts)) if self._text else np.ones((len(texts), 4))


@pytest.mark.parametrize("model, message", [
    (object(), "lacks name, sample_rate, encode_audio, encode_text"),
    (_Broken(audio=lambda n: np.ones((n + 1, 4))), r"encode_audio returned shape \(\d+, 4\) for \d+ inputs"),
    (_Broken(text=lambda n: np.full((n, 4), np.nan)), "encode_text returned NaN"),
    (_Broken(text=lambda n: np.ones((n, 5))), "audio vectors have 4 dimensions, text vectors 5"),
])
def test_a_model_that_breaks_the_protocol_is_one_clear_error(model, message, tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_CACHE_DIR", str(tmp_path / "cache"))  # never reuse another test's vectors
    if isinstance(model, _Broken):
        model.name = f"broken-{hashlib.sha256(message.encode()).hexdigest()[:8]}"
    with pytest.raises(LarbError, match=message):
        evaluate_model(model, "demo", progress=False)


def test_the_cli_writes_a_submission_with_the_users_metadata_only(toy_module, tmp_path, run_cli):
    template = tmp_path / "meta.yaml"
    template.write_text(yaml.safe_dump({"team": "Toy lab", "links": {"code": "https://example.org/toy"},
                                        "description": "A toy."}), encoding="utf-8")
    code, out, err = run_cli("model", "run", "toy_model:build", "--arg", "name=toy-cli", "--task", "demo",
                             "--output", "subs/toy", "--metadata", template, "--licence", "CC0-1.0",
                             "--training-data", "none", "--quiet")
    assert code == 0, err
    metadata = yaml.safe_load((tmp_path / "subs" / "toy" / "metadata.yaml").read_text("utf-8"))
    assert (metadata["team"], metadata["licence"], metadata["links"]) == ("Toy lab", "CC0-1.0",
                                                                           {"code": "https://example.org/toy"})
    assert metadata["training_data"] == [] and metadata["system"] == "toy-cli" and "mAP@10" in out
    assert run_cli("validate", tmp_path / "subs" / "toy", "--task", "demo")[0] == 0


@pytest.mark.parametrize("args, message", [
    (["--licence", "MIT", "--training-data", "none"], "needs a team name"),
    (["--team", "t", "--training-data", "none"], "needs a licence"),
    (["--team", "t", "--licence", "MIT"], "needs what the model was trained on"),
    (["--team", "t", "--licence", "MIT", "--training-data", "clotho"], "is not DATASET/SPLIT"),
])
def test_missing_metadata_is_refused_before_any_embedding(toy_module, run_cli, args, message):
    code, _, err = run_cli("model", "run", "toy_model:build", "--task", "demo", "--output", "subs/toy", *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert not Path("subs/toy").exists()


def test_a_changed_model_under_an_old_name_is_told_to_rename_it(toy_module):
    evaluate_model(toy_module.Toy(name="toy-width"), "demo", progress=False)
    with pytest.raises(LarbError, match="now gives 32-d vectors; its cache holds 16-d"):
        evaluate_model(toy_module.Toy(name="toy-width", dim="32"), "demo-train", progress=False)


def test_loading_names_what_is_wrong(toy_module):
    with pytest.raises(LarbError, match="is not MODULE:FACTORY"):
        load_model("toy_model")
    with pytest.raises(LarbError, match="no module 'nope_model'"):
        load_model("nope_model:build")
    with pytest.raises(LarbError, match="has no 'missing'"):
        load_model("toy_model:missing")
    assert check_model(load_model("toy_model:build", {"dim": "8"})).dim == 8


@pytest.mark.slow
def test_mn04_and_minilm_through_the_protocol_equal_the_zero_shot_baseline(tmp_path, monkeypatch):
    """The adapter and `larb baseline run passt-mpnet-tags --set lambda=0` write the same ranking."""
    for name in ("mn04_as_mAP_432.pt", "class_labels_indices.csv", "all-MiniLM-L6-v2/model.safetensors"):
        require_shared(MIRROR / name)
    task = require_shared(REFERENCE / "audio_mini")
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    from baselines.adapters.tagger_text import TaggerTextModel

    model = TaggerTextModel("mn04", "all-MiniLM-L6-v2")
    folder, result = run_model(model, str(task), tmp_path / "mn04-minilm",
                               ModelMetadata(team="LARB tests", licence="CC0-1.0"), progress=False)
    baseline = run_baseline("passt-mpnet-tags", str(task), [], tmp_path / "zero-shot",
                            ["tagger=mn04", "text_encoder=all-MiniLM-L6-v2", "lambda=0"], progress=False)
    csv_name = "folder__audio_mini.csv"
    assert (folder / csv_name).read_bytes() == (baseline / csv_name).read_bytes()
    assert result.metrics == evaluate(baseline, str(task)).metrics and result.metrics["mAP@10"] > 0.6
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text("utf-8"))
    assert metadata["parameters"]["trainable"] == 0 and metadata["training_data"] == []
    assert metadata["parameters"]["total"] == yaml.safe_load((baseline / "metadata.yaml").read_text("utf-8"))[
        "parameters"]["total"]


def test_the_readme_model_example_runs(tmp_path, monkeypatch, run_cli):
    """README "Add your model": its model file and its command, executed as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    section = readme.split("### Any model, through the protocol", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    command = section.split("```bash\n", 1)[1].split("```", 1)[0]
    assert len(code.splitlines()) < 40
    (tmp_path / "my_model.py").write_text(textwrap.dedent(code), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = command.replace("\\\n", " ").split()
    assert argv[:3] == ["larb", "model", "run"]
    import shlex

    status, out, err = run_cli(*shlex.split(command.replace("\\\n", " "))[1:])
    assert status == 0, err
    assert (tmp_path / "submissions" / "my-model" / "metadata.yaml").is_file() and "mAP@10" in out


def test_analyze_writes_the_embedding_figures_and_a_pca_plot(toy_module, tmp_path, run_cli):
    code, out, err = run_cli("analyze", "toy_model:build", "--arg", "name=toy-analysis", "--task", "demo",
                             "--output", tmp_path / "analysis", "--quiet")
    assert code == 0, err
    record = json.loads((tmp_path / "analysis" / "toy-analysis__demo.json").read_text("utf-8"))
    assert (record["audio"]["n"], record["text"]["n"], record["audio"]["set_size"]) == (60, 300, 60)
    assert 0 <= record["audio"]["h"] <= np.log(256) and record["alignment"] >= 0
    assert record["retrieval"] == evaluate_model(toy_module.Toy(name="toy-analysis"), "demo",
                                                 progress=False)["demo"].metrics
    assert (tmp_path / "analysis" / "toy-analysis__demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "modality gap" in out and "N10 skew" in out
