"""Hostile and broken inputs, generated here: each is one clear line (exit 2), reads nothing outside
its folder, and loses nothing. Archives and HTTP have their own files (test_archive_hostile.py,
test_download_hostile.py); kills and full disks are in test_fault_injection.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_wav

from benchmark import output_folders
from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError
from benchmark.reference_systems import write_random_submission
from benchmark.tasks import get_task

SECRET = "TOP-SECRET-LINE-OUTSIDE-THE-FOLDER"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside every folder handed to LARB, whose content must never be read or printed."""
    path = tmp_path / "elsewhere" / "secret.csv"
    path.parent.mkdir()
    path.write_text(SECRET + "\n")
    return path


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    folder = tmp_path / "subs" / "team-run"
    write_random_submission(folder, "demo", get_task("demo").ground_truth, 3, "2026-12-01")
    return folder


def one_error(run_cli, *args: object) -> str:
    code, _, err = run_cli(*map(str, args))
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("larb: error: ") and "Traceback" not in err, err
    return err


# ---- metadata.yaml ----------------------------------------------------------------------------

def set_metadata(folder: Path, text: str) -> None:
    (folder / "metadata.yaml").write_text(text)


ALIAS_BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x]"] + [
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]) + "\n"


@pytest.mark.parametrize(("text", "message"), [
    (ALIAS_BOMB, "expands to more than"),
    ("id: !!python/object/apply:os.system ['echo owned']\n", "invalid YAML"),
    ("id: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "(top level)"),
])
def test_hostile_metadata_is_refused_quickly_and_briefly(submission, run_cli, text, message):
    set_metadata(submission, text)
    err = one_error(run_cli, "validate", submission, "--task", "demo")
    assert message in err and len(err) < 600 and "owned" not in err


def test_an_alias_bomb_does_not_hang_the_leaderboard(submission, tmp_path):
    set_metadata(submission, ALIAS_BOMB)
    done = subprocess.run([sys.executable, "-m", "benchmark.cli", "leaderboard", "--check", "--submissions",
                           str(submission.parent), "--output", str(tmp_path / "board.md")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "expands to more than" in done.stderr and len(done.stderr) < 600


def test_a_huge_metadata_file_is_refused_before_parsing(submission, run_cli):
    set_metadata(submission, "description: " + "x" * (300 * 1024) + "\n")
    assert "more than the 262,144 allowed" in one_error(run_cli, "validate", submission, "--task", "demo")


def test_a_wrong_type_names_the_field_but_not_the_whole_value(submission, run_cli):
    text = (submission / "metadata.yaml").read_text().replace("team: ", "team_was: ", 1)
    set_metadata(submission, text + "team:\n" + "".join(f"  k{i}: {'v' * 50}\n" for i in range(200)))
    err = one_error(run_cli, "validate", submission, "--task", "demo")
    assert "metadata field" in err and "team" in err and "(cut)" in err and len(err) < 600


def test_an_impossible_date_is_one_line(submission, run_cli):
    text = (submission / "metadata.yaml").read_text()
    set_metadata(submission, "\n".join("date: 2026-02-30" if line.startswith("date:") else line
                                       for line in text.splitlines()) + "\n")
    assert "'2026-02-30' is not a real date" in one_error(run_cli, "validate", submission, "--task", "demo")


# ---- files outside the folder, and special files ------------------------------------------

def test_a_ranking_linked_outside_the_submission_is_not_read(submission, outside, run_cli):
    ranking = submission / "demo.csv"
    ranking.unlink()
    ranking.symlink_to(outside)
    err = one_error(run_cli, "validate", submission, "--task", "demo")
    assert "outside" in err and SECRET not in err


def test_a_fifo_ranking_is_refused_not_waited_on(submission, tmp_path):
    (submission / "demo.csv").unlink()
    os.mkfifo(submission / "demo.csv")
    for target in (submission, submission / "demo.csv"):
        done = subprocess.run([sys.executable, "-m", "benchmark.cli", "evaluate", str(target), "--task", "demo",
                               "--output", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 2 and "FIFO" in done.stderr, done.stderr


def task_folder(root: Path, rows: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(12):
        write_wav(root / f"clip{i}.wav")
    lines = ["file_name,caption_1"] + [f"clip{i}.wav,sound number {i}" for i in range(12)] + rows
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("name", ["ABSOLUTE", "../elsewhere/secret.csv", "sub/../../elsewhere/secret.csv"])
def test_a_task_folder_cannot_name_a_file_outside_it(tmp_path, outside, run_cli, submission, name):
    name = str(outside) if name == "ABSOLUTE" else name
    folder = task_folder(tmp_path / "task", [f"{name},a secret caption"])
    err = one_error(run_cli, "validate", submission, "--task", folder)
    assert "outside the task folder" in err and SECRET not in err


def test_symlinked_audio_outside_the_task_folder_is_refused(tmp_path, outside, submission, run_cli):
    folder = task_folder(tmp_path / "task", ["linked.wav,a linked clip"])
    (folder / "linked.wav").symlink_to(outside)
    assert "outside" in one_error(run_cli, "validate", submission, "--task", folder)


def test_fifos_and_links_in_a_task_folder_are_skipped_not_opened(tmp_path, outside, submission):
    folder = task_folder(tmp_path / "task", [])
    os.mkfifo(folder / "pipe.csv")
    (folder / "linked.csv").symlink_to(outside)
    task = get_task(folder)  # would block on the FIFO, or read the link, if either were opened
    assert len(task.ground_truth.corpus) == 12


def test_a_fifo_named_as_audio_is_refused(tmp_path, submission, run_cli):
    folder = task_folder(tmp_path / "task", ["pipe.wav,a pipe"])
    os.mkfifo(folder / "pipe.wav")
    assert "does not exist (or is not a regular file)" in one_error(run_cli, "validate", submission, "--task",
                                                                     folder)


def test_a_bad_byte_late_in_a_task_csv_names_its_line(tmp_path, submission, run_cli):
    folder = task_folder(tmp_path / "task", [])
    data = (folder / "captions.csv").read_bytes()
    filler = b"".join(b"extra%d.wav,%s\n" % (i, b"x" * 100) for i in range(100))  # past the first 8 KB
    (folder / "captions.csv").write_bytes(data + filler + b"late.wav,caf\xe9\n")
    err = one_error(run_cli, "validate", submission, "--task", folder)
    assert "not valid UTF-8" in err and f"line {14 + 100}" in err


# ---- rankings -------------------------------------------------------------------------------

def test_candidate_columns_out_of_order_are_refused(submission, run_cli):
    ranking = submission / "demo.csv"
    lines = ranking.read_text().splitlines()
    header = lines[0].split(",")
    first = header.index("fname_1")
    header[first:first + 10] = reversed(header[first:first + 10])
    ranking.write_text("\n".join([",".join(header), *lines[1:]]) + "\n")
    assert "not in order" in one_error(run_cli, "validate", submission, "--task", "demo")


def test_utf16_is_named_as_utf16(submission, run_cli):
    ranking = submission / "demo.csv"
    ranking.write_bytes(ranking.read_text().encode("utf-16"))
    assert "UTF-16" in one_error(run_cli, "validate", submission, "--task", "demo")


def test_a_cell_over_the_csv_field_limit_is_named_as_such(submission, run_cli):
    ranking = submission / "demo.csv"
    lines = ranking.read_text().splitlines()
    ranking.write_text("\n".join([lines[0], "x" * 140_000 + lines[1], *lines[2:]]) + "\n")
    err = one_error(run_cli, "validate", submission, "--task", "demo")
    assert "longer than 131,072 characters" in err and "line 2" in err


def test_a_ranking_named_dot_dot_dot_csv_keeps_its_record_inside_results(submission, tmp_path, monkeypatch,
                                                                         run_cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "...csv").write_bytes((submission / "demo.csv").read_bytes())
    code, out, err = run_cli("evaluate", "...csv", "--task", "demo")
    assert code == 0, err
    written = Path(out.strip().splitlines()[-1].removeprefix("result record: "))
    assert written.resolve().is_relative_to(tmp_path / "results")


@pytest.mark.parametrize("target", ["demo.csv", "metadata.yaml"])
def test_evaluate_never_overwrites_its_own_input(submission, run_cli, target):
    before = (submission / target).read_bytes()
    assert "a file of the submission" in one_error(run_cli, "evaluate", submission, "--task", "demo",
                                                   "--output", submission / target)
    assert (submission / target).read_bytes() == before


def test_evaluate_never_overwrites_a_file_that_is_not_a_record(submission, tmp_path, run_cli):
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}\n')
    assert "not a LARB result record" in one_error(run_cli, "evaluate", submission, "--task", "demo",
                                                   "--output", notes)
    assert notes.read_text() == '{"mine": true}\n'


def test_a_broken_pipe_is_not_a_traceback():
    done = subprocess.run(f"{sys.executable} -m benchmark.cli tasks --queries demo | head -1", shell=True,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.count("\n") == 1 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_larb_debug_shows_the_traceback(submission, tmp_path):
    set_metadata(submission, "id: [unclosed\n")
    command = [sys.executable, "-m", "benchmark.cli", "validate", str(submission), "--task", "demo"]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    loud = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "LARB_DEBUG": "1"})
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr


# ---- output folders -------------------------------------------------------------------------

def test_overwrite_never_deletes_a_folder_larb_did_not_write(tmp_path):
    data = tmp_path / "downloads"
    data.mkdir()
    (data / "clotho_audio_evaluation.7z").write_bytes(b"the user's only copy")
    for reads in ([data], []):
        with pytest.raises(LarbError, match="overlaps a folder this command reads|only a folder that LARB wrote"):
            output_folders.check_target(data, overwrite=True, reads=reads)
    assert (data / "clotho_audio_evaluation.7z").read_bytes() == b"the user's only copy"


def test_data_build_into_its_own_data_dir_with_overwrite_is_refused(tmp_path, run_cli, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("LARB_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "downloads"
    data.mkdir()
    (data / "clotho_captions_evaluation.csv").write_text("the user's only copy\n")
    err = one_error(run_cli, "data", "build", "clotho", "--split", "evaluation", "--data-dir", data, "--output",
                    data, "--overwrite")
    assert "overlaps a folder this command reads" in err
    assert (data / "clotho_captions_evaluation.csv").read_text() == "the user's only copy\n"


def test_publish_swaps_a_larb_folder_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "out"
    for version in ("old", "new"):
        staging = output_folders.staging_folder(target, "test")
        (staging / "value").write_text(version)
        output_folders.publish(staging, target, overwrite=True)
    assert (target / "value").read_text() == "new" and os.listdir(tmp_path) == ["out"]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_a_dead_process_are_cleaned_by_the_next_run(tmp_path):
    target = tmp_path / "out"
    staging = output_folders.staging_folder(target, "test")
    output_folders.publish(staging, target, overwrite=False)
    pid = dead_pid()
    (tmp_path / f".out.partial-{pid}").mkdir()
    (tmp_path / f".record.json.{pid}.abc123.tmp").write_text("half")
    (tmp_path / f".record.json.{os.getpid()}.live00.tmp").write_text("a live writer's")
    # the old output moved aside by a process that died before the new one took its place
    os.rename(target, tmp_path / f".out.old-{pid}")
    output_folders.check_target(target, overwrite=True)
    atomic_write_text(tmp_path / "record.json", "{}")
    assert sorted(os.listdir(tmp_path)) == sorted(["out", "record.json", f".record.json.{os.getpid()}.live00.tmp"])
    assert (target / output_folders.MARKER).is_file()


# ---- caches and checkpoints -----------------------------------------------------------------

def test_bad_shards_are_set_aside_and_recomputed(tmp_path, caplog):
    from baselines.embedding_cache import EmbeddingCache, cached_extract

    items = [f"item {i}" for i in range(8)]
    def compute(batch: list[str]) -> np.ndarray:
        return np.stack([np.full(4, float(x.split()[1]), np.float32) for x in batch])

    cache = EmbeddingCache("enc", "sha256:1", "p", tmp_path)
    cached_extract(cache, items, items, compute, 2, "x", progress=False)
    shards = sorted(cache.folder.glob("shard-*.npz"))  # four shards of two vectors
    shards[0].write_bytes(shards[0].read_bytes()[:40])  # truncated
    changed = bytearray(shards[1].read_bytes())
    changed[len(changed) // 2] ^= 0xFF
    shards[1].write_bytes(bytes(changed))  # one byte changed: fails its checksum
    buffer = io.BytesIO()
    np.savez(buffer, keys=np.asarray(["item 9"]), vectors=np.ones((1, 7), np.float32))
    wide = cache.folder / f"shard-{hashlib.sha256(buffer.getvalue()).hexdigest()}.npz"
    wide.write_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    np.savez(buffer, keys=np.asarray(["item 0", "item 1"]), vectors=np.full((2, 4), np.nan, np.float32))
    nan_shard = cache.folder / f"shard-{hashlib.sha256(buffer.getvalue()).hexdigest()}.npz"
    nan_shard.write_bytes(buffer.getvalue())

    again = EmbeddingCache("enc", "sha256:1", "p", tmp_path)
    assert len(again) == 4  # the two untouched shards
    vectors, computed = cached_extract(again, items, items, compute, 2, "x", progress=False)
    assert computed == 4 and vectors[:, 0].tolist() == list(range(8))
    set_aside = sorted(p.name.removesuffix(".bad") for p in cache.folder.glob("*.bad"))
    expected = [shards[0].name, shards[1].name, nan_shard.name]
    if wide.name > min(s.name for s in shards[2:]):  # read after a 4-wide shard fixed the width
        expected.append(wide.name)
    assert set_aside == sorted(expected) and all(name in caplog.text for name in expected)


def test_an_encoder_that_gives_nan_is_refused_not_cached(tmp_path):
    from baselines.embedding_cache import EmbeddingCache

    cache = EmbeddingCache("enc", "sha256:1", "p", tmp_path)
    with pytest.raises(LarbError, match="non-finite"):
        cache.add(["a"], np.full((1, 4), np.nan))
    assert not list(cache.folder.glob("shard-*"))


def test_a_checkpoint_without_its_baseline_key_is_one_error(tmp_path):
    torch = pytest.importorskip("torch")
    from baselines import checkpoint

    path = tmp_path / "best.pt"
    torch.save({"format": checkpoint.FORMAT, "weights": {}}, path)
    with pytest.raises(LarbError, match="does not say which baseline"):
        checkpoint.load(path, "passt-mpnet-tags")


def test_a_cache_entry_that_is_a_folder_is_named_as_such(tmp_path, monkeypatch):
    from benchmark import assets

    monkeypatch.setenv("LARB_CACHE_DIR", str(tmp_path))
    asset = assets.get("audioset/class_labels_indices")
    (tmp_path / "assets" / asset.file_name).mkdir(parents=True)
    with pytest.raises(LarbError, match="should be a file, but this is a folder"):
        assets.fetch(asset.name)


def test_a_builder_table_with_a_huge_cell_names_its_line(tmp_path):
    from datasets_builders.tables import read_rows, wide_captions

    path = tmp_path / "clotho_captions_evaluation.csv"
    path.write_text("file_name,caption_1\na.wav,ok\nb.wav," + "y" * 140_000 + "\n")
    for reader in (read_rows, wide_captions):
        with pytest.raises(LarbError, match=r"line 3: malformed CSV \(field larger than field limit"):
            reader(path)
    path.write_bytes(b"file_name,caption_1\n" + b"a.wav,ok\n" * 2000 + b"b.wav,caf\xe9\n")
    with pytest.raises(LarbError, match="line 2002: byte 0xe9"):
        wide_captions(path)


def test_record_json_is_what_evaluate_prints(submission, tmp_path, run_cli):
    code, out, _ = run_cli("evaluate", submission, "--task", "demo", "--json", "--output", tmp_path / "r.json")
    assert code == 0 and json.loads(out) == json.loads((tmp_path / "r.json").read_text())
