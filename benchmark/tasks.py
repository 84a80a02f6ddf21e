"""The task registry: versioned, immutable retrieval benchmarks.

A task pins its ground truth by sha256: loading recomputes the hashes from the fetched
assets and refuses to score when they differ from the pinned ones, so a task can never
change silently. A change is a new version (a new `TaskSpec`), the old one stays.

Besides the registered tasks, `get_task(PATH)` accepts a folder holding Clotho-layout
captions CSVs and the audio files they name: a user's own benchmark, hashed the same way.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from benchmark import assets, demo_data, untrusted
from benchmark.errors import LarbError
from benchmark.groundtruth import (
    Direction,
    GroundTruth,
    RelevanceKind,
    audiocaps_t2a,
    captions_a2t,
    captions_t2a,
    grouped_by_caption,
)
from benchmark.metrics import METRIC_NAMES, K, parse_metric


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """What a registered task is: its id, version, ground-truth source and pinned hash (every field
    named where a task is declared)."""

    id: str
    version: int
    title: str
    direction: Direction
    kind: RelevanceKind
    assets: tuple[str, ...]
    build: Callable[[], GroundTruth] = field(repr=False, compare=False)
    sha256: str
    source: str
    audio: str
    # datasets/splits whose use in training means "trained on this task's evaluation data"
    evaluation_data: tuple[str, ...] = ()
    main_metric: str = "mAP@10"
    # the candidates per query a ranking must give, and the metrics scored (each k <= depth)
    depth: int = K
    metrics: tuple[str, ...] = METRIC_NAMES
    # a task whose queries are some of another task's (same corpus): a ranking of that task may be
    # scored on this one with `subset=True` (`--subset`); `transposed` names the audio-to-text task
    # that a similarity matrix of this one also ranks
    subset_of: str | None = None
    transposed: str | None = None
    # for generated tasks: makes the audio and returns its folder
    local_audio: Callable[[], Path] | None = field(default=None, repr=False, compare=False)
    # (dataset builder, split) whose build reproduces this task's ground truth: the one statement of
    # which split backs which task; `larb data info`, `larb data groundtruth` and exports derive from it
    built_from: tuple[str, str] | None = None
    # the pinned metadata asset that names the source (Freesound id, YouTube id...) of each audio
    # file, for the contamination audit (`benchmark.contamination`); None when no metadata has it
    corpus_metadata: str | None = None
    # build options of the data a folder task was exported from (e.g. WavCaps' blacklist): part of
    # what training on it declares
    training_options: tuple[tuple[str, str], ...] = ()
    # a task derived from the clips a lab has (`benchmark.derived_tasks`): the task it restricts
    derived_from: str | None = None


@dataclass(frozen=True)
class Task:
    """A loaded task: its spec, its verified ground truth and where its audio lives, if anywhere."""

    spec: TaskSpec
    ground_truth: GroundTruth
    audio_dir: Path | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> int:
        return self.spec.version

    # The ground truth's parts, in the one order every ranking, array and matrix uses: queries in
    # `query_ids` order (rows), candidates in `corpus` order (columns; ties rank in this order).
    @property
    def direction(self) -> str:
        """"t2a" (queries are captions, the corpus audio file names) or "a2t" (the reverse)."""
        return self.ground_truth.direction

    @property
    def kind(self) -> str:
        """"single", "multi" (several relevant files per query) or "graded" (ratings 0-100)."""
        return self.ground_truth.kind

    @property
    def query_ids(self) -> tuple[str, ...]:
        return self.ground_truth.query_ids

    @property
    def query_texts(self) -> tuple[str, ...]:
        """The caption of each query (text-to-audio), or its file name (audio-to-text)."""
        return self.ground_truth.query_texts

    @property
    def corpus(self) -> tuple[str, ...]:
        return self.ground_truth.corpus

    @property
    def relevance(self) -> dict[str, dict[str, int]]:
        """query id -> {relevant candidate: grade}."""
        return self.ground_truth.relevance

    def audio_path(self, name: str) -> Path:
        """The local audio file of a corpus item (text-to-audio) or query (audio-to-text)."""
        if self.audio_dir is None:
            raise LarbError(f"task {self.id} has no local audio.",
                            fix=f"get it with: {self.spec.audio}, then pass its folder as a task PATH.")
        path = self.audio_dir / name
        if not path.is_file():
            raise LarbError(f"audio file {name!r} of task {self.id} is missing.", path=path,
                            fix="restore the file, or remove its row from the captions CSV.")
        untrusted.inside(self.audio_dir, path, what=f"audio file {name!r}")
        return path


def _read_csv_rows(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    with open(path, newline="", encoding=encoding) as handle:
        return list(csv.DictReader(handle))


def _caption_rows(path: Path) -> list[tuple[str, list[str]]]:
    """(file name, captions) from a wide Clotho-layout CSV (`file_name,caption_1..N`)."""
    return [(name, captions) for _, name, captions in _numbered_caption_rows(path)]


def _numbered_caption_rows(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line where the row begins, file name, captions) from a wide Clotho-layout CSV."""
    reader = csv.reader(io.StringIO(_decoded(path), newline=""))
    try:
        header = next(reader, None)
        if not header or header[0].strip() != "file_name":
            raise LarbError("not a Clotho-layout captions CSV: the first column must be 'file_name'.",
                            path=path, line=1, fix="use the header file_name,caption_1,...,caption_N.")
        columns = [i for i, name in enumerate(header) if name.strip().startswith("caption_")]
        if not columns:
            raise LarbError("the captions CSV has no caption_N column.", path=path, line=1,
                            fix="use the header file_name,caption_1,...,caption_N.")
        rows = []
        start = reader.line_num + 1  # where the next row begins (a quoted caption may span lines)
        for row in reader:
            line_no, start = start, reader.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                raise LarbError(f"expected {len(header)} cells, found {len(row)}.", path=path, line=line_no,
                                fix="quote captions that contain commas.")
            rows.append((line_no, row[0], [row[i] for i in columns]))
    except csv.Error as exc:
        raise LarbError(f"malformed CSV ({exc}).", path=path, line=reader.line_num,
                        fix="quote captions as a whole and close every quote; no cell may exceed "
                            f"{csv.field_size_limit():,} characters.") from None
    return rows


def _decoded(path: Path) -> str:
    """The whole file as text (UTF-8, a BOM allowed); a bad byte anywhere is named by its line."""
    return untrusted.decode_utf8(untrusted.regular_file(path, what="captions CSV").read_bytes(), path)


def _clotho(asset: str, build: Callable = captions_t2a) -> Callable[[], GroundTruth]:
    return lambda: build(_caption_rows(assets.fetch(asset)))


def _caption_index(rows: Iterable[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """caption text -> query ids holding it (Clotho ids)."""
    index: dict[str, list[str]] = {}
    gt = captions_t2a(rows)
    for qid, text in zip(gt.query_ids, gt.query_texts, strict=True):
        index.setdefault(text, []).append(qid)
    return index


def _clotho_multi_positive() -> GroundTruth:
    """DCASE 2025 annotations: each listed query with every audio file marked as matching.

    Lists are used as published (46 of them omit the caption's own audio file)."""
    rows = _caption_rows(assets.fetch("clotho-v2.1/captions-evaluation"))
    index = _caption_index(rows)
    corpus = tuple(name for name, _ in rows)
    ids, texts, relevance = [], [], {}
    for record in _read_csv_rows(assets.fetch("dcase2025/multi-positive-evaluation")):
        text = record["query"]
        matches = index.get(text, [])
        if len(matches) != 1:
            raise LarbError(f"query {text!r} matches {len(matches)} Clotho evaluation captions.",
                            fix="the annotation file is not the pinned one; check its checksum.")
        qid = matches[0]
        ids.append(qid)
        texts.append(text)
        relevance[qid] = {name: 1 for name in ast.literal_eval(record["audio_filenames"])}
    return GroundTruth("t2a", tuple(ids), tuple(texts), corpus, relevance, "multi")


def _clotho_graded() -> GroundTruth:
    """TAU Audio-Text Graded Relevances 2023 (evaluation split): 200 queries, 17 rated audio
    each, ratings 0-100 used as linear gains; unrated corpus files have gain 0."""
    rows = _caption_rows(assets.fetch("clotho-v2.1/captions-evaluation"))
    index = _caption_index(rows)
    corpus = tuple(name for name, _ in rows)
    fid_to_file = {r["fid"]: r["file_name"]
                   for r in _read_csv_rows(assets.fetch("tau-graded-2023/evaluation-audio-metadata"))}
    tid_to_text = {r["tid"]: r["text"] for r in _read_csv_rows(assets.fetch("tau-graded-2023/evaluation-text"))}
    relevance_by_tid: dict[str, dict[str, int]] = {}
    for r in _read_csv_rows(assets.fetch("tau-graded-2023/evaluation-relevances")):
        relevance_by_tid.setdefault(r["tid"], {})[fid_to_file[r["fid"]]] = int(r["rating"])
    ids, texts, relevance = [], [], {}
    for r in _read_csv_rows(assets.fetch("tau-graded-2023/evaluation-queries")):
        text = tid_to_text[r["tid"]]
        (qid,) = index[text]
        ids.append(qid)
        texts.append(text)
        relevance[qid] = relevance_by_tid[r["tid"]]
    return GroundTruth("t2a", tuple(ids), tuple(texts), corpus, relevance, "graded")


def _audiocaps_test() -> GroundTruth:
    records = _read_csv_rows(assets.fetch("audiocaps-v1/test-captions"))
    return audiocaps_t2a((r["audiocap_id"], r["youtube_id"], r["start_time"], r["caption"]) for r in records)


def _audiocaps_test_a2t() -> GroundTruth:
    """Audio to text: each clip a query, its five captions relevant; a caption string several clips
    share is one candidate relevant to each of them."""
    t2a = _audiocaps_test()
    captions: dict[str, list[str]] = {}
    for qid, text in zip(t2a.query_ids, t2a.query_texts, strict=True):
        (name,) = t2a.relevance[qid]
        captions.setdefault(name, []).append(text)
    return captions_a2t(captions.items())


def _audiocaps_test_grouped() -> GroundTruth:
    return grouped_by_caption(_audiocaps_test())


def demo_folder(split: str) -> Path:
    """Where the generated demo split lives (generated on first use)."""
    folder = assets.cache_dir() / "demo" / f"v1-{split}"
    demo_data.generate(split, folder)
    return folder


def _demo(split: str) -> Callable[[], GroundTruth]:
    return lambda: captions_t2a(_caption_rows(demo_folder(split) / demo_data.CAPTIONS_FILE))


_CLOTHO_SOURCE = "Drossos et al., Clotho, ICASSP 2020; Zenodo record 4783391 (v2.1)"
_CLOTHO_AUDIO = "larb data build clotho --split {}"
_CLOTHO_METADATA = "tau-graded-2023/{}-audio-metadata"

TASKS: dict[str, TaskSpec] = {}


def _register(spec: TaskSpec) -> None:
    if spec.id in TASKS:
        raise ValueError(f"task {spec.id!r} registered twice")
    if spec.main_metric not in spec.metrics or max(parse_metric(m)[1] for m in spec.metrics) > spec.depth:
        raise ValueError(f"task {spec.id!r}: the main metric must be scored and every cut-off within the depth")
    TASKS[spec.id] = spec


for _spec in (
    TaskSpec(
        id="clotho-v2.1/evaluation", version=1,
        title="Clotho v2.1 evaluation (DCASE 2022-2024 development-testing), text-to-audio", direction="t2a",
        kind="single", assets=("clotho-v2.1/captions-evaluation",), build=_clotho("clotho-v2.1/captions-evaluation"),
        sha256="0272fc75c48a1d244df4c9ac6a2e52c57da45d5e9a292de5e84cda251e29ac07", source=_CLOTHO_SOURCE,
        audio=_CLOTHO_AUDIO.format("evaluation"), evaluation_data=("clotho-v2.1/evaluation",),
        built_from=("clotho", "evaluation"), transposed="clotho-v2.1/evaluation-a2t",
        corpus_metadata=_CLOTHO_METADATA.format("evaluation")),
    TaskSpec(
        id="clotho-v2.1/evaluation-a2t", version=1,
        title="Clotho v2.1 evaluation, audio-to-text (all 5 captions relevant)", direction="a2t", kind="multi",
        assets=("clotho-v2.1/captions-evaluation",), build=_clotho("clotho-v2.1/captions-evaluation", captions_a2t),
        sha256="530f77205d30c85b3255e69cad9b5c9010937374d110c2cd86f1f2621f6b3137", source=_CLOTHO_SOURCE,
        audio=_CLOTHO_AUDIO.format("evaluation"), evaluation_data=("clotho-v2.1/evaluation",),
        built_from=("clotho", "evaluation"), corpus_metadata=_CLOTHO_METADATA.format("evaluation")),
    TaskSpec(
        id="clotho-v2.1/validation", version=1, title="Clotho v2.1 validation, text-to-audio", direction="t2a",
        kind="single", assets=("clotho-v2.1/captions-validation",), build=_clotho("clotho-v2.1/captions-validation"),
        sha256="", source=_CLOTHO_SOURCE, audio=_CLOTHO_AUDIO.format("validation"),
        evaluation_data=("clotho-v2.1/validation",), built_from=("clotho", "validation"),
        corpus_metadata=_CLOTHO_METADATA.format("validation")),
    TaskSpec(
        id="clotho-v2.1/development", version=1, title="Clotho v2.1 development, text-to-audio", direction="t2a",
        kind="single", assets=("clotho-v2.1/captions-development",),
        build=_clotho("clotho-v2.1/captions-development"), sha256="", source=_CLOTHO_SOURCE,
        audio=_CLOTHO_AUDIO.format("development"), evaluation_data=("clotho-v2.1/development",),
        built_from=("clotho", "development"), corpus_metadata=_CLOTHO_METADATA.format("development")),
    TaskSpec(
        id="clotho-v2.1/evaluation-multi", version=1,
        title="Clotho v2.1 evaluation with the DCASE 2025 multi-positive annotations", direction="t2a",
        kind="multi", assets=("clotho-v2.1/captions-evaluation", "dcase2025/multi-positive-evaluation"),
        build=_clotho_multi_positive, sha256="4d470f4ef96a81fcf48332b43fa1328865103bbdd8861899c68fddce0362771e",
        source="DCASE 2025 Task 6; CPJKU/dcase2025_task6_baseline", audio=_CLOTHO_AUDIO.format("evaluation"),
        evaluation_data=("clotho-v2.1/evaluation",), depth=16, main_metric="mAP@16",
        metrics=("mAP@16", "mAP@10", "R@1", "R@5", "R@10", "nDCG@10"), subset_of="clotho-v2.1/evaluation",
        corpus_metadata=_CLOTHO_METADATA.format("evaluation")),
    TaskSpec(
        id="clotho-v2.1/evaluation-graded", version=1,
        title="Clotho v2.1 evaluation with TAU Audio-Text Graded Relevances 2023 (nDCG@10)", direction="t2a",
        kind="graded",
        assets=("clotho-v2.1/captions-evaluation", "tau-graded-2023/evaluation-queries",
                "tau-graded-2023/evaluation-relevances", "tau-graded-2023/evaluation-text",
                "tau-graded-2023/evaluation-audio-metadata"),
        build=_clotho_graded, sha256="8975229c176b17ce253c12a0f6a24f69e04a2244a9065f104e624ee1427f6ec9",
        source="Xie et al., DCASE Workshop 2023; xieh97/retrieval-relevance-crowdsourcing",
        audio=_CLOTHO_AUDIO.format("evaluation"), evaluation_data=("clotho-v2.1/evaluation",), main_metric="nDCG@10",
        subset_of="clotho-v2.1/evaluation", corpus_metadata=_CLOTHO_METADATA.format("evaluation")),
    TaskSpec(
        id="audiocaps-v1/test", version=1, title="AudioCaps v1 test, text-to-audio (975 clips x 5 captions)",
        direction="t2a", kind="single", assets=("audiocaps-v1/test-captions",), build=_audiocaps_test,
        sha256="f93afda312048c6a25f1a2296a0d57e00680f37bc6c0b98325c47fb659339861",
        source="Kim et al., AudioCaps, NAACL 2019; cdjkim/audiocaps", audio="larb data build audiocaps --split test",
        evaluation_data=("audiocaps-v1/test",), built_from=("audiocaps", "test"), transposed="audiocaps-v1/test-a2t",
        corpus_metadata="audiocaps-v1/test-captions"),
    TaskSpec(
        id="audiocaps-v1/test-a2t", version=1,
        title="AudioCaps v1 test, audio-to-text (975 clips; all 5 captions relevant)", direction="a2t",
        kind="multi", assets=("audiocaps-v1/test-captions",), build=_audiocaps_test_a2t,
        sha256="d4c0715e4d3434ff025ee0474a77a5570c8fdce75b7454ed964b9b4213814531",
        source="Kim et al., AudioCaps, NAACL 2019; cdjkim/audiocaps", audio="larb data build audiocaps --split test",
        evaluation_data=("audiocaps-v1/test",), built_from=("audiocaps", "test"),
        corpus_metadata="audiocaps-v1/test-captions"),
    TaskSpec(
        id="audiocaps-v1/test-grouped", version=1,
        title="AudioCaps v1 test, grouped relevance: every clip with the query's exact caption is relevant",
        direction="t2a", kind="multi", assets=("audiocaps-v1/test-captions",), build=_audiocaps_test_grouped,
        sha256="b3ba033e6d81b584ba30fecb3def749167873662c4d5c8e8ee70509cfefe168c",
        source="Kim et al., AudioCaps, NAACL 2019; cdjkim/audiocaps (grouping by LARB)",
        audio="larb data build audiocaps --split test", evaluation_data=("audiocaps-v1/test",),
        subset_of="audiocaps-v1/test", corpus_metadata="audiocaps-v1/test-captions"),
    TaskSpec(
        id="demo", version=1, title="Synthetic demo (generated, no download), held-out clips", direction="t2a",
        kind="single", assets=(), build=_demo("test"),
        sha256="e54f8cb81740663cb8d89dd7e81017f9c2853fb4f2290f788dae502bf91ae63e",
        source="generated by benchmark/demo_data.py", audio="generated automatically",
        evaluation_data=("demo/test",), local_audio=lambda: demo_folder("test")),
    TaskSpec(
        id="demo-train", version=1, title="Synthetic demo (generated, no download), training clips", direction="t2a",
        kind="single", assets=(), build=_demo("train"),
        sha256="3e501b3656987500899c38ddba2efaeb420bfb9febc755b072a34d8ffda90c10",
        source="generated by benchmark/demo_data.py", audio="generated automatically",
        evaluation_data=("demo/train",), local_audio=lambda: demo_folder("train")),
):
    _register(_spec)


def task_ids() -> list[str]:
    return sorted(TASKS)


@cache
def _load_registered(task_id: str) -> Task:
    spec = TASKS[task_id]
    ground_truth = spec.build()
    if spec.sha256 and ground_truth.sha256 != spec.sha256:
        raise LarbError(
            f"the ground truth of task {task_id} hashes to {ground_truth.sha256}, not the pinned "
            f"{spec.sha256}.", fix="its source files changed; delete them from the cache and fetch again.")
    return Task(spec, ground_truth, spec.local_audio() if spec.local_audio else None)


# --- tasks derived from the clips a lab has (`benchmark.derived_tasks` derives and records them) ---

DERIVED_MARK = "@available-"


def _derived_folder() -> Path:
    return assets.cache_dir() / "derived-tasks"


def derived_record_path(task_id: str) -> Path:
    return _derived_folder() / (task_id.replace("/", "__") + ".json")


def _restricted(gt: GroundTruth, available: set[str]) -> GroundTruth:
    corpus = tuple(name for name in gt.corpus if name in available)
    rows = [q for q, qid in enumerate(gt.query_ids) if set(gt.relevance[qid]) <= available]
    if not corpus or not rows:
        raise LarbError("none of the task's clips (or no query's clips) are in the manifest.",
                        fix="list the clips you have by the task's file names (e.g. <youtube_id>_<start>.wav).")
    ids = tuple(gt.query_ids[q] for q in rows)
    return GroundTruth(gt.direction, ids, tuple(gt.query_texts[q] for q in rows), corpus,
                       {qid: gt.relevance[qid] for qid in ids}, gt.kind)


def derived_id(base_id: str, kept: list[str]) -> str:
    """`base@available-<sha256 of the sorted clip names, 12 hex>`: the same clips, the same task."""
    digest = hashlib.sha256("\n".join(sorted(kept)).encode("utf-8")).hexdigest()
    return f"{base_id}{DERIVED_MARK}{digest[:12]}"


def build_derived(task_id: str, base: Task, kept: list[str]) -> Task:
    """`base` restricted to the clips `kept` and the queries whose relevant clips are all kept."""
    gt = _restricted(base.ground_truth, set(kept))
    spec = dataclasses.replace(
        base.spec, id=task_id, title=f"{base.spec.title}, the {len(gt.corpus)} of {len(base.corpus)} clips "
                                     "available here", build=lambda: gt, sha256=gt.sha256,
        source=f"derived from {base.id} by 'larb tasks derive'", transposed=None, built_from=None,
        subset_of=None, derived_from=base.id)
    return Task(spec, gt, base.audio_dir)


def _load_derived(task_id: str) -> Task:
    """A derived task recorded in this cache, its ground truth rebuilt and checked."""
    path = derived_record_path(task_id)
    base_id = task_id.split(DERIVED_MARK)[0]
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        kept, sha = [str(name) for name in record["available"]], str(record["sha256"])
        recorded_base = record["base"]
    except (OSError, ValueError, KeyError, TypeError):
        raise LarbError(f"the derived task {task_id} is not recorded on this machine.", path=path,
                        fix=f"derive it here: larb tasks derive {base_id} --available MANIFEST "
                            "(the same clips give the same id).") from None
    if recorded_base != base_id or derived_id(base_id, kept) != task_id:
        raise LarbError(f"the record of {task_id} lists other clips than its id says.", path=path,
                        fix="delete the record and derive the task again.")
    task = build_derived(task_id, get_task(base_id), kept)
    if task.ground_truth.sha256 != sha:
        raise LarbError(f"the derived task {task_id} no longer matches its record.", path=path,
                        fix="delete the record and derive the task again.")
    return task


def get_task(name_or_path: str | Path) -> Task:
    """A registered task by id, or a user's folder task by path."""
    name = str(name_or_path)
    if name in TASKS:
        return _load_registered(name)
    if DERIVED_MARK in name and name.split(DERIVED_MARK)[0] in TASKS:
        return _load_derived(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return folder_task(path)
    raise LarbError(f"unknown task {name!r}.",
                    fix="run 'larb tasks' to list the tasks, or pass a folder holding a captions CSV "
                        "(file_name,caption_1..N) and its audio files.")


def folder_task(folder: Path) -> Task:
    """A user's own text-to-audio task from a folder of Clotho-layout captions CSVs and audio.

    CSVs anywhere below the folder are read in path order; a CSV's file names are taken
    relative to its own folder, and the corpus names are paths relative to `folder`.
    """
    folder = folder.resolve()
    csv_files = sorted(p for p in folder.rglob("*.csv") if _is_captions_csv(folder, p))
    if not csv_files:
        raise LarbError("no captions CSV (header file_name,caption_1..N) in this folder.", path=folder,
                        fix="add one: a row per audio file, its captions in caption_1..caption_N.")
    rows: list[tuple[str, list[str]]] = []
    first_row: dict[str, str] = {}  # corpus name -> where its row is
    for csv_path in csv_files:
        base = csv_path.parent.relative_to(folder)
        for line_no, file_name, captions in _numbered_caption_rows(csv_path):
            name = (base / file_name).as_posix()
            if Path(file_name).is_absolute() or os.path.normpath(name).startswith(".."):
                raise LarbError(f"the file name {file_name!r} points outside the task folder.", path=csv_path,
                                line=line_no, fix="name the audio files relative to the CSV, inside the folder.")
            audio = folder / name
            if not audio.is_file():
                raise LarbError(f"the audio file {file_name!r} named here does not exist (or is not a regular "
                                "file).", path=csv_path, line=line_no,
                                fix="put the file beside the CSV or remove its row.")
            untrusted.inside(folder, audio, what=f"audio file {file_name!r}")
            if name in first_row:
                raise LarbError(f"the audio file {file_name!r} has a second row (the first is {first_row[name]}).",
                                path=csv_path, line=line_no, fix="give each audio file one row.")
            first_row[name] = f"{csv_path}, line {line_no}"
            rows.append((name, captions))
    try:
        ground_truth = captions_t2a(rows)
    except ValueError as exc:
        raise LarbError(f"cannot build a task from this folder: {exc}.", path=folder,
                        fix="every file name must be unique and have at least one caption.") from None
    spec = TaskSpec(
               id=f"folder:{folder.name}", version=1, title=f"user folder {folder}", direction="t2a", kind="single",
               assets=(), build=lambda: ground_truth, sha256=ground_truth.sha256, source=str(folder),
               audio=str(folder), evaluation_data=exported_split(folder), training_options=exported_options(folder))
    return Task(spec, ground_truth, folder)


# Written by `larb data export` (datasets_builders.export) beside the captions CSV.
EXPORT_MANIFEST = ".larb-export.json"
# build options that change which clips a split holds: training on an export declares them
DECLARED_OPTIONS = ("blacklist", "version", "rows")  # WavCaps, AudioCaps, WavText5K


def _export_manifest(folder: Path) -> dict | None:
    """The manifest of a folder that `larb data export` completed, else None."""
    try:
        manifest = json.loads((folder / EXPORT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        return None
    dataset, split = manifest.get("dataset"), manifest.get("split")
    if not (isinstance(dataset, str) and isinstance(split, str) and dataset and split and "/" not in dataset):
        return None
    return manifest


def exported_split(folder: Path) -> tuple[str, ...]:
    """`("dataset/split",)` for a folder that `larb data export` completed, else `()`.

    Training on such a folder is then declared as that split (e.g. `clotho-v2.1/evaluation`),
    so the leaderboard's † sees through an export; any other folder declares `folder:NAME/all`."""
    manifest = _export_manifest(folder)
    return (declared_split(manifest["dataset"], manifest["split"]),) if manifest else ()


def exported_options(folder: Path) -> tuple[tuple[str, str], ...]:
    """The build options an export recorded that change which clips it holds (`DECLARED_OPTIONS`)."""
    manifest = _export_manifest(folder)
    options = manifest.get("options") if manifest else None
    if not isinstance(options, dict):
        return ()
    return tuple(sorted((k, str(v)) for k, v in options.items() if k in DECLARED_OPTIONS))


def exported_sources(folder: Path) -> dict[str, str]:
    """Exported file -> source identity, as the export recorded them ({} when it did not)."""
    manifest = _export_manifest(folder)
    sources = manifest.get("sources") if manifest else None
    if not isinstance(sources, dict):
        return {}
    return {str(k): str(v) for k, v in sources.items() if isinstance(v, str)}


def tasks_built_from(builder: str, split: str) -> list[TaskSpec]:
    """The registered tasks whose ground truth a build of `builder`'s `split` reproduces."""
    return [spec for spec in TASKS.values() if spec.built_from == (builder, split)]


def declared_split(builder: str, split: str) -> str:
    """How training on a build of `builder`'s `split` is declared: as the evaluation data of the
    task it backs (e.g. `clotho-v2.1/evaluation`, `audiocaps-v1/test`), so the leaderboard's †
    sees through builds and exports; `builder/split` when it backs no task."""
    for spec in tasks_built_from(builder, split):
        if spec.evaluation_data:
            return spec.evaluation_data[0]
    return f"{builder}/{split}"


def _is_captions_csv(folder: Path, path: Path) -> bool:
    """A regular file inside `folder` whose header is a captions CSV's (other CSVs are ignored;
    a FIFO or a link out of the folder is never opened)."""
    if not path.is_file() or not path.resolve().is_relative_to(folder):
        return False
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(io.StringIO(handle.readline())), [])
    except (UnicodeDecodeError, OSError):
        return False
    return bool(header) and header[0].strip() == "file_name" and any(
        h.strip().startswith("caption_") for h in header)
