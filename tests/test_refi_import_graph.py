"""Every real REFI-QDA export loads into a real embedded store, and the graph's counts equal a census of its XML."""
from __future__ import annotations

from pathlib import Path

import pytest
from refi_census import census

import mmkg

pytestmark = pytest.mark.slow  # a module fixture loads several whole studies

SHARED = Path(__file__).resolve().parents[2] / "shared" / "external" / "refi-qda"
LOCAL = Path(__file__).resolve().parent / "data" / "refi-qda" / "atlasti-8.4-refi-standard-project.qdpx"
SHARED_FILES = sorted(SHARED.glob("*.qdpx")) if SHARED.is_dir() else []


def graph_counts(kg, study_id: str) -> tuple[int, int, int, int, int]:
    """(codes, codable codes, sources, segments, codings) of one study, counted in the graph."""
    def count(cypher: str) -> int:
        return int(kg.cypher(cypher, {"s": study_id})["n"].iloc[0])

    return (count("MATCH (k:Code) WHERE k.study_id = $s RETURN count(k) AS n"),
            count("MATCH (k:Code) WHERE k.study_id = $s AND k.codable = true RETURN count(k) AS n"),
            count("MATCH (:Participant)-[:HAS_SOURCE]->(src:Source) WHERE src.study_id = $s RETURN count(src) AS n"),
            count("MATCH (:Source)-[:HAS_SEGMENT]->(seg:Segment) WHERE seg.study_id = $s RETURN count(seg) AS n"),
            count("MATCH (seg:Segment)-[r:CODED_AS]->(:Code) WHERE seg.study_id = $s RETURN count(r) AS n"))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One store holding every shared export (and the local ATLAS.ti copy), each under its own study id."""
    files = {"local-atlas": LOCAL, **{f"shared-{i}": path for i, path in enumerate(SHARED_FILES)}}
    kg = mmkg.open_store(tmp_path_factory.mktemp("refi-graph") / "store")
    reports = {study_id: kg.load(path, study_id=study_id) for study_id, path in files.items()}
    yield kg, files, reports
    kg.close()


def test_local_atlas_copy_in_graph_equals_census(loaded):
    kg, files, _ = loaded
    assert graph_counts(kg, "local-atlas") == census(LOCAL) == (14, 14, 12, 15, 16)


@pytest.mark.skipif(not SHARED_FILES, reason=f"shared REFI-QDA exports not found at {SHARED}")
@pytest.mark.parametrize("index", range(6))
def test_shared_export_in_graph_equals_census(loaded, index):
    kg, files, reports = loaded
    assert len(SHARED_FILES) == 6, f"expected the six exports the README lists, found {len(SHARED_FILES)}"
    study_id = f"shared-{index}"
    expected = census(files[study_id])
    assert graph_counts(kg, study_id) == expected, files[study_id].name
    # the load report counts what was written, and agrees with the graph
    counts = reports[study_id].counts
    assert (counts.get("Segment", 0), counts.get("CODED_AS", 0)) == expected[3:]


def test_participants_and_coders_in_graph(loaded):
    kg, _, _ = loaded
    people = kg.cypher("MATCH (s:Study)-[:HAS_PARTICIPANT]->(p:Participant) WHERE s.id = 'local-atlas' "
                       "RETURN count(p) AS n, sum(CASE WHEN p.synthetic THEN 1 ELSE 0 END) AS synthetic")
    assert people.iloc[0].tolist() == [12, 12]  # no Cases: one flagged participant per source
    coders = kg.cypher("MATCH (s:Study)-[:HAS_CODER]->(c:Coder) WHERE s.id = 'local-atlas' RETURN c.id AS id")
    assert coders["id"].tolist() == ["Friedrich Markgraf"]


@pytest.mark.skipif(not SHARED_FILES, reason=f"shared REFI-QDA exports not found at {SHARED}")
def test_duplicate_code_names_stay_distinct_in_graph(loaded):
    kg, files, _ = loaded
    [study_id] = [s for s, p in files.items() if p.name == "qc-1.3.2-demo.qdpx"]
    labels = kg.cypher("MATCH (k:Code) WHERE k.study_id = $s AND k.label = 'citizenship' "
                       "OPTIONAL MATCH (k)-[:SUBCODE_OF]->(p:Code) RETURN k.uid AS uid, p.uid AS parent",
                       {"s": study_id})
    assert len(labels) == 3 and labels["uid"].is_unique and labels["parent"].nunique() == 3


@pytest.mark.skipif(not SHARED_FILES, reason=f"shared REFI-QDA exports not found at {SHARED}")
def test_code_nesting_in_graph_equals_xml(loaded):
    """SUBCODE_OF edges = <Code> elements directly inside another <Code>, per file."""
    import xml.etree.ElementTree as ET
    import zipfile

    from refi_census import NS

    kg, files, _ = loaded
    for study_id, path in files.items():
        with zipfile.ZipFile(path) as archive:
            [qde] = [n for n in archive.namelist() if n.lower().endswith(".qde") and "/" not in n]
            root = ET.fromstring(archive.read(qde))
        nested = sum(1 for parent in root.iter(f"{NS}Code") for child in parent if child.tag == f"{NS}Code")
        found = kg.cypher("MATCH (k:Code)-[r:SUBCODE_OF]->(:Code) WHERE k.study_id = $s RETURN count(r) AS n",
                          {"s": study_id})["n"].iloc[0]
        assert found == nested, path.name


def test_hostile_files_leave_the_store_unchanged(tmp_path):
    """Every hostile file of the reader tests that trips with default limits is refused by `kg.load`, graph
    untouched."""
    from test_refi_qda import hostile_cases

    from mmkg.errors import LoadError
    from mmkg.loader.refi_qda import ArchiveLimits

    def snapshot(kg):
        return kg.cypher("MATCH (n) RETURN count(n) AS nodes").iloc[0, 0], \
            kg.cypher("MATCH ()-[r]->() RETURN count(r) AS rels").iloc[0, 0], kg.study_ids()

    cases = [case for case in hostile_cases(tmp_path) if case[2] == ArchiveLimits()]
    assert len(cases) >= 12
    with mmkg.open_store(tmp_path / "store") as kg:
        kg.load(LOCAL, study_id="kept")
        before = snapshot(kg)
        for what, path, _, needle in cases:
            with pytest.raises(LoadError) as caught:
                kg.load(path, study_id="hostile")
            assert needle in str(caught.value), what
            assert snapshot(kg) == before, what
