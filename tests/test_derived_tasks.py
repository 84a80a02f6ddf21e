"""`larb tasks derive`: a task restricted to the clips one has, with an id fixed by those clips, its
coverage and the interval the full-set score lies in; on the demo task and on AudioCaps' real test set."""

from __future__ import annotations

import json

import pytest
from conftest import AUDIOCAPS_TEST_CSV, require_shared

from benchmark.derived_tasks import derive
from benchmark.tasks import get_task


def test_a_derived_task_keeps_the_clips_listed_and_the_queries_they_answer(tmp_path, run_cli, write_ranking):
    demo = get_task("demo")
    kept = list(demo.corpus[::2])
    listed = tmp_path / "have.txt"
    listed.write_text("# the clips we have\n" + "\n".join(n.removesuffix(".wav") for n in kept) + "\n")
    code, out, err = run_cli("tasks", "derive", "demo", "--available", listed, "--json")
    assert code == 0, err
    info = json.loads(out)
    task = get_task(info["id"])  # found again by id, from the record in the cache
    assert info["id"].startswith("demo@available-") and task.corpus == tuple(kept)
    answered = [q for q in demo.ground_truth.query_ids if set(demo.ground_truth.relevance[q]) <= set(kept)]
    assert task.ground_truth.query_ids == tuple(answered)
    assert (info["clips"], info["of_clips"], info["queries"], info["of_queries"]) == (
        len(kept), len(demo.corpus), len(answered), demo.ground_truth.n_queries)
    # the same clips in another order and in a download manifest: the same task
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"items": {
        **{n.removesuffix(".wav"): {"status": "ok"} for n in reversed(kept)},
        demo.corpus[1].removesuffix(".wav"): {"status": "unavailable"}}}))
    assert derive("demo", kept[::-1]).id == info["id"]
    code, out, _ = run_cli("tasks", "derive", "demo", "--available", manifest, "--json")
    assert json.loads(out)["id"] == info["id"]
    # a perfect ranking of the derived task: the full-set score lies between n/N and 1
    ranking = write_ranking(tmp_path / "run.csv", task.ground_truth, perfect=True)
    code, out, _ = run_cli("evaluate", ranking, "--task", info["id"], "--output", tmp_path / "r.json")
    record = json.loads((tmp_path / "r.json").read_text())
    low, high = record["coverage"]["full_set_bounds"]["mAP@10"]
    assert record["metrics"]["mAP@10"] == 1.0
    assert low == pytest.approx(len(answered) / demo.ground_truth.n_queries) and high == 1.0
    assert f"full-set mAP@10 at most 1.0000, and at least {low:.4f} if the missing clips displace none" in out


def test_an_export_folder_lists_the_clips_and_an_edited_record_is_refused(tmp_path, run_cli):
    from benchmark.tasks import EXPORT_MANIFEST, derived_record_path

    demo = get_task("demo")
    folder = tmp_path / "export"
    folder.mkdir()
    for name in demo.corpus[:5]:
        (folder / name).write_bytes(b"")
    (folder / EXPORT_MANIFEST).write_text("{}")
    code, out, err = run_cli("tasks", "derive", "demo", "--available", folder, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["clips"] == 5
    record_path = derived_record_path(info["id"])
    record = json.loads(record_path.read_text())
    record["available"] = record["available"][:4]  # other clips under the same id
    record_path.write_text(json.dumps(record))
    code, _, err = run_cli("evaluate", tmp_path / "x.csv", "--task", info["id"])
    assert code == 2 and "lists other clips than its id says" in err


def test_an_unknown_derived_id_or_an_empty_manifest_is_one_clear_error(tmp_path, run_cli):
    code, _, err = run_cli("evaluate", tmp_path / "x.csv", "--task", "demo@available-000000000000")
    assert code == 2 and "not recorded on this machine" in err and "Traceback" not in err
    (tmp_path / "none.txt").write_text("not_a_clip.wav\n")
    code, _, err = run_cli("tasks", "derive", "demo", "--available", tmp_path / "none.txt")
    assert code == 2 and "none of the task's clips" in err and len(err.strip().splitlines()) == 1


def test_audiocaps_test_with_the_hub_copies_883_clips(tmp_path, full_mirror):
    require_shared(AUDIOCAPS_TEST_CSV)
    full = get_task("audiocaps-v1/test")
    have = list(full.corpus[:883])
    task = derive("audiocaps-v1/test", have)
    assert len(task.corpus) == 883 and task.ground_truth.n_queries == 883 * 5
    assert task.id == derive("audiocaps-v1/test", sorted(have)).id != derive("audiocaps-v1/test", have[1:]).id
