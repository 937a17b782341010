"""Shipped study → .qdpx (valid against the REFI-QDA 1.0 schema) → import of its REFI-QDA part alone (what a tool
that knows nothing of mmkg's member `mmkg/study.json` reads): the same codes, segments, codings, coders and
participants, compared by content (REFI-QDA has its own GUIDs).  The identity through mmkg's member is
tests/test_round_trip.py."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

import mmkg
from mmkg.graph_tables import read_study_tables

pytestmark = pytest.mark.slow  # a module fixture exports the founding study, validates and imports it back

DATA = Path(__file__).resolve().parent / "data" / "refi-qda"
XSD = DATA / "Project-mrt2019.xsd"  # MIT, REFI 2019; see tests/data/refi-qda/README.md
ATLAS = DATA / "atlasti-8.4-refi-standard-project.qdpx"


def code_paths(tables, with_groups: bool) -> dict[tuple, tuple[str, bool]]:
    """(codebook, code_id) → (path of labels from the codebook down, codable).  With `with_groups` the
    path runs codebook / group chain / parent codes / label, as the export writes the tree."""
    codes = tables.codes.set_index(["codebook", "code_id"])
    groups = tables.groups.set_index(["codebook", "group_id"])
    paths = {}
    for (codebook, code_id), row in codes.iterrows():
        labels, current = [], (codebook, code_id)
        while True:
            labels.insert(0, codes.loc[current, "label"])
            parent = codes.loc[current, "parent_code_id"]
            if parent is None:
                break
            current = (codebook, parent)
        if with_groups:
            group = codes.loc[current, "group_id"]
            while group is not None:
                labels.insert(0, groups.loc[(codebook, group), "label"])
                group = groups.loc[(codebook, group), "parent_group_id"]
            labels.insert(0, codebook)
        paths[(codebook, code_id)] = ("/".join(labels), str(row["codable"]).lower() == "true")
    return paths


def group_paths(tables) -> list[tuple[str, bool]]:
    groups = tables.groups.set_index(["codebook", "group_id"])
    result = []
    for codebook, group in groups.index:
        labels, current = [], group
        while current is not None:
            labels.insert(0, groups.loc[(codebook, current), "label"])
            current = groups.loc[(codebook, current), "parent_group_id"]
        result.append(("/".join([codebook, *labels]), False))
    return result


def content(tables, from_export: bool) -> dict[str, object]:
    """Everything the round trip must keep, keyed by content instead of ids."""
    paths = code_paths(tables, with_groups=not from_export)
    participants = tables.participants.set_index("participant_id")
    attributes = [c for c in participants.columns if c not in ("label", "_row", "_where")]
    sources = tables.sources.set_index("source_id")
    segments = tables.segments.set_index("segment_id")

    def place(segment_id):
        seg = segments.loc[segment_id]
        source = sources.loc[seg["source_id"]]
        owner = participants.loc[source["participant_id"], "label"]
        position = tuple(-1 if seg[c] is None else round(float(seg[c])) for c in
                         ("start", "end", "x", "y", "width", "height"))
        return (owner, source["title"], source["kind"], position)

    code_set = set(paths.values())
    if not from_export:  # the export writes codebooks and groups as the uncodable upper levels of the code tree
        code_set |= {(codebook, False) for codebook in tables.meta.codebooks} | set(group_paths(tables))
    return {
        "codes": code_set,
        "segments": sorted(map(place, segments.index)),
        "codings": sorted((place(r.segment_id), paths[(r.codebook, r.code_id)][0].split("/")[-1], r.coder)
                          for r in tables.codings.itertuples()),
        "coders": sorted(set(tables.codings["coder"])),
        "participants": sorted((row["label"], tuple(sorted((a, str(row[a])) for a in attributes
                                                            if row[a] is not None and a != "synthetic_participant")))
                               for _, row in participants.iterrows()),
    }


def schema_errors(path: Path) -> list[str]:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    with zipfile.ZipFile(path) as archive:
        document = etree.fromstring(archive.read("project.qde"))
    return [] if schema.validate(document) else [str(e) for e in schema.error_log][:5]


@pytest.fixture(scope="module")
def round_trip(founding_template, tmp_path_factory):
    """The founding study exported with the CLI, validated, and imported back next to the original."""
    import shutil

    from mmkg.cli.main import app

    folder = tmp_path_factory.mktemp("qdpx")
    store = folder / "store"
    shutil.copytree(founding_template, store)
    output = folder / "founding.qdpx"
    result = CliRunner().invoke(app, ["export", "qdpx", "--study", "founding", "-o", str(output),
                                      "--store", str(store)])
    assert result.exit_code == 0, result.output
    plain = folder / "founding-plain.qdpx"  # the REFI-QDA part only
    with zipfile.ZipFile(output) as source, zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as target:
        assert "mmkg/study.json" in source.namelist()
        for info in source.infolist():
            if info.filename != "mmkg/study.json":
                target.writestr(info, source.read(info))
    kg = mmkg.open_store(store)
    report = kg.load(plain, study_id="founding-rt")
    yield kg, output, report
    kg.close()


def test_export_validates_against_the_refi_schema(round_trip):
    _, output, _ = round_trip
    assert schema_errors(output) == []


def test_round_trip_keeps_codes_segments_codings_coders_participants(round_trip):
    kg, _, _ = round_trip
    original = content(read_study_tables(kg, "founding"), from_export=False)
    back_tables = read_study_tables(kg, "founding-rt")
    back = content(back_tables, from_export=True)
    assert len(original["codings"]) == 3927
    for part in ("codes", "segments", "codings", "coders", "participants"):
        assert back[part] == original[part], part
    assert len(back_tables.codes) == 121 + 17 + 2  # codes, groups and codebooks (the tree's upper levels)


def test_round_trip_keeps_analysis_coder_and_provenance(round_trip):
    kg, _, report = round_trip
    studies = kg.studies().set_index("study_id")
    assert studies.loc["founding-rt", "analysis_coder"] == "consensus"
    assert studies.loc["founding", "provenance"] in studies.loc["founding-rt", "provenance"]
    analysis = kg.cypher("MATCH (s:Segment)-[r:CODED_AS]->() WHERE r.analysis = true "
                         "RETURN s.study_id AS study, count(r) AS n ORDER BY study")
    assert analysis["n"].tolist()[0] == analysis["n"].tolist()[1]


def test_imported_refi_project_round_trips_too(tmp_path):
    """A real export (ATLAS.ti 8.4: pictures, PDFs, video, no cases) → mmkg → .qdpx → mmkg."""

    with mmkg.open_store(tmp_path / "store") as kg:
        kg.load(ATLAS, study_id="atlas")
        kg.export_qdpx("atlas", tmp_path / "atlas.qdpx")
        kg.export_qdpx("atlas", tmp_path / "again.qdpx")
        kg.load(tmp_path / "atlas.qdpx", study_id="atlas-rt")
        first, back = read_study_tables(kg, "atlas"), read_study_tables(kg, "atlas-rt")
    assert schema_errors(tmp_path / "atlas.qdpx") == []
    with zipfile.ZipFile(tmp_path / "atlas.qdpx") as a, zipfile.ZipFile(tmp_path / "again.qdpx") as b:
        assert a.read("project.qde") == b.read("project.qde")  # stable GUIDs: same export twice
    # a REFI-QDA import goes out without wrapper codes, so it comes back with the same code tree
    original, again = content(first, from_export=False), content(back, from_export=False)
    for part in ("codes", "segments", "codings", "coders", "participants"):
        assert again[part] == original[part], part
