"""The task registry: pinned ground-truth hashes, counts, the generated demo task, folder tasks."""

from __future__ import annotations

import json
import os
import shutil
import wave
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark import assets, demo_data
from benchmark.errors import LarbError
from benchmark.groundtruth import _json_lines, captions_t2a
from benchmark.rankings import read_ranking
from benchmark.tasks import EXPORT_MANIFEST, TASKS, TaskSpec, _caption_rows, get_task, task_ids


def _in_mirror(spec: TaskSpec, folders: list[Path]) -> list[str]:
    """The task's assets that no mirror folder holds."""
    return [name for name in spec.assets
            if not any((f / assets.get(name).file_name).exists() for f in folders)]


@pytest.mark.parametrize("task_id", task_ids())
def test_registered_task_loads_with_its_pinned_hash(task_id, full_mirror):
    spec = TASKS[task_id]
    missing = _in_mirror(spec, full_mirror)
    if missing:
        pytest.skip(f"../shared/reference not present: assets {missing} of {task_id} are not in the "
                    "offline mirror")
    assert spec.sha256, f"task {task_id} pins no ground-truth hash"
    task = get_task(task_id)
    assert task.ground_truth.sha256 == spec.sha256
    assert spec.build().sha256 == spec.sha256  # rebuilt from the files, not from a cache
    assert task.ground_truth.direction == spec.direction and task.ground_truth.kind == spec.kind
    assert set(task.ground_truth.hashes()) == {"ground_truth", "queries", "corpus", "relevance"}


COUNTS = {  # task: (queries, candidates, relevance kind, main metric)
    "clotho-v2.1/evaluation": (5225, 1045, "single", "mAP@10"),
    "clotho-v2.1/evaluation-a2t": (1045, 5225, "multi", "mAP@10"),
    "clotho-v2.1/evaluation-multi": (1037, 1045, "multi", "mAP@16"),
    "clotho-v2.1/evaluation-graded": (200, 1045, "graded", "nDCG@10"),
    "audiocaps-v1/test": (4875, 975, "single", "mAP@10"),
    "audiocaps-v1/test-grouped": (4875, 975, "multi", "mAP@10"),
    "audiocaps-v1/test-a2t": (975, 4633, "multi", "mAP@10"),
    "demo": (300, 60, "single", "mAP@10"),
    "demo-train": (1200, 240, "single", "mAP@10"),
}


@pytest.mark.parametrize("task_id", sorted(COUNTS))
def test_task_counts(task_id, full_mirror):
    if _in_mirror(TASKS[task_id], full_mirror):
        pytest.skip(f"../shared/reference not present: assets of {task_id} are not in the offline mirror")
    gt = get_task(task_id).ground_truth
    queries, candidates, kind, main = COUNTS[task_id]
    assert (gt.n_queries, len(gt.corpus)) == (queries, candidates)
    assert (gt.kind, TASKS[task_id].main_metric) == (kind, main)


@pytest.fixture
def audiocaps(full_mirror):
    if _in_mirror(TASKS["audiocaps-v1/test"], full_mirror):
        pytest.skip("../shared/reference not present: formats/audiocaps/test.csv")
    return get_task("audiocaps-v1/test")


def test_audiocaps_has_captions_shared_by_different_clips(audiocaps):
    gt = audiocaps.ground_truth
    clips_of_text = defaultdict(set)
    for qid, text in zip(gt.query_ids, gt.query_texts, strict=True):
        clips_of_text[text] |= set(gt.relevance[qid])
    shared = [t for t, clips in clips_of_text.items() if len(clips) > 1]
    assert shared, "AudioCaps test has caption strings shared by different clips"
    assert all(qid.isdigit() for qid in gt.query_ids)  # the audiocap_id
    assert all(name.endswith(".wav") for name in gt.corpus)


def test_audiocaps_audio_to_text_makes_a_shared_caption_relevant_to_each_of_its_clips(audiocaps):
    t2a = audiocaps.ground_truth
    a2t = get_task("audiocaps-v1/test-a2t").ground_truth
    clips_of_text = defaultdict(set)
    for qid, text in zip(t2a.query_ids, t2a.query_texts, strict=True):
        clips_of_text[text] |= set(t2a.relevance[qid])
    assert set(a2t.query_ids) == set(t2a.corpus) and set(a2t.corpus) == set(t2a.query_texts)
    for text, clips in clips_of_text.items():
        assert {clip for clip in clips if text in a2t.relevance[clip]} == clips
    assert TASKS["audiocaps-v1/test"].transposed == "audiocaps-v1/test-a2t"


def test_audiocaps_ranking_by_caption_text_uses_the_shared_caption_rule(audiocaps, write_csv, tmp_path):
    gt = audiocaps.ground_truth
    rng = np.random.default_rng(0)
    texts = list(dict.fromkeys(gt.query_texts))  # one row per distinct caption
    assert len(texts) < gt.n_queries
    rows = [[t, *(gt.corpus[i] for i in rng.choice(len(gt.corpus), 10, replace=False))] for t in texts]
    path = write_csv(tmp_path / "ac.csv", ["caption", *(f"fname_{i}" for i in range(1, 11))], rows)
    indices = read_ranking(path, gt).indices
    first = {}
    for q, text in enumerate(gt.query_texts):
        np.testing.assert_array_equal(indices[q], indices[first.setdefault(text, q)])


def test_multi_positive_lists_are_used_as_published(shared_mirror):
    gt = get_task("clotho-v2.1/evaluation-multi").ground_truth
    without_own_file = [q for q in gt.query_ids if q.rsplit("#", 1)[0] not in gt.relevance[q]]
    assert len(without_own_file) == 46
    assert max(len(v) for v in gt.relevance.values()) == 12


def test_graded_task_has_seventeen_ratings_per_query(shared_mirror):
    gt = get_task("clotho-v2.1/evaluation-graded").ground_truth
    assert {len(v) for v in gt.relevance.values()} == {17}
    grades = [g for v in gt.relevance.values() for g in v.values()]
    assert 0 <= min(grades) and max(grades) <= 100 and len(set(grades)) > 10


def test_a_changed_ground_truth_is_refused(monkeypatch, small_gt):
    spec = TaskSpec(
               id="test/pinned-task", version=1, title="test", direction="t2a", kind="single", assets=(),
               build=lambda: small_gt, sha256="0" * 64, source="test", audio="none")
    monkeypatch.setitem(TASKS, spec.id, spec)
    with pytest.raises(LarbError, match=f"hashes to {small_gt.sha256}, not the pinned 0{{64}}"):
        get_task(spec.id)


def test_unknown_task():
    with pytest.raises(LarbError, match="unknown task 'clotho/nope'.*larb tasks"):
        get_task("clotho/nope")


def test_a_non_official_file_in_the_mirror_is_refused(shared_path, tmp_path, monkeypatch):
    # this copy of the validation captions is not byte for byte the Zenodo file
    unofficial = shared_path("reference/formats/clotho/clotho_captions_validation.csv")
    (tmp_path / "clotho_captions_validation.csv").symlink_to(unofficial)
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(tmp_path))
    with pytest.raises(LarbError) as info:
        get_task("clotho-v2.1/validation")
    assert "checksum mismatch" in str(info.value)
    assert str(tmp_path / "clotho_captions_validation.csv") in str(info.value)


# --- the generated demo task --------------------------------------------------------------

def test_demo_generation_is_deterministic(tmp_path):
    demo_data.generate("test", tmp_path / "a")
    demo_data.generate("test", tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(files) == 61 and demo_data.CAPTIONS_FILE in files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    gt = captions_t2a(_caption_rows(tmp_path / "a" / demo_data.CAPTIONS_FILE))
    assert gt.sha256 == TASKS["demo"].sha256  # every machine generates the pinned task
    with wave.open(str(tmp_path / "a" / "test_0000.wav")) as clip:
        assert (clip.getnchannels(), clip.getframerate(), clip.getnframes()) == (1, 16_000, 48_000)


def test_demo_generation_is_idempotent(tmp_path):
    captions = demo_data.generate("test", tmp_path)
    stamp = captions.stat().st_mtime_ns
    (tmp_path / "test_0001.wav").write_bytes(b"edited")
    assert demo_data.generate("test", tmp_path) == captions
    assert captions.stat().st_mtime_ns == stamp and (tmp_path / "test_0001.wav").read_bytes() == b"edited"


def test_demo_task_has_local_audio():
    task = get_task("demo")
    assert task.audio_path(task.ground_truth.corpus[0]).is_file()
    with pytest.raises(LarbError, match="missing"):
        task.audio_path("no_such_clip.wav")


# --- folder tasks ------------------------------------------------------------------------

def _folder(root: Path, write_csv, make_wav, rows, csv_name="captions.csv") -> Path:
    width = max(len(c) for _, c in rows)
    write_csv(root / csv_name, ["file_name", *(f"caption_{k}" for k in range(1, width + 1))],
              [[name, *caps, *[""] * (width - len(caps))] for name, caps in rows])
    for name, _ in rows:
        make_wav(root / name)
    return root


FOLDER_ROWS = [("a.wav", ["A dog barks.", "A dog, barking."]), ("b.wav", ["Rain falls.", ""]),
               ("c c.wav", ["A car passes.", "An engine hums."])]


def test_folder_task(tmp_path, write_csv, make_wav):
    folder = _folder(tmp_path / "mine", write_csv, make_wav, FOLDER_ROWS)
    task = get_task(str(folder))
    gt = task.ground_truth
    assert gt.query_ids == ("a.wav#1", "a.wav#2", "b.wav#1", "c c.wav#1", "c c.wav#2")
    assert gt.corpus == ("a.wav", "b.wav", "c c.wav")
    assert task.id == "folder:mine" and task.audio_dir == folder.resolve()
    assert task.audio_path("c c.wav").is_file()
    assert task.spec.sha256 == gt.sha256


@pytest.mark.parametrize("manifest, declared", [
    (None, ()),
    ('{"complete": true, "dataset": "clotho", "split": "development"}', ("clotho-v2.1/development",)),
    ('{"complete": true, "dataset": "wavtext5k", "split": "train"}', ("wavtext5k/train",)),
    ('{"complete": false, "dataset": "clotho", "split": "evaluation"}', ()),
    ('{"complete": true, "dataset": "a/b", "split": "x"}', ()),
    ("not json", ()),
])
def test_a_folder_from_larb_data_export_declares_its_split(tmp_path, write_csv, make_wav, manifest, declared):
    folder = _folder(tmp_path / "mine", write_csv, make_wav, FOLDER_ROWS)
    if manifest is not None:
        (folder / EXPORT_MANIFEST).write_text(manifest, encoding="utf-8")
    assert get_task(str(folder)).spec.evaluation_data == declared


def test_folder_task_hash_is_stable(tmp_path, write_csv, make_wav):
    first = get_task(_folder(tmp_path / "one", write_csv, make_wav, FOLDER_ROWS)).ground_truth.sha256
    assert get_task(tmp_path / "one").ground_truth.sha256 == first
    shutil.copytree(tmp_path / "one", tmp_path / "elsewhere" / "two")
    assert get_task(tmp_path / "elsewhere" / "two").ground_truth.sha256 == first  # names are relative
    changed = [(n, [c.replace("barks", "growls") for c in caps]) for n, caps in FOLDER_ROWS]
    assert get_task(_folder(tmp_path / "three", write_csv, make_wav, changed)).ground_truth.sha256 != first


def test_folder_task_missing_audio_names_the_line(tmp_path, write_csv, make_wav):
    rows = [("a.wav", ["A dog\nbarks."]), ("b.wav", ["Rain."]), ("gone.wav", ["Nothing."])]
    folder = _folder(tmp_path / "f", write_csv, make_wav, rows)
    (folder / "gone.wav").unlink()
    text = (folder / "captions.csv").read_text("utf-8").replace("b.wav", "\nb.wav")  # a blank line before it
    (folder / "captions.csv").write_text(text, "utf-8")
    with pytest.raises(LarbError) as info:
        get_task(folder)
    error = info.value
    # header 1, a.wav 2-3 (the caption spans two lines), blank 4, b.wav 5, gone.wav 6
    assert error.path == str((folder / "captions.csv").resolve()) and error.line == 6
    assert "'gone.wav'" in str(error) and "does not exist" in str(error)


def test_nested_folder_task(tmp_path, write_csv, make_wav):
    root = tmp_path / "nested"
    _folder(root / "part1", write_csv, make_wav, [("x.wav", ["One."]), ("y.wav", ["Two."])])
    _folder(root / "part2", write_csv, make_wav, [("x.wav", ["Three."])], csv_name="more_captions.csv")
    write_csv(root / "notes.csv", ["id", "note"], [["1", "not a captions file"]])
    gt = get_task(root).ground_truth
    assert gt.corpus == ("part1/x.wav", "part1/y.wav", "part2/x.wav")
    assert gt.query_ids == ("part1/x.wav#1", "part1/y.wav#1", "part2/x.wav#1")
    assert gt.relevance["part2/x.wav#1"] == {"part2/x.wav": 1}


def test_folder_without_captions_csv(tmp_path):
    with pytest.raises(LarbError, match="no captions CSV"):
        get_task(tmp_path)


def test_folder_task_with_a_repeated_file(tmp_path, write_csv, make_wav):
    folder = _folder(tmp_path / "dup", write_csv, make_wav, [("a.wav", ["One."]), ("a.wav", ["Two."])])
    with pytest.raises(LarbError) as info:
        get_task(folder)
    assert info.value.line == 3 and "'a.wav' has a second row" in str(info.value)
    assert "captions.csv, line 2" in str(info.value)


def test_folder_task_bad_row_names_the_line(tmp_path, write_csv, make_wav):
    folder = _folder(tmp_path / "bad", write_csv, make_wav, FOLDER_ROWS)
    with open(folder / "captions.csv", "a", encoding="utf-8") as handle:
        handle.write("d.wav,One,Two,Three\n")
    with pytest.raises(LarbError) as info:
        get_task(folder)
    assert info.value.line == 5 and "expected 3 cells, found 4" in str(info.value)


def test_mirror_env_accepts_several_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("LARB_ASSETS_MIRROR", os.pathsep.join([str(tmp_path / "a"), " ", str(tmp_path / "b")]))
    assert assets.mirror_dirs() == [tmp_path / "a", tmp_path / "b"]


@pytest.mark.parametrize("task_id", [t for t, spec in TASKS.items() if spec.built_from is not None])
def test_an_export_of_the_split_behind_a_task_is_declared_as_that_task(task_id, tmp_path):
    """One source: the task's `built_from`; an exported folder of that split is its evaluation data."""
    from benchmark.tasks import EXPORT_MANIFEST, exported_split

    builder, split = TASKS[task_id].built_from
    (tmp_path / EXPORT_MANIFEST).write_text(json.dumps({"complete": True, "dataset": builder, "split": split}))
    assert exported_split(tmp_path) == (TASKS[task_id].evaluation_data[0],)
    assert TASKS[task_id].evaluation_data[0].startswith(task_id.split("/")[0])


def test_a_split_behind_no_task_is_declared_by_its_own_name(tmp_path):
    from benchmark.tasks import EXPORT_MANIFEST, exported_split

    (tmp_path / EXPORT_MANIFEST).write_text(json.dumps({"complete": True, "dataset": "wavtext5k", "split": "train"}))
    assert exported_split(tmp_path) == ("wavtext5k/train",)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(), st.text(), st.integers(-5, 100)), max_size=30))
def test_the_fast_row_hash_is_the_compact_json_of_each_row(rows):
    """Ground-truth hashes are pinned: the fast formatting must give json.dumps's bytes exactly,
    for any text (quotes, backslashes, control characters, non-ASCII)."""
    expected = "".join(json.dumps(list(row), ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
    assert _json_lines(rows) == expected
    assert _json_lines([row[:2] for row in rows]) == "".join(
        json.dumps(list(row[:2]), ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)


def test_grouped_relevance_credits_every_clip_with_the_querys_exact_caption(audiocaps):
    """AudioCaps test: 4,875 captions, 4,633 distinct strings; 71 strings belong to several clips,
    so 229 queries are scored as if the other clips were wrong; grouped, they are all relevant."""
    grouped = get_task("audiocaps-v1/test-grouped")
    gt, grouped_gt = audiocaps.ground_truth, grouped.ground_truth
    assert len(set(gt.query_texts)) == 4633 and grouped_gt.query_ids == gt.query_ids
    widened = [q for q in gt.query_ids if len(grouped_gt.relevance[q]) > 1]
    assert len(widened) == 229 and len({grouped_gt.query_texts[gt.query_ids.index(q)] for q in widened}) == 71
    for q in gt.query_ids:
        assert set(gt.relevance[q]) <= set(grouped_gt.relevance[q])
    assert grouped.spec.subset_of == audiocaps.id
