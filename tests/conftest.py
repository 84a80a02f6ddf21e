"""Shared fixtures of the harness tests (benchmark/).

Every test session gets its own asset cache (`LARB_CACHE_DIR`), no mirror unless a test asks
for one, and a network guard: urllib and requests go through a proxy on a closed loopback
port, so a test that would reach the internet fails at once instead of hanging (the loopback
HTTP servers of the tests are exempt through `no_proxy`).

Real third-party files are read from `../shared/` (beside the checkout) and the tests that
need them skip with a reason when it is absent.
"""

from __future__ import annotations

import csv
import io
import os
import wave
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest

from benchmark.groundtruth import GroundTruth, captions_t2a
from benchmark.reported import Reported

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"
MIRROR = SHARED / "assets"
AUDIOCAPS_TEST_CSV = REFERENCE / "formats" / "audiocaps" / "test.csv"

_CLOSED_PORT_PROXY = "http://127.0.0.1:9"


def require_shared(path: Path) -> Path:
    """`path` under ../shared, or skip the test with the reason."""
    if not path.exists():
        pytest.skip(f"../shared/reference not present: {path} is missing")
    return path


@pytest.fixture
def shared_path() -> Callable[[str], Path]:
    """`shared_path("reference/scoring/x.csv")`: the file under ../shared, or skip the test."""
    return lambda relative: require_shared(SHARED / relative)


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    """A fresh asset cache per session, no mirror, no internet."""
    cache = tmp_path_factory.mktemp("larb-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LARB_CACHE_DIR", str(cache))
        mp.delenv("LARB_ASSETS_MIRROR", raising=False)
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            mp.setenv(name, _CLOSED_PORT_PROXY)
        for name in ("no_proxy", "NO_PROXY"):
            mp.setenv(name, "127.0.0.1,localhost")
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield cache


@pytest.fixture
def shared_mirror(monkeypatch: pytest.MonkeyPatch) -> Path:
    """`../shared/assets/` as the asset mirror (skips when absent)."""
    require_shared(MIRROR / "clotho_captions_evaluation.csv")
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
    return MIRROR


@pytest.fixture(scope="session")
def audiocaps_mirror_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A mirror folder holding the AudioCaps v1 test captions: a link to ../shared (never a copy
    in the repository), or None when ../shared lacks them."""
    if not AUDIOCAPS_TEST_CSV.exists():
        return None
    folder = tmp_path_factory.mktemp("audiocaps-mirror")
    (folder / "test.csv").symlink_to(AUDIOCAPS_TEST_CSV)
    return folder


@pytest.fixture
def full_mirror(monkeypatch: pytest.MonkeyPatch, audiocaps_mirror_dir: Path | None) -> list[Path]:
    """Every offline mirror that ../shared allows: ../shared/assets and the AudioCaps test
    captions (possibly none; tests check for the files they need)."""
    folders = [f for f in (MIRROR if MIRROR.is_dir() else None, audiocaps_mirror_dir) if f is not None]
    monkeypatch.setenv("LARB_ASSETS_MIRROR", os.pathsep.join(str(f) for f in folders))
    return folders


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """Run `larb ARGS` in-process: (exit code, stdout, stderr)."""
    from benchmark.cli import main

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _csv_text(header: Sequence[str] | None, rows: Iterable[Sequence[str]], newline: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@pytest.fixture
def write_csv() -> Callable[..., Path]:
    """Write rows as CSV: `write_csv(path, header, rows, newline="\\n", bom=False)`."""

    def write(path: Path, header: Sequence[str] | None, rows: Iterable[Sequence[str]], *, newline: str = "\n",
              bom: bool = False) -> Path:
        data = _csv_text(header, rows, newline).encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
        return path

    return write


def write_wav(path: Path, seconds: float = 0.05, rate: int = 8000) -> Path:
    """A tiny mono 16-bit WAV of a quiet tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = (0.1 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


@pytest.fixture
def make_wav() -> Callable[..., Path]:
    return write_wav


# A small text-to-audio task: 12 files with 2 captions each, captions with commas, quotes and
# non-ASCII letters, and one file name that begins with a space (as in Clotho).
SMALL_ROWS: list[tuple[str, list[str]]] = [
    ("dog.wav", ["A dog barks twice.", "A dog is barking, then stops."]),
    ("rain.wav", ["Rain falls on a tin roof.", 'Someone says "wow, rain" outside.']),
    ("car.wav", ["A car drives by quickly.", "An engine revs up."]),
    ("bird.wav", ["Birds chirp in the morning.", "A bird sings near a window."]),
    (" crowd.wav", ["A crowd cheers in a stadium.", "People clap and shout."]),
    ("train.wav", ["A train passes over tracks.", "A horn sounds from a train."]),
    ("door.wav", ["A door creaks open slowly.", "Someone knocks on a wooden door."]),
    ("water.wav", ["Water flows in a stream.", "A river rushes past rocks."]),
    ("café.wav", ["Cups clink in a busy café.", "Chatter fills a small café."]),
    ("wind.wav", ["Wind howls through trees.", "Leaves rustle in the wind."]),
    ("bell.wav", ["A bell rings three times.", "Church bells ring loudly."]),
    ("clock.wav", ["A clock ticks steadily.", "A clock chimes on the hour."]),
]


@pytest.fixture
def small_gt() -> GroundTruth:
    """A 24-query, 12-file text-to-audio ground truth (one relevant file per caption)."""
    return captions_t2a(SMALL_ROWS)


@pytest.fixture
def shared_caption_gt() -> GroundTruth:
    """Like `small_gt`, but the caption "A shared caption." describes two different files."""
    rows = [(name, list(captions)) for name, captions in SMALL_ROWS]
    rows[0][1].append("A shared caption.")
    rows[1][1].append("A shared caption.")
    return captions_t2a(rows)


def ranked_candidates(gt: GroundTruth, query: int, rng: np.random.Generator | None = None,
                      relevant_at: int | None = 0) -> list[str]:
    """Ten distinct corpus names for query `query`: its relevant file at rank `relevant_at + 1`
    (or absent when None), the others random (or in corpus order without `rng`)."""
    relevant = [n for n, g in gt.relevance[gt.query_ids[query]].items() if g > 0]
    others = [n for n in gt.corpus if n not in relevant]
    if rng is not None:
        others = [others[i] for i in rng.permutation(len(others))]
    ranked = others[:10]
    if relevant_at is not None:
        ranked = others[:9]
        ranked.insert(relevant_at, relevant[0])
    return ranked


@pytest.fixture
def ranking_rows() -> Callable[..., list[list[str]]]:
    """`ranking_rows(gt, seed=0, perfect=False)`: one DCASE row [caption, 10 names] per query,
    a valid ranking (perfect: the relevant file first; otherwise at a random rank or absent)."""

    def rows(gt: GroundTruth, seed: int = 0, *, perfect: bool = False) -> list[list[str]]:
        rng = np.random.default_rng(seed)
        out = []
        for q, text in enumerate(gt.query_texts):
            at = 0 if perfect else int(rng.integers(0, 12))
            out.append([text, *ranked_candidates(gt, q, rng, at if at < 10 else None)])
        return out

    return rows


@pytest.fixture
def write_ranking(ranking_rows) -> Callable[..., Path]:
    """`write_ranking(path, gt, seed=0, perfect=False)`: a valid ranking CSV with a query_id column
    (needed where captions are shared, as in the demo task)."""
    from benchmark.rankings import write_t2a_csv

    def write(path: Path, gt: GroundTruth, seed: int = 0, *, perfect: bool = False) -> Path:
        rows = ranking_rows(gt, seed, perfect=perfect)
        return write_t2a_csv(path, gt.query_ids, gt.query_texts, [row[1:] for row in rows])

    return write


@pytest.fixture
def demo_gt():
    from benchmark.tasks import get_task

    return get_task("demo").ground_truth


@pytest.fixture
def make_submission(tmp_path, write_ranking, demo_gt):
    """`make_submission(id, seed=0, perfect=False, training_data=(), **metadata)` under tmp_path/subs."""
    root = tmp_path / "subs"

    def make(sub_id: str, seed: int = 0, *, perfect: bool = False, training_data=(), **fields) -> Path:
        import yaml

        folder = root / sub_id
        write_ranking(folder / "demo.csv", demo_gt, seed, perfect=perfect)
        metadata = {"id": sub_id, "team": "Test team", "system": f"System {sub_id}", "description": "A test.",
                    "parameters": {"total": 1000, "trainable": 10}, "ensemble": False, "date": "2026-01-31",
                    "licence": "CC0-1.0", "rankings": {"demo": "demo.csv"},
                    "training_data": [{"dataset": d, "split": s} for d, s in training_data]}
        metadata.update(fields)
        metadata = {k: v for k, v in metadata.items() if v is not None}
        (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False), "utf-8")
        return folder

    make.root = root
    return make


# --- helpers shared by several test files (tests import from here, never from each other) ---

def chance_map(n_corpus: int) -> float:
    """The expected mAP@10 of a uniformly random ranking with one relevant file in `n_corpus`."""
    return sum(1 / r for r in range(1, 11)) / n_corpus


def harness_scores(folder: Path, task_name: str) -> dict[str, float]:
    """A submission's scores from the harness (validator + scorer), not from the model."""
    from baselines.submission_writer import ranking_file_name
    from benchmark.rankings import read_ranking
    from benchmark.scoring import score
    from benchmark.tasks import get_task

    task = get_task(task_name)
    ranking = read_ranking(folder / ranking_file_name(task), task.ground_truth)
    return score(ranking, task.ground_truth).means


Z_95 = 1.959963984540054


def brute_force_jackknife(values: np.ndarray) -> tuple[float, float]:
    """astropy.stats.jackknife_stats(values, np.mean, 0.95) written out with explicit resamples."""
    n = len(values)
    theta = values.mean()
    loo = np.array([np.delete(values, i).mean() for i in range(n)])
    mean_loo = loo.mean()
    bias = (n - 1) * (mean_loo - theta)
    se = np.sqrt((n - 1) / n * np.sum((loo - mean_loo) ** 2))
    return theta - bias - Z_95 * se, theta - bias + Z_95 * se


PANNS_TINY = ["size=tiny", "text_encoder=all-MiniLM-L6-v2"]
PANNS_DEMO_SETTINGS = [*PANNS_TINY, "freeze_audio=false", "clip_seconds=3", "loss=ntxent", "epochs=2", "batch_size=32",
                       "lr=1e-3", "num_workers=0", "device=cpu"]


@pytest.fixture(scope="session")
def tiny_panns_run(tmp_path_factory: pytest.TempPathFactory):
    """The tiny fine-tuned PANNs + SBERT model trained once on demo-train (shared by the PANNs and
    ensemble tests)."""
    from baselines.models.panns_sbert import SPEC
    from baselines.runner import train_baseline

    require_shared(MIRROR / "all-MiniLM-L6-v2" / "model.safetensors")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
        return train_baseline(SPEC, "demo-train", None, tmp_path_factory.mktemp("panns") / "panns-tiny",
                              PANNS_DEMO_SETTINGS, progress=False)


def split_task(task_id: str, folder: Path, names: Sequence[str]) -> list[Path]:
    """`task_id` as len(names) folder tasks, each an equal share of its files (in corpus order), to
    train on several joined (the CLAP paper's Clotho + AudioCaps + WavText5K) or to stand for
    several splits."""
    from benchmark.tasks import get_task

    task = get_task(task_id)
    gt = task.ground_truth
    captions: dict[str, list[str]] = {}
    for qid, text in zip(gt.query_ids, gt.query_texts, strict=True):
        captions.setdefault(next(iter(gt.relevance[qid])), []).append(text)
    folders = [folder / name for name in names]
    share = len(gt.corpus) // len(names)
    for k, part in enumerate(folders):
        part.mkdir()
        files = gt.corpus[k * share:(k + 1) * share]
        width = max(len(captions[name]) for name in files)
        rows = [["file_name", *(f"caption_{i}" for i in range(1, width + 1))]]
        for name in files:
            os.link(task.audio_path(name), part / name)  # a symlink out of the task folder is refused
            rows.append([name, *captions[name], *[""] * (width - len(captions[name]))])
        with open(part / "captions.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    return folders


def reported_member(name: str, **settings) -> dict:
    return {"name": name, "settings": {"size": "full", **settings}}


SINGLE = Reported("PANNs CNN14 + SBERT, NT-Xent", "a paper", "Clotho", {"mAP@10": 0.229},
                  ({"baseline": "panns-sbert-cnn14", "settings": {"loss": "ntxent"}},))
PAIR = Reported("an ensemble", "a paper", "Clotho", {"mAP@10": 0.24},
                ({"baseline": "panns-sbert-cnn14", "settings": {"loss": "ntxent"}},
                 {"baseline": "panns-sbert-cnn14", "settings": {"loss": "triplet-max"}}), "embedding-mean")
