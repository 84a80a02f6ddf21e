"""Ground truth of a retrieval task: queries, corpus and relevance judgements, each hashed.

One in-memory form serves every task and direction:

- text-to-audio: queries are captions (stable id + text), the corpus is audio file names;
- audio-to-text: queries are audio file names, the corpus is the distinct caption texts
  (a text shared by several audio files is one candidate, relevant to each of them).

The sha256 of each part is taken over a canonical serialisation (one JSON array per line),
so the same judgements give the same hashes whatever file they were parsed from. The dataset
builders produce their tasks' ground truth through the constructors here, which is how a
user's own build and the registry agree byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Direction = Literal["t2a", "a2t"]
RelevanceKind = Literal["single", "multi", "graded"]


@dataclass(frozen=True)
class GroundTruth:
    """Queries (id, text), candidate corpus and relevance `query id -> {candidate: grade}`."""

    direction: Direction
    query_ids: tuple[str, ...]
    query_texts: tuple[str, ...]
    corpus: tuple[str, ...]
    relevance: dict[str, dict[str, int]] = field(hash=False)
    kind: RelevanceKind = "single"

    def __post_init__(self) -> None:
        if len(self.query_ids) != len(self.query_texts):
            raise ValueError("query ids and texts differ in length")
        if len(set(self.query_ids)) != len(self.query_ids):
            raise ValueError("query ids are not unique")
        if len(set(self.corpus)) != len(self.corpus):
            raise ValueError("corpus names are not unique")
        known = set(self.corpus)
        for qid in self.query_ids:
            judged = self.relevance.get(qid)
            if not judged or not any(grade > 0 for grade in judged.values()):
                raise ValueError(f"query {qid!r} has no relevant candidate")
            unknown = set(judged) - known
            if unknown:
                raise ValueError(f"query {qid!r} judges candidates not in the corpus: {sorted(unknown)[:3]}")

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    @cached_property
    def queries_sha256(self) -> str:
        return _sha256_lines([qid, text] for qid, text in zip(self.query_ids, self.query_texts, strict=True))

    @cached_property
    def corpus_sha256(self) -> str:
        return _sha256_lines([name] for name in sorted(self.corpus))

    @cached_property
    def relevance_sha256(self) -> str:
        rows = sorted((qid, cand, grade) for qid in self.query_ids
                      for cand, grade in self.relevance[qid].items())
        return _sha256_lines([qid, cand, grade] for qid, cand, grade in rows)

    @cached_property
    def sha256(self) -> str:
        """One hash over the whole ground truth (direction, kind and the three parts)."""
        text = f"{self.direction}\n{self.kind}\n{self.queries_sha256}\n{self.corpus_sha256}\n{self.relevance_sha256}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def hashes(self) -> dict[str, str]:
        return {"ground_truth": self.sha256, "queries": self.queries_sha256,
                "corpus": self.corpus_sha256, "relevance": self.relevance_sha256}


# One encoder for every row: `json.dumps` with options builds a new one per call.
_ROW_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# What compact JSON with ensure_ascii=False escapes in a string (json.encoder.ESCAPE).
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\\"]')


def _json_lines(rows: list[Sequence[object]]) -> str:
    """Each row as compact JSON plus a newline. Rows of one width whose columns are plain strings
    (nothing to escape) or ints are formatted column by column: the same bytes as the encoder,
    several times faster, which is most of the time of loading (and checking) a large task."""
    widths = {len(row) for row in rows}
    if len(widths) == 1:
        formatted = []
        for column in zip(*rows, strict=True):
            kinds = set(map(type, column))
            if kinds == {str} and not _NEEDS_ESCAPE.search("".join(column)):
                formatted.append(['"' + cell + '"' for cell in column])
            elif kinds == {int}:
                formatted.append(list(map(str, column)))
            else:
                break
        else:
            return "".join("[" + ",".join(cells) + "]\n" for cells in zip(*formatted, strict=True))
    return "".join(_ROW_JSON.encode(list(row)) + "\n" for row in rows)


def _sha256_lines(rows: Iterable[Sequence[object]]) -> str:
    """sha256 of one compact JSON array per row, each followed by a newline."""
    digest = hashlib.sha256()
    batch: list[Sequence[object]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 4096:
            digest.update(_json_lines(batch).encode("utf-8"))
            batch.clear()
    digest.update(_json_lines(batch).encode("utf-8"))
    return digest.hexdigest()


def clotho_query_id(file_name: str, k: int) -> str:
    """Stable id of the k-th (1-based) caption of a Clotho-layout file."""
    return f"{file_name}#{k}"


def captions_t2a(rows: Iterable[tuple[str, Sequence[str]]]) -> GroundTruth:
    """Text-to-audio ground truth from (file name, captions) rows, the Clotho layout.

    Query ids are `"<file_name>#<k>"` (k = caption column, 1-based); empty caption cells are
    skipped (their k is not reused), and each caption's own audio file is its one relevant file.
    """
    ids: list[str] = []
    texts: list[str] = []
    corpus: list[str] = []
    relevance: dict[str, dict[str, int]] = {}
    for file_name, captions in rows:
        corpus.append(file_name)
        for k, caption in enumerate(captions, start=1):
            if not caption.strip():
                continue
            qid = clotho_query_id(file_name, k)
            ids.append(qid)
            texts.append(caption)
            relevance[qid] = {file_name: 1}
    return GroundTruth("t2a", tuple(ids), tuple(texts), tuple(corpus), relevance, "single")


def captions_a2t(rows: Iterable[tuple[str, Sequence[str]]]) -> GroundTruth:
    """Audio-to-text ground truth from the same rows: every audio file is a query, and the
    distinct caption texts are the candidates; all of a file's captions are relevant."""
    query_ids: list[str] = []
    corpus: dict[str, None] = {}
    relevance: dict[str, dict[str, int]] = {}
    for file_name, captions in rows:
        query_ids.append(file_name)
        judged = relevance.setdefault(file_name, {})
        for caption in captions:
            if caption.strip():
                corpus.setdefault(caption, None)
                judged[caption] = 1
    return GroundTruth("a2t", tuple(query_ids), tuple(query_ids), tuple(corpus), relevance, "multi")


def grouped_by_caption(gt: GroundTruth) -> GroundTruth:
    """The same queries with grouped relevance: every corpus file that has a caption identical to the
    query's text is relevant to it (AudioCaps test has 71 caption strings on several clips; scoring
    one of them as the only right answer punishes a system for the others)."""
    files_of: dict[str, dict[str, int]] = {}
    for qid, text in zip(gt.query_ids, gt.query_texts, strict=True):
        for name, grade in gt.relevance[qid].items():
            if grade > 0:
                files_of.setdefault(text, {})[name] = 1
    relevance = {qid: dict(files_of[text]) for qid, text in zip(gt.query_ids, gt.query_texts, strict=True)}
    return GroundTruth(gt.direction, gt.query_ids, gt.query_texts, gt.corpus, relevance, "multi")


def audiocaps_file_name(youtube_id: str, start_time: str | int) -> str:
    """The clip file name LARB uses for an AudioCaps segment (as aac-datasets and the builders)."""
    return f"{youtube_id}_{int(start_time)}.wav"


def audiocaps_t2a(rows: Iterable[tuple[str, str, str, str]]) -> GroundTruth:
    """Text-to-audio ground truth from AudioCaps rows (audiocap_id, youtube_id, start_time,
    caption): the query id is the `audiocap_id`, the relevant file is the clip. Clips are
    listed in order of first appearance."""
    ids: list[str] = []
    texts: list[str] = []
    corpus: dict[str, None] = {}
    relevance: dict[str, dict[str, int]] = {}
    for audiocap_id, youtube_id, start_time, caption in rows:
        name = audiocaps_file_name(youtube_id, start_time)
        corpus.setdefault(name, None)
        ids.append(str(audiocap_id))
        texts.append(caption)
        relevance[str(audiocap_id)] = {name: 1}
    return GroundTruth("t2a", tuple(ids), tuple(texts), tuple(corpus), relevance, "single")
