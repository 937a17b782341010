"""The code pairs a study's passages share, stored at load (`mmkg.schema.PAIR_COLUMNS`), are those its selections'
positions give: the pairs equal the off-diagonal of the segment unit table counted from every coding's position
(`fetch_unit_table(stored=False)`, checked against a plain-Python reference in tests/test_segment_overlap.py);
the passages each source's codes are in and each source's passages equal the store's own count of the stored
passages (every real REFI-QDA export: tests/test_carried_codes.py).  Generated layouts check the stored passages
too (`tables_equal`).  A store written before them is upgraded in place without them; its studies read their
stored passages until they are loaded again."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_segment_overlap import HAND_MADE, layouts, write_study
from test_stored_passages import load_layout, make_earlier, tables_equal, with_second_coder

import mmkg
import mmkg.code_pairs
from mmkg.analysis import _stored_pair_table, fetch_unit_table
from mmkg.store.embedded import current_database_file

# a coding's passage: its stored number, or its segment's where the passage's selections do not all overlap
PASSAGE = "CASE WHEN c.passage >= 0 THEN c.passage ELSE g.loose_passage END"


def stored_pairs(kg, study_id: str) -> pd.DataFrame:
    """COOCCURS_WITH of the study, each pair named by its two code uids in ascending order."""
    rows = kg.cypher("MATCH (a:Code)-[r:COOCCURS_WITH]->(b:Code) WHERE a.study_id = $s "
                     "RETURN a.uid AS a, b.uid AS b, r.passages AS passages", {"s": study_id})
    low, high = np.minimum(rows["a"], rows["b"]), np.maximum(rows["a"], rows["b"])
    return _sorted(pd.DataFrame({"a": low, "b": high, "passages": rows["passages"].astype("int64")}))


def pairs_from_positions(kg, study_id: str) -> pd.DataFrame:
    """The code pairs that co-occur in a passage, counted from every coding's position."""
    table = fetch_unit_table(kg, study_id, "segment", stored=False)
    uids = table.codes["code_uid"].to_numpy()
    i, j = np.triu_indices(len(uids), 1)
    keep = table.joint[i, j] > 0
    a, b = uids[i[keep]], uids[j[keep]]
    return _sorted(pd.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b),
                                 "passages": table.joint[i, j][keep].astype("int64")}))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["a", "b"]).reset_index(drop=True)


def pairs_equal(kg, study_id: str) -> None:
    """The stored pairs and per-source counts are those the positions and the stored passages give."""
    pd.testing.assert_frame_equal(stored_pairs(kg, study_id), pairs_from_positions(kg, study_id))
    carried = kg.cypher("MATCH (src:Source)-[r:CARRIES]->(k:Code) WHERE src.study_id = $s "
                        "RETURN src.uid AS source, k.uid AS code, r.passages AS passages "
                        "ORDER BY source, code", {"s": study_id})
    counted = kg.cypher("MATCH (src:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(k:Code) "
                        f"WHERE src.study_id = $s AND c.analysis RETURN src.uid AS source, k.uid AS code, "
                        f"count(DISTINCT {PASSAGE}) AS passages ORDER BY source, code", {"s": study_id})
    pd.testing.assert_frame_equal(carried, counted, check_dtype=False)
    per_source = kg.cypher("MATCH (src:Source) WHERE src.study_id = $s RETURN src.uid AS source, "
                           "src.passages AS passages ORDER BY source", {"s": study_id})
    found = kg.cypher("MATCH (src:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(:Code) "
                      f"WHERE src.study_id = $s AND c.analysis RETURN src.uid AS source, count(DISTINCT {PASSAGE}) "
                      "AS passages", {"s": study_id})
    expected = per_source[["source"]].merge(found, how="left").fillna({"passages": 0})
    assert per_source["passages"].astype("int64").tolist() == expected["passages"].astype("int64").tolist()


def test_the_hand_made_study_stores_the_pairs_its_positions_give(module_store):
    kg, root = module_store
    write_study(root / "hand", "hand", HAND_MADE)
    with_second_coder(root / "hand")  # another coder's codings pair nothing
    kg.load(root / "hand")
    assert len(stored_pairs(kg, "hand")) > 0
    pairs_equal(kg, "hand")
    tables_equal(kg, "hand")


def test_pairs_counted_a_few_at_a_time_or_sorted_are_the_same(module_store, monkeypatch):
    """A large study's pairs are enumerated a few million at a time (`PAIR_CHUNK`), and a large codebook's
    counted by sorting (`TABLE_SLACK`): the same rows as at once in a table."""
    kg, root = module_store
    write_study(root / "whole", "whole", HAND_MADE)
    kg.load(root / "whole")
    whole = without_study(stored_pairs(kg, "whole"))
    monkeypatch.setattr(mmkg.code_pairs, "PAIR_CHUNK", 3)
    monkeypatch.setattr(mmkg.code_pairs, "TABLE_SLACK", 0)
    write_study(root / "parts", "parts", HAND_MADE)
    kg.load(root / "parts")
    pd.testing.assert_frame_equal(without_study(stored_pairs(kg, "parts")), whole)
    pairs_equal(kg, "parts")


def without_study(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs with their codes' uids less the study id (`study/code/...`)."""
    return pairs.assign(a=pairs["a"].str.split("/", n=1).str[1], b=pairs["b"].str.split("/", n=1).str[1])


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts(), second_coder=st.booleans())
def test_generated_layouts_store_the_passages_and_pairs_their_positions_give(module_store, layout, second_coder):
    kg, root = module_store
    if layout:
        load_layout(kg, root / "random", layout, second_coder)
        pairs_equal(kg, "random")
        tables_equal(kg, "random")


def test_the_founding_study_stores_its_pairs(founding_store):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        assert len(stored_pairs(kg, "founding")) > 0
        pairs_equal(kg, "founding")


def test_a_store_from_before_the_code_pairs_is_upgraded_and_reads_its_passages(founding_store):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        before = kg.query("cooccurrence", study_id="founding")
    file, _ = current_database_file(founding_store)
    make_earlier(founding_store, 3)
    with mmkg.open_store(founding_store, read_only=True) as kg:  # upgraded once, as a new version
        assert stored_pairs(kg, "founding").empty
        assert _stored_pair_table(kg, "founding", None) is None
        pd.testing.assert_frame_equal(kg.query("cooccurrence", study_id="founding"), before)
    assert not file.exists(), "the version without them is collected"
    with mmkg.open_store(founding_store) as kg:  # loading the study again stores them
        kg.load(None)
        pairs_equal(kg, "founding")
        pd.testing.assert_frame_equal(kg.query("cooccurrence", study_id="founding"), before)
