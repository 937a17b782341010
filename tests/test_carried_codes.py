"""The codes each source carries among a study's analysis codings, stored at load (CARRIES and
`Source.analysis_codings`, `mmkg.schema.CARRIED_COLUMN`): they are the counts a person takes from the study's own
files, and co-occurrence by source and by participant read from them equals the unit table counted from every
coding (`fetch_unit_table(stored=False)`).  A store written before them is upgraded in place without them; its
studies read their codings (or their stored passages) until they are loaded again."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_code_pairs import pairs_equal
from test_segment_overlap import HAND_MADE, REFI_FILES, layouts, write_study
from test_stored_passages import load_layout, make_earlier, tables_equal, with_second_coder

import mmkg
from mmkg.analysis import _stored_carried_table, _stored_passage_table
from mmkg.store.embedded import current_database_file

SOURCE_UNITS = ("source", "participant")


def carried(kg, study_id: str) -> pd.DataFrame:
    return kg.cypher("MATCH (src:Source)-[r:CARRIES]->(k:Code) WHERE src.study_id = $s "
                     "RETURN src.id AS source_id, k.codebook AS codebook, k.id AS code_id, r.codings AS codings "
                     "ORDER BY source_id, codebook, code_id", {"s": study_id})


def counted_in_the_graph(kg, study_id: str) -> pd.DataFrame:
    """The analysis codings per source and code, counted by the store along the sources' segments."""
    return kg.cypher("MATCH (src:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code) "
                     "WHERE src.study_id = $s AND c.analysis RETURN src.id AS source_id, k.codebook AS codebook, "
                     "k.id AS code_id, count(*) AS codings ORDER BY source_id, codebook, code_id", {"s": study_id})


def counted_from_files(folder, analysis_coder: str = "consensus") -> pd.DataFrame:
    """The analysis codings of the study folder per source and code, counted from its CSV files."""
    codings = pd.read_csv(folder / "codings.csv", dtype=str)
    segments = pd.read_csv(folder / "segments.csv", dtype=str)[["segment_id", "source_id"]]
    chosen = codings[codings["coder"] == analysis_coder].merge(segments, on="segment_id")
    return chosen.groupby(["source_id", "codebook", "code_id"]).size().rename("codings").reset_index()


def test_the_hand_made_study_carries_the_codes_its_files_count(module_store):
    kg, root = module_store
    folder = root / "hand"
    write_study(folder, "hand", HAND_MADE)
    with_second_coder(folder)  # another coder's codings (and a segment of its own) carry nothing
    kg.load(folder)
    expected = counted_from_files(folder)
    got = carried(kg, "hand")
    pd.testing.assert_frame_equal(got.astype({"codings": "int64"}), expected, check_dtype=False)
    per_source = kg.cypher("MATCH (src:Source) WHERE src.study_id = 'hand' "
                           "RETURN src.id AS source_id, src.analysis_codings AS n ORDER BY source_id")
    totals = expected.groupby("source_id")["codings"].sum()
    assert dict(zip(per_source["source_id"], per_source["n"])) == {s: int(totals.get(s, 0))
                                                                  for s in per_source["source_id"]}
    assert _stored_carried_table(kg, "hand", None, "source") is not None, "the stored path is the one taken"
    tables_equal(kg, "hand", SOURCE_UNITS)


def test_a_source_without_analysis_codings_carries_nothing(module_store):
    kg, root = module_store
    folder = root / "quiet"
    write_study(folder, "quiet", HAND_MADE)
    codings = pd.read_csv(folder / "codings.csv", dtype=str)
    segments = pd.read_csv(folder / "segments.csv", dtype=str)
    first_source = segments["source_id"].iloc[0]
    in_it = codings["segment_id"].isin(segments.loc[segments["source_id"] == first_source, "segment_id"])
    codings.loc[in_it, "coder"] = "someone else"  # its codings are not the analysis coder's
    codings.to_csv(folder / "codings.csv", index=False)
    kg.load(folder)
    row = kg.cypher("MATCH (src:Source) WHERE src.study_id = 'quiet' AND src.id = $id "
                    "OPTIONAL MATCH (src)-[r:CARRIES]->() RETURN src.analysis_codings AS n, count(r) AS carried",
                    {"id": first_source})
    assert row.to_dict("records") == [{"n": 0, "carried": 0}]
    tables_equal(kg, "quiet", SOURCE_UNITS)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts(), second_coder=st.booleans())
def test_generated_layouts_carry_what_their_codings_count(module_store, layout, second_coder):
    kg, root = module_store
    if not layout:
        return
    folder = root / "random"
    load_layout(kg, folder, layout, second_coder)
    pd.testing.assert_frame_equal(carried(kg, "random").astype({"codings": "int64"}), counted_from_files(folder),
                                  check_dtype=False)
    tables_equal(kg, "random", SOURCE_UNITS)


@pytest.mark.slow
@pytest.mark.parametrize("name", REFI_FILES or ["(none)"])
def test_every_real_refi_export_carries_the_codes_and_pairs_of_its_codings(shared_dir, module_store, name):
    kg, _ = module_store
    path = shared_dir / "external" / "refi-qda" / name
    study_id = "x-" + path.stem.replace(".", "-")
    kg.load(path, study_id=study_id)
    pd.testing.assert_frame_equal(carried(kg, study_id), counted_in_the_graph(kg, study_id), check_dtype=False)
    pairs_equal(kg, study_id)
    tables_equal(kg, study_id, ("segment", *SOURCE_UNITS))


def test_the_founding_study_carries_its_codes(founding_store):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        total = kg.cypher("MATCH (:Source)-[r:CARRIES]->(k:Code) WHERE k.study_id = 'founding' "
                          "RETURN sum(r.codings) AS n")["n"][0]
        analysis = kg.cypher("MATCH (:Segment)-[c:CODED_AS]->(k:Code) WHERE k.study_id = 'founding' AND c.analysis "
                             "RETURN count(*) AS n")["n"][0]
        assert total == analysis > 0
        tables_equal(kg, "founding", SOURCE_UNITS)


@pytest.mark.parametrize("dropped", ["carried codes", "carried codes and passages"])
def test_a_store_from_before_the_carried_codes_is_upgraded_and_counts_the_same(founding_store, dropped):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        before = {unit: kg.query("cooccurrence", study_id="founding", unit=unit) for unit in SOURCE_UNITS}
    file, _ = current_database_file(founding_store)
    make_earlier(founding_store, 1 if "passages" in dropped else 2)
    with mmkg.open_store(founding_store, read_only=True) as kg:  # upgraded once, as a new version
        assert carried(kg, "founding").empty
        assert _stored_carried_table(kg, "founding", None, "source") is None
        assert (_stored_passage_table(kg, "founding", None, "source") is None) == ("passages" in dropped)
        for unit in SOURCE_UNITS:
            pd.testing.assert_frame_equal(kg.query("cooccurrence", study_id="founding", unit=unit), before[unit])
    assert not file.exists(), "the version without them is collected"
    with mmkg.open_store(founding_store) as kg:  # loading the study again stores them
        kg.load(None)
        assert not carried(kg, "founding").empty
        for unit in SOURCE_UNITS:
            pd.testing.assert_frame_equal(kg.query("cooccurrence", study_id="founding", unit=unit), before[unit])
