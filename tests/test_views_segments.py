"""The drill-down query `segments` (the rows behind a node or an edge of the views), checked against the study's
own CSV files read with plain Python: which segments carry a code, and which segments of two codes co-occur."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import mmkg
from mmkg.loader import shipped_study_path

MMKG = Path(sys.executable).with_name("mmkg")


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def study() -> dict:
    """The shipped study's segments, sources and analysis codings, straight from its files."""
    folder = shipped_study_path()
    meta = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    sources = {r["source_id"]: r for r in read_csv(folder / "sources.csv")}
    segments = {r["segment_id"]: r for r in read_csv(folder / "segments.csv")}
    codings = [r for r in read_csv(folder / "codings.csv") if r["coder"] == meta["analysis_coder"]]
    return {"meta": meta, "sources": sources, "segments": segments, "codings": codings}


def number(text: str):
    return float(text) if text not in ("", None) else None


def co_occur(first: dict, second: dict, unit: str, sources: dict) -> bool:
    """The rule of the query's header, written out: same segment, same position, overlap, same source, same person."""
    if unit == "participant":
        return sources[first["source_id"]]["participant_id"] == sources[second["source_id"]]["participant_id"]
    if first["source_id"] != second["source_id"]:
        return False
    if unit == "source" or first["segment_id"] == second["segment_id"]:
        return True
    s1, e1, s2, e2 = (number(first["start"]), number(first["end"]), number(second["start"]), number(second["end"]))
    if None not in (s1, e1, s2, e2):
        return (s1, e1) == (s2, e2) or (unit == "segment" and s1 < e2 and s2 < e1)
    if s1 is None and s2 is None:
        box1 = [number(first[k]) for k in ("x", "y", "width", "height")]
        box2 = [number(second[k]) for k in ("x", "y", "width", "height")]
        if None in box1 or None in box2:
            return False
        if box1 == box2:
            return True
        (x1, y1, w1, h1), (x2, y2, w2, h2) = box1, box2
        return unit == "segment" and x1 < x2 + w2 and x2 < x1 + w1 and y1 < y2 + h2 and y2 < y1 + h1
    return False


def expected_rows(study: dict, code_a: str, code_b: str, unit: str) -> set[tuple]:
    """(segment_id, codes) of the segments of either code that co-occur with a segment of the other."""
    carrying = defaultdict(set)
    for row in study["codings"]:
        carrying[f"{row['codebook']}:{row['code_id']}"].add(row["segment_id"])
    segments, sources = study["segments"], study["sources"]
    result = set()
    for mine, other in ((code_a, code_b), (code_b, code_a)):
        for segment_id in carrying[mine]:
            if any(co_occur(segments[segment_id], segments[o], unit, sources) for o in carrying[other]):
                codes = tuple(sorted(c for c in (code_a, code_b) if segment_id in carrying[c]))
                result.add((segment_id, codes))
    return result


def run_cli(store: Path, *params: str) -> list[dict]:
    args = [str(MMKG), "query", "segments", "--store", str(store), "--format", "json"]
    for p in params:
        args += ["-p", p]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_model_stealing_and_code_breach_give_the_papers_six_segments(founding_template, study):
    facts = json.loads((shipped_study_path().parent / "founding_spec" / "paper-facts.json").read_text("utf-8"))
    fact = next(f for f in facts if f["id"] == "cooc-modelstealing-codebreach")
    rows = run_cli(founding_template, "code_a=model stealing", "code_b=code breach")
    passages = defaultdict(set)  # a tool may write one selection per code: several rows, one co-occurrence
    for row in rows:
        passages[row["passage"]].update(row["codes"])
    assert len(passages) == fact["value"]
    assert all(codes == {"interview:A.3", "interview:C.4"} for codes in passages.values())
    assert {(r["segment_id"], tuple(r["codes"])) for r in rows} == expected_rows(
        study, "interview:A.3", "interview:C.4", "segment")
    by_id = study["segments"]
    for row in rows:  # participant, source, offsets and text are the segment's own
        segment = by_id[row["segment_id"]]
        assert row["source_id"] == segment["source_id"]
        assert row["participant_id"] == study["sources"][segment["source_id"]]["participant_id"]
        assert (row["start"], row["end"]) == (int(segment["start"]), int(segment["end"]))
        assert (row["text"] or "") == segment["text"]
        assert row["coder"] == study["meta"]["analysis_coder"]


@pytest.mark.slow
def test_one_code_lists_every_segment_carrying_it(founding_template, study):
    rows = run_cli(founding_template, "code_a=interview:C.4")
    expected = {r["segment_id"] for r in study["codings"] if (r["codebook"], r["code_id"]) == ("interview", "C.4")}
    assert {r["segment_id"] for r in rows} == expected and len(rows) == len(expected)


@pytest.mark.parametrize("unit", ["segment", "exact", "source", "participant"])
def test_pairs_follow_the_co_occurrence_rule_in_every_unit(founding_template, study, unit):
    pairs = [("interview:A.3", "interview:C.4"), ("drawing:A.3", "drawing:A.1"), ("drawing:A.4", "drawing:E.1"),
             ("interview:A.1", "interview:A.2"), ("interview:B.1", "interview:C.1")]
    with mmkg.open_store(founding_template, read_only=True) as kg:
        for code_a, code_b in pairs:
            frame = kg.query("segments", code_a=code_a, code_b=code_b, unit=unit)
            got = {(r.segment_id, tuple(r.codes)) for r in frame.itertuples()}
            assert len(got) == len(frame)
            assert got == expected_rows(study, code_a, code_b, unit), (code_a, code_b)


def test_names_resolve_like_the_co_occurrence_query(founding_template):
    with mmkg.open_store(founding_template, read_only=True) as kg:
        by_label = kg.query("segments", code_a="Model Stealing")
        by_id = kg.query("segments", code_a="A.3")  # interview is the study's first-declared codebook
        by_key = kg.query("segments", code_a="interview:A.3")
        drawing = kg.query("segments", code_a="drawing:A.3")
        nothing = kg.query("segments", code_a="no such code")
        only_p6 = kg.query("segments", code_a="interview:A.3", participant="P6")
    assert by_label.equals(by_id) and by_id.equals(by_key) and len(by_key) > 0
    assert set(drawing["source_kind"]) == {"drawing"} and set(by_key["source_kind"]) == {"interview"}
    assert nothing.empty
    assert set(only_p6["participant_id"]) == {"P6"} and 0 < len(only_p6) < len(by_key)


def test_a_named_coder_gives_that_coders_segments(founding_template):
    with mmkg.open_store(founding_template, read_only=True) as kg:
        frame = kg.query("segments", code_a="interview:C.4", coder="coder1,coder2")
        expected = kg.cypher("MATCH (g:Segment)-[c:CODED_AS]->(k:Code) WHERE k.study_id = 'founding' AND "
                             "k.codebook = 'interview' AND k.id = 'C.4' AND c.coder IN ['coder1', 'coder2'] "
                             "RETURN g.id AS segment_id, c.coder AS coder")
    assert set(frame["coder"]) == {"coder1", "coder2"}
    assert sorted(zip(frame["segment_id"], frame["coder"])) == sorted(zip(expected["segment_id"], expected["coder"]))
