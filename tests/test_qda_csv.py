"""Taguette's highlights CSV export loads through its documented column mapping; mmkg's own codings table stays
the default."""
from __future__ import annotations

import csv

import pytest

from mmkg.errors import LoadError
from mmkg.loader import read_study

# The four columns Taguette writes (taguette/export.py, highlights_csv): one row per (highlight, tag);
# a highlight without tags has one row with an empty tag.
HIGHLIGHTS = [
    ["id", "document", "tag", "content"],
    ["11", "interview alice.docx", "model theft", "someone could copy the model through the API"],
    ["11", "interview alice.docx", "data leak", "someone could copy the model through the API"],
    ["12", "interview alice.docx", "", "we never thought about it"],
    ["13", "interview bob.pdf", "data leak", "the customer data could leak"],
    ["14", "interview bob.pdf", "model theft", "copying the model"],
    ["14", "interview bob.pdf", "model theft", "copying the model"],
]


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.slow
def test_taguette_highlights_load_into_the_graph(kg, tmp_path):
    path = write_csv(tmp_path / "taguette_highlights.csv", HIGHLIGHTS)
    report = kg.load(path, study_id="tag-study")
    c = report.counts
    assert (c["Participant"], c["Source"], c["Segment"], c["Code"], c["CODED_AS"]) == (2, 2, 4, 2, 4)
    codings = kg.export_codings("tag-study")
    assert set(codings["coder"]) == {"taguette"} and set(codings["codebook"]) == {"taguette"}
    assert sorted(codings["segment_id"]) == ["11", "11", "13", "14"]
    assert codings["start"].isna().all()  # Taguette exports no offsets
    bob = codings[codings["participant_id"] == "interview bob.pdf"]
    assert sorted(bob["code_id"]) == ["data leak", "model theft"]
    text = kg.cypher("MATCH (s:Segment) WHERE s.study_id = 'tag-study' AND s.id = '13' RETURN s.text AS t")["t"][0]
    assert text == "the customer data could leak"
    flagged = kg.cypher("MATCH (p:Participant) WHERE p.study_id = 'tag-study' RETURN p.synthetic AS s")["s"]
    assert flagged.all()
    warnings = "\n".join(report.warnings)
    assert "1 highlight(s) have no tag" in warnings and "1 repeated (highlight, tag)" in warnings


def test_newer_taguette_columns_give_parents_and_descriptions(tmp_path):
    rows = [["id", "document", "tag", "tag_parent", "tag_full_path", "tag_description", "content"],
            ["1", "doc", "theft", "threats", "threats.theft", "someone takes it", "they take it"],
            ["2", "doc", "leak", "threats", "threats.leak", "", "it leaks"]]
    tables = read_study(write_csv(tmp_path / "hl.csv", rows))
    codes = tables.codes.set_index("code_id")
    assert codes.loc["theft", "parent_code_id"] == "threats" and codes.loc["theft", "definition"] == "someone takes it"
    assert "threats" in codes.index  # a parent without highlights becomes a code
    assert tables.meta.id == "hl"


def test_codings_table_stays_the_default_csv(founding_store, tmp_path):
    import mmkg

    exported = tmp_path / "codings.csv"
    with mmkg.open_store(founding_store) as kg:
        kg.export_codings("founding").to_csv(exported, index=False)
    tables = read_study(exported, study_id="again")
    assert tables.meta.codebooks == ["drawing", "interview"] and "taguette" not in tables.meta.codebooks


def test_highlight_with_two_documents_is_refused(tmp_path):
    rows = HIGHLIGHTS[:2] + [["11", "another.docx", "data leak", "someone could copy the model through the API"]]
    with pytest.raises(LoadError, match=r"row 3, column document: highlight 11 has a different document"):
        read_study(write_csv(tmp_path / "bad.csv", rows))


def test_header_only_is_refused(tmp_path):
    with pytest.raises(LoadError, match="has a header but no highlights"):
        read_study(write_csv(tmp_path / "empty.csv", HIGHLIGHTS[:1]))
