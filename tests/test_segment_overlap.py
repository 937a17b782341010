"""Segment co-occurrence by overlapping selections, checked against a plain-Python computation.

The reference (tests/overlap_reference.py) never sorts or sweeps: it compares every two selections of a
source, joins overlapping ones into passages with a union-find, and counts per passage the code pairs whose
selections are the same or overlap.  It runs on every real REFI-QDA export in ../shared/external/refi-qda (read
straight from the XML here, not through mmkg's importer), on a hand-made study whose counts were worked out
by hand, and on generated studies with identical, nested, partly overlapping and touching ranges and regions.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import defusedxml.ElementTree as ET
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from overlap_reference import reference

import mmkg

NS = "{urn:QDA-XML:project:1.0}"
KIND_OF_SOURCE = {"TextSource": "interview", "PictureSource": "drawing", "PDFSource": "other",
                  "AudioSource": "other", "VideoSource": "other"}


def graph_pairs(kg, study_id: str, **options) -> dict:
    frame = kg.query("cooccurrence", study_id=study_id, min_count=1, **options)
    out = {}
    for row in frame.itertuples():
        a, b = (row.codebook_a, row.code_a), (row.codebook_b, row.code_b)
        n_a, n_b = int(row.n_a), int(row.n_b)
        if b < a:
            a, b, n_a, n_b = b, a, n_b, n_a
        out[(a, b)] = (int(row.n_ab), (n_a, n_b), int(row.n_units))
    return out


def expected_pairs(selections, **kw) -> dict:
    n_ab, n_a, n_units = reference(selections, **kw)
    return {pair: (n, n_a[pair], n_units[pair]) for pair, n in n_ab.items() if n >= 1}


# ------------------------------------------------------------------------------------ real REFI-QDA files
def refi_selections(path: Path) -> list[dict]:
    """Every selection of a .qdpx read from its XML, with the codes coded on it (any user).

    A PDFSelection's page is ignored, as mmkg's importer does not keep it (docs/analysis.md, "Limits")."""
    with zipfile.ZipFile(path) as archive:
        [member] = [n for n in archive.namelist() if n.lower().endswith(".qde") and "/" not in n]
        root = ET.fromstring(archive.read(member))
    guid = lambda value: value.strip().strip("{}").lower()  # noqa: E731
    codes = {guid(c.get("guid")) for c in root.iter(f"{NS}Code")}
    out = []

    def add(element, source, kind, geometry):
        coded = {("refi", guid(c.find(f"{NS}CodeRef").get("targetGUID")))
                 for c in element.findall(f"{NS}Coding") if c.find(f"{NS}CodeRef") is not None}
        coded = {code for code in coded if code[1] in codes}
        if coded:
            out.append({"source": source, "kind": kind, "geometry": geometry, "codes": coded,
                        "source_kind": KIND_OF_SOURCE[element_kind[source]]})

    element_kind = {}
    for tag in KIND_OF_SOURCE:
        for src in root.iter(f"{NS}{tag}"):
            source = guid(src.get("guid"))
            element_kind[source] = tag
            for sel in src.iter(f"{NS}PlainTextSelection"):
                add(sel, source, "span", (int(sel.get("startPosition")), int(sel.get("endPosition"))))
            for name in ("PictureSelection", "PDFSelection"):
                for sel in src.iter(f"{NS}{name}"):
                    x1, y1, x2, y2 = (int(sel.get(a)) for a in ("firstX", "firstY", "secondX", "secondY"))
                    add(sel, source, "region", (min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1)))
            for name in ("AudioSelection", "VideoSelection"):
                for sel in src.iter(f"{NS}{name}"):
                    add(sel, source, "span", (int(sel.get("begin")), int(sel.get("end"))))
            for sel in src.iter(f"{NS}TranscriptSelection"):
                add(sel, source, "whole", (id(sel),))
            add(src, source, "whole", ("whole",))
    return out


REFI_DIR = Path(__file__).resolve().parents[2] / "shared" / "external" / "refi-qda"
REFI_FILES = sorted(p.name for p in REFI_DIR.glob("*.qdpx")) if REFI_DIR.is_dir() else []


@pytest.fixture(scope="module")
def refi_store(tmp_path_factory):
    return mmkg.open_store(tmp_path_factory.mktemp("overlap-refi") / "store")


@pytest.mark.slow
@pytest.mark.parametrize("name", REFI_FILES or ["(none)"])
@pytest.mark.parametrize("unit", ["segment", "exact"])
def test_segment_cooccurrence_of_every_real_refi_export_equals_the_reference(shared_dir, refi_store, name, unit):
    path = shared_dir / "external" / "refi-qda" / name
    study_id = "x-" + path.stem.replace(".", "-")
    if study_id not in refi_store.study_ids():
        refi_store.load(path, study_id=study_id)
    expected = expected_pairs(refi_selections(path), exact=(unit == "exact"))
    assert graph_pairs(refi_store, study_id, unit=unit) == expected


@pytest.mark.slow
def test_nvivo_exports_give_segment_cooccurrence(shared_dir, refi_store):
    """NVivo writes one selection per code per passage: only overlap finds its co-occurrences."""
    folder = shared_dir / "external" / "refi-qda"
    windows = folder / "nvivo-win-12.6-oltas0517.qdpx"
    refi_store.load(windows, study_id="nvivo-win")
    segment = refi_store.query("cooccurrence", study_id="nvivo-win", unit="segment")
    exact = refi_store.query("cooccurrence", study_id="nvivo-win", unit="exact")
    old_rule = refi_store.cypher(  # one segment = one unit, as mmkg counted before overlap
        "MATCH (g:Segment)-[:CODED_AS]->(a:Code), (g)-[:CODED_AS]->(b:Code) "
        "WHERE g.study_id = 'nvivo-win' AND a.uid < b.uid RETURN count(*) AS n")
    assert int(old_rule["n"].iloc[0]) == 0
    assert len(segment) >= 165 and segment["n_ab"].sum() > 0
    assert len(exact) > 0 and len(exact) <= len(segment)
    # the NVivo for Mac export has codes but no codings at all: nothing to count
    refi_store.load(folder / "nvivo-mac-15.0-qc-project.qdpx", study_id="nvivo-mac")
    assert refi_store.cypher("MATCH (g:Segment)-[c:CODED_AS]->() WHERE g.study_id = 'nvivo-mac' "
                             "RETURN count(c) AS n")["n"].iloc[0] == 0


# ------------------------------------------------------------------------------------- generated studies
BOOKS = {"interview": ["A.1", "A.2", "A.3", "B.1"], "drawing": ["D.1", "D.2", "D.3"], "both": ["X.1", "X.2"]}
KINDS = {"interview": ("interview",), "drawing": ("drawing",), "both": ("interview", "drawing")}


def write_study(folder: Path, study_id: str, selections: list[dict]) -> None:
    """A study folder holding the selections (one segment each) and their codings by `consensus`."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted({(s["source"], s["source_kind"]) for s in selections})
    participants = sorted({source.split("-")[0] for source, _ in sources})
    (folder / "study.json").write_text(json.dumps({
        "id": study_id, "title": "overlap test", "provenance": "generated by the test suite",
        "codebooks": list(BOOKS), "analysis_coder": "consensus"}), encoding="utf-8")
    pd.DataFrame([{"codebook": b, "group_id": "G", "label": "g", "parent_group_id": ""} for b in BOOKS]) \
        .to_csv(folder / "groups.csv", index=False)
    pd.DataFrame([{"codebook": b, "code_id": c, "label": f"{b} {c}", "group_id": "G", "parent_code_id": "",
                   "codable": "true", "preferred_label": "", "definition": ""}
                  for b, cs in BOOKS.items() for c in cs]).to_csv(folder / "codes.csv", index=False)
    pd.DataFrame({"participant_id": participants, "label": participants}).to_csv(folder / "participants.csv",
                                                                                 index=False)
    pd.DataFrame([{"source_id": s, "participant_id": s.split("-")[0], "kind": k, "title": s} for s, k in sources]) \
        .to_csv(folder / "sources.csv", index=False)
    segments, codings = [], []
    for i, s in enumerate(selections):
        row = {"segment_id": f"G{i}", "source_id": s["source"], "start": "", "end": "", "x": "", "y": "",
               "width": "", "height": "", "synthetic": "true", "text": "", "text_section": ""}
        if s["kind"] == "span":
            row["start"], row["end"] = s["geometry"]
        elif s["kind"] == "region":
            row["x"], row["y"], row["width"], row["height"] = s["geometry"]
        segments.append(row)
        codings += [{"segment_id": f"G{i}", "codebook": b, "code_id": c, "coder": "consensus"} for b, c in s["codes"]]
    pd.DataFrame(segments).to_csv(folder / "segments.csv", index=False)
    pd.DataFrame(codings).to_csv(folder / "codings.csv", index=False)


def sel(source, kind, geometry, *codes, source_kind="interview"):
    return {"source": source, "kind": kind, "geometry": tuple(geometry), "source_kind": source_kind,
            "codes": {tuple(c.split(":")) for c in codes}}


HAND_MADE = [
    sel("P1-T", "span", (0, 10), "interview:A.1"),
    sel("P1-T", "span", (0, 10), "interview:A.2"),  # identical: NVivo's one selection per code
    sel("P1-T", "span", (2, 5), "interview:A.3"),  # nested in the first two
    sel("P1-T", "span", (8, 20), "interview:B.1", "both:X.1"),  # partly overlaps them
    sel("P1-T", "span", (20, 30), "interview:A.3"),  # touches the previous one: no overlap
    sel("P1-T", "span", (40, 41), "interview:A.1", "interview:A.2"),  # one selection, two codes
    sel("P1-D", "region", (0, 0, 10, 10), "drawing:D.1", source_kind="drawing"),
    sel("P1-D", "region", (0, 0, 10, 10), "drawing:D.2", source_kind="drawing"),  # identical region
    sel("P1-D", "region", (2, 2, 3, 3), "drawing:D.3", source_kind="drawing"),  # nested
    sel("P1-D", "region", (8, 8, 10, 10), "both:X.1", source_kind="drawing"),  # partly overlapping
    sel("P1-D", "region", (18, 8, 5, 5), "both:X.2", source_kind="drawing"),  # touches the previous edge
    sel("P1-D", "region", (0, 30, 4, 4), "drawing:D.1", "drawing:D.3", source_kind="drawing"),
    sel("P2-T", "span", (0, 10), "interview:A.1", "both:X.2"),
    sel("P2-T", "span", (5, 15), "interview:A.2"),
    sel("P2-T", "span", (5, 15), "interview:A.3"),
    sel("P2-D", "whole", ("P2-D whole",), "drawing:D.1", "drawing:D.2", source_kind="drawing"),  # whole drawing
    sel("P2-D", "region", (0, 0, 5, 5), "drawing:D.3", source_kind="drawing"),
]


@pytest.fixture(scope="module")
def generated_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("overlap-generated")
    kg = mmkg.open_store(root / "store")
    write_study(root / "hand", "hand", HAND_MADE)
    kg.load(root / "hand")
    yield kg, root
    kg.close()


def test_hand_made_study_counts_what_a_person_counts(generated_store):
    """Counted by hand from HAND_MADE (not by any algorithm)."""
    kg, _ = generated_store
    got = graph_pairs(kg, "hand", unit="segment")
    i, d, x = (lambda c: ("interview", c)), (lambda c: ("drawing", c)), (lambda c: ("both", c))
    pair = lambda p, q: tuple(sorted((p, q)))  # noqa: E731
    # passages: P1-T [0,20) and [20,30) and [40,41); P2-T [0,15); P1-D big cluster, the touching X.2 region,
    # the lone region at y 30; P2-D the whole drawing (own passage) and its region
    n_interview, n_drawing, n_both = 4, 5, 9
    expected_n_ab = {
        pair(i("A.1"), i("A.2")): 3,  # identical selections, the one two-code selection, P2's overlap
        pair(i("A.1"), i("A.3")): 2,  # nested in P1; P2's [0,10) overlaps [5,15)
        pair(i("A.2"), i("A.3")): 2,  # P1 nested; P2 identical selections
        pair(i("A.1"), i("B.1")): 1, pair(i("A.2"), i("B.1")): 1,  # partial overlap
        pair(i("B.1"), x("X.1")): 1,  # one selection
        # P2's overlapping ranges
        pair(i("A.1"), x("X.2")): 1, pair(i("A.2"), x("X.2")): 1, pair(i("A.3"), x("X.2")): 1,
        pair(d("D.1"), d("D.2")): 2,  # identical regions; the whole drawing of P2
        pair(d("D.1"), d("D.3")): 2,  # nested; the two-code region
        pair(d("D.2"), d("D.3")): 1,
        pair(d("D.1"), x("X.1")): 1, pair(d("D.2"), x("X.1")): 1,  # partly overlapping region
        pair(i("A.1"), x("X.1")): 1, pair(i("A.2"), x("X.1")): 1,  # partial overlap in P1-T
    }
    assert {pair: v[0] for pair, v in got.items()} == expected_n_ab
    # not co-occurring although in one passage: nested A.3 [2,5) and B.1 [8,20); touching never
    assert pair(i("A.3"), i("B.1")) not in got and pair(d("D.3"), x("X.1")) not in got
    assert got[pair(i("A.1"), i("A.2"))][2] == n_interview  # interview passages only
    assert got[pair(d("D.1"), d("D.2"))][2] == n_drawing
    assert got[pair(i("A.1"), x("X.2"))][2] == n_interview  # X is applied on both kinds: only interviews carry A
    assert got[pair(d("D.1"), x("X.1"))][2] == n_drawing
    assert got[pair(i("A.1"), i("A.2"))][1] == (3, 3)
    with_both = kg.query("cooccurrence", study_id="hand", code_a="both:X.1", code_b="both:X.2", min_count=0)
    assert with_both["n_units"].tolist() == [n_both] and with_both["n_ab"].tolist() == [0]
    # exact: only identical selections (and one selection's own codes) count
    exact = graph_pairs(kg, "hand", unit="exact")
    assert {pair: v[0] for pair, v in exact.items()} == {
        pair(i("A.1"), i("A.2")): 2, pair(i("A.2"), i("A.3")): 1, pair(i("B.1"), x("X.1")): 1,
        pair(i("A.1"), x("X.2")): 1,
        pair(d("D.1"), d("D.2")): 2, pair(d("D.1"), d("D.3")): 1}
    # proximity 1: touching ranges co-occur (B.1 [8,20) and A.3 [20,30)); regions are unaffected
    near = graph_pairs(kg, "hand", unit="segment", proximity=1)
    assert near[pair(i("A.3"), i("B.1"))][0] == 1 and pair(x("X.1"), x("X.2")) not in near


def test_hand_made_study_equals_the_reference(generated_store):
    kg, _ = generated_store
    for unit, kw in (("segment", {}), ("exact", {"exact": True})):
        assert graph_pairs(kg, "hand", unit=unit) == expected_pairs(HAND_MADE, **kw), unit
    for proximity in (1, 5, 11):
        assert graph_pairs(kg, "hand", unit="segment", proximity=proximity) == \
            expected_pairs(HAND_MADE, proximity=proximity), proximity


@st.composite
def layouts(draw):
    """Random selections of 1–3 participants, many of them identical, nested, overlapping or touching."""
    out = []
    for p in range(draw(st.integers(1, 3))):
        for source_kind in ("interview", "drawing"):
            source = f"P{p}-{source_kind[0].upper()}"
            kind = "span" if source_kind == "interview" else "region"
            books = [b for b in BOOKS if source_kind in KINDS[b]]
            placed = []
            for _ in range(draw(st.integers(0, 7))):
                if placed and draw(st.booleans()):  # derive from an earlier selection: same, inside, touching …
                    base = draw(st.sampled_from(placed))
                    how = draw(st.sampled_from(["same", "inside", "shift", "touch"]))
                    geometry = _derive(base, how, draw(st.integers(1, 4)))
                else:
                    geometry = ((lambda s: (s, s + draw(st.integers(0, 12))))(draw(st.integers(0, 40)))
                                if kind == "span" else
                                (draw(st.integers(0, 30)), draw(st.integers(0, 30)), draw(st.integers(0, 9)),
                                 draw(st.integers(0, 9))))
                placed.append(geometry)
                codes = draw(st.sets(st.sampled_from([(b, c) for b in books for c in BOOKS[b]]), min_size=1,
                                     max_size=2))
                out.append({"source": source, "kind": kind, "geometry": geometry, "source_kind": source_kind,
                            "codes": set(codes)})
    return out


def _derive(base: tuple, how: str, k: int) -> tuple:
    if len(base) == 2:
        s, e = base
        return {"same": (s, e), "inside": (s + min(k, (e - s) // 2), max(s + min(k, (e - s) // 2), e - k)),
                "shift": (s + k, e + k), "touch": (e, e + k)}[how]
    x, y, w, h = base
    return {"same": (x, y, w, h), "inside": (x + 1, y + 1, max(w - 2, 0), max(h - 2, 0)),
            "shift": (x + k, y + k, w, h), "touch": (x + w, y, k, h)}[how]


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts(), proximity=st.sampled_from([0, 0, 3]))
def test_generated_layouts_equal_the_reference(generated_store, layout, proximity):
    kg, root = generated_store
    if not layout:
        return
    write_study(root / "random", "random", layout)
    kg.load(root / "random")
    assert graph_pairs(kg, "random", unit="segment", proximity=proximity) == \
        expected_pairs(layout, proximity=proximity)
    assert graph_pairs(kg, "random", unit="exact") == expected_pairs(layout, exact=True)
