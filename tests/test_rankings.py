"""The ranking validator (`benchmark.rankings.read_ranking`): one test per rule, each checking
that the error names the file, the line and the rule; the accepted variants; the shared-caption
rule; round trips of `write_t2a_csv` (hypothesis); the audio-to-text form and its scoring."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.errors import LarbError
from benchmark.groundtruth import GroundTruth, captions_a2t, captions_t2a
from benchmark.rankings import normalise_caption, read_ranking, write_t2a_csv
from benchmark.scoring import score

FNAME = [f"fname_{i}" for i in range(1, 11)]
HEADER = ["caption", *FNAME]


def expected_indices(gt: GroundTruth, rows: list[list[str]]) -> np.ndarray:
    index = {name: i for i, name in enumerate(gt.corpus)}
    return np.array([[index[n] for n in row[1:]] for row in rows])


def error_of(path: Path, gt: GroundTruth) -> LarbError:
    with pytest.raises(LarbError) as info:
        read_ranking(path, gt)
    return info.value


def assert_names(error: LarbError, path: Path, line: int | None, *rule: str) -> None:
    """The message names the file, the line (when given) and the rule (every fragment)."""
    message = str(error)
    assert str(path) in message and error.path == str(path)
    if line is not None:
        assert error.line == line and f"line {line}:" in message
    for fragment in rule:
        assert fragment in message, (fragment, message)
    assert error.fix


@pytest.fixture
def valid(tmp_path, small_gt, ranking_rows, write_csv):
    """(path, rows) of a valid ranking of `small_gt`; row i is on line i + 2."""
    rows = ranking_rows(small_gt)
    return write_csv(tmp_path / "run.csv", HEADER, rows), rows


def test_valid_file_gives_indices_in_query_order(valid, small_gt):
    path, rows = valid
    ranking = read_ranking(path, small_gt)
    np.testing.assert_array_equal(ranking.indices, expected_indices(small_gt, rows))
    import hashlib

    assert ranking.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- one test per rule --------------------------------------------------------------------

def test_missing_queries(valid, small_gt, write_csv):
    path, rows = valid
    write_csv(path, HEADER, rows[:-2])
    error = error_of(path, small_gt)
    assert_names(error, path, None, "2 of 24 queries have no row", repr(rows[-2][0]))


def test_query_not_in_task_with_near_miss(valid, small_gt, write_csv):
    path, rows = valid
    i = small_gt.query_texts.index("A bird sings near a window.")
    rows[i][0] = "A bird sings near a windo."
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, i + 2, "is not a query of this task",
                 "The closest one in the task is 'A bird sings near a window.'")


def test_duplicate_rows(valid, small_gt, write_csv):
    path, rows = valid
    write_csv(path, HEADER, [*rows, rows[0]])
    assert_names(error_of(path, small_gt), path, 26, "duplicate row", "(first on line 2)")


def test_duplicate_query_id_rows(small_gt, ranking_rows, write_csv, tmp_path):
    rows = [[qid, *row] for qid, row in zip(small_gt.query_ids, ranking_rows(small_gt), strict=True)]
    path = write_csv(tmp_path / "ids.csv", ["query_id", *HEADER], [*rows[:5], rows[2], *rows[5:]])
    assert_names(error_of(path, small_gt), path, 7, "duplicate row for query_id", "(first on line 4)")


@pytest.mark.parametrize("n_candidates", [9, 11])
def test_wrong_number_of_candidates(valid, small_gt, write_csv, n_candidates):
    path, rows = valid
    extra = [n for n in small_gt.corpus if n not in rows[5]][:1]
    rows[5] = rows[5][:1 + min(n_candidates, 10)] + (extra if n_candidates > 10 else [])
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 7, f"expected 11 cells, found {n_candidates + 1}",
                 "give 10 candidates per row")


def test_repeated_file_name_in_a_row(valid, small_gt, write_csv):
    path, rows = valid
    rows[2][6] = rows[2][2]
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 4, f"{rows[2][2]!r} appears more than once")


def test_unknown_file_name_with_near_miss(valid, small_gt, write_csv):
    path, rows = valid
    rows[1][4] = "dogs.wav" if "dog.wav" not in rows[1] else "doors.wav"
    near = "dog.wav" if rows[1][4] == "dogs.wav" else "door.wav"
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 3, f"candidate 4: file name {rows[1][4]!r} is not in this "
                 "task's corpus", f"The closest one in the task is {near!r}")


def test_file_names_are_compared_exactly(valid, small_gt, write_csv):
    path, rows = valid
    row = next(i for i, r in enumerate(rows) if " crowd.wav" in r)
    rows[row][rows[row].index(" crowd.wav")] = "crowd.wav"  # Clotho has names that begin with a space
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, row + 2, "'crowd.wav' is not in this task's corpus")


def test_empty_caption_cell(valid, small_gt, write_csv):
    path, rows = valid
    rows[7][0] = "  "
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 9, "empty caption cell")


def test_empty_candidate_cell(valid, small_gt, write_csv):
    path, rows = valid
    rows[8][3] = ""
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 10, "candidate 3 is empty")


@pytest.mark.parametrize("header, problem", [
    (["", *FNAME], "wrong header"),  # the first cell left empty (a real submission does this)
    (["caption", *FNAME[:9]], "the file gives 9 candidates per query; this task ranks 10 (its depth)"),
    (["caption", *FNAME, "score"], "unexpected column(s) ['score']"),
    (["caption", *FNAME[:9], "fname_9"], "a column is repeated"),
    (["text", *(f"audio_{i}" for i in range(1, 11))], "wrong header"),
])
def test_wrong_header(valid, small_gt, write_csv, header, problem):
    path, rows = valid
    write_csv(path, header, [row[:len(header)] for row in rows])
    assert_names(error_of(path, small_gt), path, 1, problem, "use the header caption,fname_1,...,fname_10")


@pytest.mark.parametrize("bom", [False, True])
def test_undecodable_bytes(valid, small_gt, write_csv, bom):
    path, rows = valid
    write_csv(path, HEADER, rows, bom=bom)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3][:5] + b"\xff" + lines[3][5:]  # line 4 of the file
    path.write_bytes(b"\n".join(lines))
    offset = path.read_bytes().index(b"\xff")
    assert_names(error_of(path, small_gt), path, 4, f"byte 0xff at offset {offset} is not valid UTF-8",
                 "save the file as UTF-8")


def test_absurdly_large_file(valid, small_gt):
    path, _ = valid
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("x" * 1023 + "\n") * 1200)  # 1.2 MB for a task of 24 queries
    assert_names(error_of(path, small_gt), path, None, f"{path.stat().st_size:,} bytes, more than the")


def test_unclosed_quote(valid, small_gt, write_csv):
    path, rows = valid
    write_csv(path, HEADER, rows)
    lines = path.read_text("utf-8").split("\n")
    lines[4] = '"' + lines[4]  # line 5 opens a quote that is never closed
    path.write_text("\n".join(lines), "utf-8")
    assert_names(error_of(path, small_gt), path, 5, "malformed CSV", "close every quote")


def test_stray_text_after_a_closing_quote(valid, small_gt, write_csv):
    path, rows = valid
    write_csv(path, HEADER, rows)
    lines = path.read_text("utf-8").split("\n")
    caption = rows[2][0]
    lines[3] = lines[3].replace(caption, f'"{caption}" (sic)', 1)
    path.write_text("\n".join(lines), "utf-8")
    assert_names(error_of(path, small_gt), path, 4, "malformed CSV")


def test_errors_name_the_line_where_a_multi_line_row_begins(valid, small_gt, write_csv):
    path, rows = valid
    rows[0][0] = rows[0][0].replace(" ", "\n", 1)  # the caption spans lines 2 and 3
    rows[1][5] = "unknown.wav"  # so the second row begins on line 4
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 4, "'unknown.wav' is not in this task's corpus")
    rows[1][5] = small_gt.corpus[0] if small_gt.corpus[0] not in rows[1] else small_gt.corpus[1]
    rows[0][2] = "unknown.wav"
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 2, "'unknown.wav' is not in this task's corpus")


def test_query_id_not_in_task(small_gt, ranking_rows, write_csv, tmp_path):
    rows = [[qid, *row] for qid, row in zip(small_gt.query_ids, ranking_rows(small_gt), strict=True)]
    rows[4][0] = "nope.wav#1"
    path = write_csv(tmp_path / "ids.csv", ["query_id", *HEADER], rows)
    assert_names(error_of(path, small_gt), path, 6, "query_id 'nope.wav#1' is not a query of this task")


def test_query_id_with_a_mismatching_caption(small_gt, ranking_rows, write_csv, tmp_path):
    rows = [[qid, *row] for qid, row in zip(small_gt.query_ids, ranking_rows(small_gt), strict=True)]
    rows[3][1], rows[4][1] = rows[4][1], rows[3][1]  # ids and captions shifted
    path = write_csv(tmp_path / "ids.csv", ["query_id", *HEADER], rows)
    assert_names(error_of(path, small_gt), path, 5, f"query_id {small_gt.query_ids[3]!r} belongs to",
                 "not shifted")


# --- accepted variants --------------------------------------------------------------------

@pytest.mark.parametrize("bom, newline", [(True, "\n"), (False, "\r\n"), (True, "\r\n")])
def test_bom_and_crlf_are_accepted(valid, small_gt, write_csv, bom, newline):
    path, rows = valid
    write_csv(path, HEADER, rows, bom=bom, newline=newline)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") == bom
    np.testing.assert_array_equal(read_ranking(path, small_gt).indices, expected_indices(small_gt, rows))


def test_quoted_captions_with_commas_quotes_and_newlines(tmp_path, write_csv):
    captions = ['He says "stop, now" and leaves.', "First line,\nsecond line.", "Plain caption."]
    gt = captions_t2a([(f"f{i:02d}.wav", [captions[i]] if i < 3 else []) for i in range(12)])
    rows = [[c, *gt.corpus[i:i + 10]] for i, c in enumerate(captions)]
    path = write_csv(tmp_path / "q.csv", HEADER, rows)
    assert '"He says ""stop, now"" and leaves."' in path.read_text("utf-8")
    np.testing.assert_array_equal(read_ranking(path, gt).indices, expected_indices(gt, rows))


def test_dcase_file_name_header_is_accepted(valid, small_gt, write_csv):
    path, rows = valid
    write_csv(path, ["caption", *(f"file_name_{i}" for i in range(1, 11))], rows)
    np.testing.assert_array_equal(read_ranking(path, small_gt).indices, expected_indices(small_gt, rows))


@pytest.mark.parametrize("position", ["first", "last"])
def test_optional_query_id_column(small_gt, ranking_rows, write_csv, tmp_path, position):
    rows = ranking_rows(small_gt)
    if position == "first":
        header, data = ["query_id", *HEADER], [[q, *r] for q, r in zip(small_gt.query_ids, rows, strict=True)]
    else:
        header, data = [*HEADER, "query_id"], [[*r, q] for q, r in zip(small_gt.query_ids, rows, strict=True)]
    data = data[::-1]  # row order does not matter
    path = write_csv(tmp_path / "ids.csv", header, data)
    np.testing.assert_array_equal(read_ranking(path, small_gt).indices, expected_indices(small_gt, rows))


def test_query_ids_are_compared_exactly(small_gt, ranking_rows, write_csv, tmp_path):
    rows = ranking_rows(small_gt)
    crowd = small_gt.query_ids.index(" crowd.wav#1")  # Clotho has file names that begin with a space
    path = write_csv(tmp_path / "ids.csv", ["query_id", *HEADER],
                     [[q, *r] for q, r in zip(small_gt.query_ids, rows, strict=True)])
    indices = read_ranking(path, small_gt).indices
    np.testing.assert_array_equal(indices[crowd], expected_indices(small_gt, rows)[crowd])


def test_query_id_rows_may_leave_the_caption_empty(small_gt, ranking_rows, write_csv, tmp_path):
    rows = ranking_rows(small_gt)
    path = write_csv(tmp_path / "ids.csv", ["query_id", *HEADER],
                     [[q, "", *r[1:]] for q, r in zip(small_gt.query_ids, rows, strict=True)])
    np.testing.assert_array_equal(read_ranking(path, small_gt).indices, expected_indices(small_gt, rows))


def test_caption_white_space_is_normalised_but_case_is_kept(valid, small_gt, write_csv):
    path, rows = valid
    rows[0][0] = "  A dog   barks\ttwice. "
    write_csv(path, HEADER, rows)
    assert read_ranking(path, small_gt).indices.shape == (24, 10)
    rows[0][0] = "a dog barks twice."
    write_csv(path, HEADER, rows)
    assert_names(error_of(path, small_gt), path, 2, "is not a query of this task",
                 "closest one in the task is 'A dog barks twice.'")


# --- the shared-caption rule --------------------------------------------------------------

@pytest.fixture
def shared(shared_caption_gt, ranking_rows):
    gt = shared_caption_gt
    qids = [q for q, t in zip(gt.query_ids, gt.query_texts, strict=True) if t == "A shared caption."]
    assert len(qids) == 2 and gt.relevance[qids[0]] != gt.relevance[qids[1]]  # two different files
    rows = ranking_rows(gt)
    positions = [gt.query_ids.index(q) for q in qids]
    return gt, rows, positions


def test_one_row_serves_every_query_sharing_a_caption(shared, write_csv, tmp_path):
    gt, rows, (a, b) = shared
    data = [r for i, r in enumerate(rows) if i != b]
    path = write_csv(tmp_path / "s.csv", HEADER, data)
    indices = read_ranking(path, gt).indices
    np.testing.assert_array_equal(indices[a], indices[b])
    np.testing.assert_array_equal(indices[a], expected_indices(gt, [rows[a]])[0])


def test_identical_rows_for_a_shared_caption_are_accepted(shared, write_csv, tmp_path):
    gt, rows, (a, b) = shared
    rows[b] = list(rows[a])
    path = write_csv(tmp_path / "s.csv", HEADER, rows)
    indices = read_ranking(path, gt).indices
    np.testing.assert_array_equal(indices[a], indices[b])


def test_differing_rows_for_a_shared_caption_ask_for_query_id(shared, write_csv, tmp_path):
    gt, rows, (a, b) = shared
    rows[b] = [rows[a][0], *reversed(rows[a][1:])]
    path = write_csv(tmp_path / "s.csv", HEADER, rows)
    assert_names(error_of(path, gt), path, b + 2, "belongs to 2 queries", "add a query_id column")


def test_more_identical_rows_than_queries_sharing_the_caption(shared, write_csv, tmp_path):
    gt, rows, (a, b) = shared
    rows[b] = list(rows[a])
    path = write_csv(tmp_path / "s.csv", HEADER, [*rows, rows[a]])
    assert_names(error_of(path, gt), path, b + 2, "belongs to 2 queries", "appears in 3 rows")


def test_query_id_tells_shared_captions_apart(shared, write_csv, tmp_path):
    gt, rows, (a, b) = shared
    rows[b] = [rows[a][0], *reversed(rows[a][1:])]
    with_ids = [[q, *r] for q, r in zip(gt.query_ids, rows, strict=True)]
    path = write_csv(tmp_path / "s.csv", ["query_id", *HEADER], with_ids)
    indices = read_ranking(path, gt).indices
    np.testing.assert_array_equal(indices[b], indices[a][::-1])


# --- round trips (hypothesis) -------------------------------------------------------------

_MESSY = st.text(st.one_of(st.sampled_from(list(',"\'\n\r\t ;é漢🎵\u00a0\u2028')),
                           st.characters(exclude_categories=("Cs",))), min_size=1, max_size=25)


@st.composite
def t2a_rankings(draw):
    captions = draw(st.lists(_MESSY.filter(lambda t: normalise_caption(t) != ""), min_size=1, max_size=12,
                             unique_by=normalise_caption))
    names = draw(st.lists(_MESSY.map(lambda t: t + ".wav"), min_size=10, max_size=14, unique=True))
    rows = [(name, captions[i::len(names)]) for i, name in enumerate(names)]
    gt = captions_t2a(rows)
    ranked = [draw(st.lists(st.integers(0, len(names) - 1), min_size=10, max_size=10, unique=True))
              for _ in gt.query_ids]
    return gt, np.array(ranked)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t2a_rankings())
def test_write_t2a_csv_round_trip(case):
    gt, ranked = case
    names = [[gt.corpus[i] for i in row] for row in ranked]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.csv"
        write_t2a_csv(path, gt.query_ids, gt.query_texts, names)
        np.testing.assert_array_equal(read_ranking(path, gt).indices, ranked)
        # the same ranking without query_id, with CRLF line ends and a BOM
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows([text, *row] for text, row in zip(gt.query_texts, names, strict=True))
        bare = Path(folder) / "bare.csv"
        bare.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))
        np.testing.assert_array_equal(read_ranking(bare, gt).indices, ranked)


def test_write_t2a_csv_quotes_a_lone_carriage_return(tmp_path):
    gt = captions_t2a([(f"f{i}.wav", ["one\rtwo"] if i == 0 else []) for i in range(10)])
    write_t2a_csv(tmp_path / "r.csv", gt.query_ids, gt.query_texts, [list(gt.corpus)])
    np.testing.assert_array_equal(read_ranking(tmp_path / "r.csv", gt).indices, [list(range(10))])


# --- audio-to-text ------------------------------------------------------------------------

A2T_HEADER = ["file_name", *(f"caption_{i}" for i in range(1, 11))]
A2T_ROWS = [(f"clip{k}.wav", [f"Clip {k}, caption {j}." for j in range(1, 6)]) for k in range(3)]


@pytest.fixture
def a2t_gt() -> GroundTruth:
    return captions_a2t(A2T_ROWS)


def test_audio_to_text_round_trip_and_scores(a2t_gt, write_csv, tmp_path):
    own = {name: caps for name, caps in A2T_ROWS}
    other = [c for name, caps in A2T_ROWS for c in caps if name != "clip0.wav"]
    rows = [
        # clip0: its captions at ranks 2 and 5 -> AP = (1/2 + 2/5) / 5, R@1 = 0, R@5 = 1
        ["clip0.wav", other[0], own["clip0.wav"][0], *other[1:3], own["clip0.wav"][1], *other[3:8]],
        # clip1: all five first -> AP = 1
        ["clip1.wav", *own["clip1.wav"], *own["clip0.wav"]],
        # clip2: none of its captions -> 0
        ["clip2.wav", *own["clip0.wav"], *own["clip1.wav"]],
    ]
    rows[0][3] = "  " + rows[0][3].replace(" ", "  ")  # caption cells are normalised too
    path = write_csv(tmp_path / "a2t.csv", A2T_HEADER, rows)
    ranking = read_ranking(path, a2t_gt)
    corpus = {c: i for i, c in enumerate(a2t_gt.corpus)}
    np.testing.assert_array_equal(ranking.indices[1], [corpus[c] for c in rows[1][1:]])
    s = score(ranking, a2t_gt)
    np.testing.assert_allclose(s.per_query["mAP@10"], [(1 / 2 + 2 / 5) / 5, 1.0, 0.0])
    np.testing.assert_array_equal(s.per_query["R@1"], [0, 1, 0])
    np.testing.assert_array_equal(s.per_query["R@5"], [1, 1, 0])
    np.testing.assert_array_equal(s.per_query["R@10"], [1, 1, 0])


def test_audio_to_text_unknown_caption(a2t_gt, write_csv, tmp_path):
    captions = [c for _, caps in A2T_ROWS for c in caps]
    rows = [[name, *captions[:10]] for name, _ in A2T_ROWS]
    rows[2][7] = "Clip 9, caption 1."
    path = write_csv(tmp_path / "a2t.csv", A2T_HEADER, rows)
    assert_names(error_of(path, a2t_gt), path, 4, "candidate 7: caption 'Clip 9, caption 1.' is not in this "
                 "task's corpus", "closest one")


def test_audio_to_text_header_is_required(a2t_gt, write_csv, tmp_path):
    path = write_csv(tmp_path / "a2t.csv", HEADER, [["clip0.wav", *a2t_gt.corpus[:10]]])
    assert_names(error_of(path, a2t_gt), path, 1, "wrong header", "file_name,caption_1")
