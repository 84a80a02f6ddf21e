"""Tasks derived from the clips a lab actually has: AudioCaps' test set without its lost videos.

AudioCaps clips are YouTube segments, and labs hold different survivors (the community's Hub
copies keep 883 of 975 test clips), so their scores on "AudioCaps test" are not comparable.
`derive(base, available)` keeps the base task's clips that are available and the queries whose
relevant clips all are. Its id is the base id plus the sha256 of the kept clip names
(`audiocaps-v1/test@available-<12 hex>`): two labs with the same clips get the same id and the
same ground truth, whatever manifest they listed them in. The record is kept in the LARB cache
(`derived-tasks/`) so `larb evaluate --task ID` finds it again, and states the coverage and the
interval the full-set score must lie in: every missing query missed (0) vs every one hit at rank
1 (1). (That interval holds per query; the missing clips would also compete in the other
queries' lists, which no bound here accounts for.)
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark import untrusted
from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError
from benchmark.tasks import EXPORT_MANIFEST, TASKS, Task, build_derived, derived_id, derived_record_path, get_task


def read_available(path: Path, corpus: tuple[str, ...]) -> list[str]:
    """The clip names a manifest lists: a task folder written by `larb data export` (the audio
    files it holds: the surest record of the clips one has), a text file with one clip per line
    (`#` comments; `.wav` may be left off), or the download manifest of `larb data build` (JSON,
    the clips it downloaded, status "ok"; clips found in a `--data-dir` are not in it)."""
    if path.is_dir():
        if not (path / EXPORT_MANIFEST).is_file():
            raise LarbError("a folder that 'larb data export' did not write.", path=path,
                            fix="give an export folder, a text file with a clip name per line, or a download "
                                "manifest.")
        return sorted(str(p.relative_to(path)) for p in path.rglob("*.wav") if p.is_file())
    untrusted.regular_file(path, what="manifest")
    text = untrusted.decode_utf8(path.read_bytes(), path)
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(text).get("items")
        except (ValueError, AttributeError):
            items = None
        if not isinstance(items, dict):
            raise LarbError("not a download manifest (a JSON object with 'items').", path=path,
                            fix="give the manifest.json of a 'larb data build audiocaps' run, or a text "
                                "file with one clip name per line.")
        names = [key for key, entry in items.items() if isinstance(entry, dict) and entry.get("status") == "ok"]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    known = set(corpus)
    return [n if n in known or f"{n}.wav" not in known else f"{n}.wav" for n in names]


def derive(base_id: str, available: list[str]) -> Task:
    """The task of `base_id` restricted to the `available` clips, recorded in the cache."""
    if base_id not in TASKS:
        raise LarbError(f"unknown task {base_id!r}.", fix="derive from a registered task ('larb tasks').")
    base = get_task(base_id)
    if base.direction != "t2a":
        raise LarbError(f"{base_id} is audio-to-text; derive from its text-to-audio task.",
                        fix="e.g. larb tasks derive audiocaps-v1/test --available MANIFEST.")
    kept = sorted(set(available) & set(base.corpus))
    task_id = derived_id(base_id, kept)
    task = build_derived(task_id, base, kept)
    record = {"id": task_id, "base": base_id, "base_sha256": base.ground_truth.sha256,
              "sha256": task.ground_truth.sha256, "coverage": coverage(task), "available": kept}
    path = derived_record_path(task_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return task


def coverage(task: Task) -> dict[str, object]:
    """Clips and queries scored of the base task's (for a derived task)."""
    if task.spec.derived_from is None:
        return {}
    base = get_task(task.spec.derived_from)
    return {"of": base.id, "clips": len(task.corpus), "of_clips": len(base.corpus),
            "queries": task.ground_truth.n_queries, "of_queries": base.ground_truth.n_queries}


def full_set_bounds(task: Task, means: dict[str, float]) -> dict[str, list[float]]:
    """Per metric, [all missing queries scored 0, all scored 1] averaged with the scored ones (the
    lower end assumes the missing clips displace none of the scored queries' results)."""
    info = coverage(task)
    n, total = int(info["queries"]), int(info["of_queries"])  # type: ignore[call-overload]
    return {m: [round(v * n / total, 10), round((v * n + total - n) / total, 10)] for m, v in means.items()}


