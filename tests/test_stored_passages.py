"""The passages of a study's analysis codings, stored at load (`mmkg.schema.PASSAGE_COLUMNS`), count what the
selections' positions count: the segment unit read from them equals the unit table found from the positions
(`fetch_unit_table(stored=False)`, itself checked against a plain-Python reference in
tests/test_segment_overlap.py, whose default-unit tests now read the stored passages; generated layouts:
tests/test_code_pairs.py).  A store written before them is upgraded in place with the columns empty; its studies
read positions until they are loaded again."""
from __future__ import annotations

import shutil

import ladybug
import numpy as np
import pandas as pd
from test_segment_overlap import HAND_MADE, write_study

import mmkg
import mmkg.graph
from mmkg.analysis import _stored_passage_table, fetch_unit_table
from mmkg.schema import CARRIED_COLUMN, PAIR_COLUMNS, PASSAGE_COLUMNS
from mmkg.store.embedded import current_database_file


def tables_equal(kg, study_id: str, units=("segment",)) -> None:
    """The unit tables read from what the load stored equal those counted from every coding's position; at the
    segment unit, both what the query reads (the code pairs, `mmkg.schema.PAIR_COLUMNS`) and the stored
    passages (what a study loaded before the pairs reads)."""
    for unit in units:
        found = fetch_unit_table(kg, study_id, unit, stored=False)
        read = [fetch_unit_table(kg, study_id, unit)]
        if unit == "segment":
            passages = _stored_passage_table(kg, study_id, None, unit)
            assert passages is not None or not found.joint.any(), "a study with codings has stored passages"
            read += [passages] if passages is not None else []
        for stored in read:
            assert stored.codes.equals(found.codes), unit
            for name in ("joint", "carried", "universe", "book"):
                assert np.array_equal(getattr(stored, name), getattr(found, name)), (unit, name)


def make_earlier(store_path, version: int) -> None:
    """Make the store's graph one an earlier mmkg wrote: without what schema versions after `version` added
    (2: the stored passages, 3: the carried codes, 4: the code pairs)."""
    file, _ = current_database_file(store_path)
    db = ladybug.Database(str(file))
    conn = ladybug.Connection(db)
    tables, columns = [], []
    if version < 4:
        tables.append("COOCCURS_WITH")
        columns += [c for c in PAIR_COLUMNS if c[0] != "CARRIES"]
    if version < 3:
        tables.append("CARRIES")
        columns.append(CARRIED_COLUMN)
    elif version < 4:
        columns.append(("CARRIES", "passages", None))
    if version < 2:
        columns += PASSAGE_COLUMNS
    for table in tables:
        conn.execute(f"DROP TABLE {table}")
    for table, name, _ in columns:
        conn.execute(f"ALTER TABLE {table} DROP {name}")
    conn.close()
    db.close()


def stored_passages(kg, study_id: str) -> pd.DataFrame:
    return kg.cypher("MATCH (g:Segment)-[c:CODED_AS]->(k:Code) WHERE k.study_id = $s "
                     "RETURN c.coder AS coder, c.analysis AS analysis, c.passage AS passage, "
                     "g.loose_passage AS loose_passage", {"s": study_id})


def with_second_coder(folder, coder: str = "second") -> None:
    """Every other coding of the study folder coded by `coder` too, whose codings are not analysis codings (the
    study's analysis coder is `consensus`), and a segment of `coder`'s alone that spans every range of the
    first source: were it counted, it would join that source's passages into one."""
    codings = pd.read_csv(folder / "codings.csv", dtype=str)
    segments = pd.read_csv(folder / "segments.csv", dtype=str, keep_default_na=False)
    bridge = {**segments.iloc[0].to_dict(), "segment_id": "bridge", "start": "0", "end": "100000", "x": "",
              "y": "", "width": "", "height": ""}
    pd.concat([segments, pd.DataFrame([bridge])]).to_csv(folder / "segments.csv", index=False)
    extra = codings.iloc[::2].assign(coder=coder)
    bridging = extra.iloc[:1].assign(segment_id="bridge")
    pd.concat([codings, extra, bridging]).to_csv(folder / "codings.csv", index=False)


def test_the_hand_made_study_stores_the_passages_a_person_finds(module_store):
    kg, root = module_store
    write_study(root / "hand", "hand", HAND_MADE)
    with_second_coder(root / "hand")
    kg.load(root / "hand")
    rows = stored_passages(kg, "hand")
    analysis = rows[rows["analysis"]]
    assert rows.loc[~rows["analysis"], "passage"].isna().all(), "only analysis codings have a passage"
    assert analysis["passage"].notna().all()
    # the passages of HAND_MADE (test_segment_overlap): P1-T [0,20) is not a clique (A.3 [2,5) and B.1 [8,20)
    # do not overlap), nor is P1-D's big cluster; the other seven are
    loose = analysis[analysis["passage"] == -1]
    assert loose["loose_passage"].nunique() == 2
    assert analysis.loc[analysis["passage"] >= 0, "passage"].nunique() == 7
    assert sorted(kg.cypher("MATCH (s:Source) WHERE s.study_id = 'hand' RETURN s.first_passage AS f")["f"]) == \
        [0, 3, 6, 8]
    tables_equal(kg, "hand")


def load_layout(kg, folder, layout, second_coder: bool) -> None:
    """Load a generated layout as the study 'random' (`with_second_coder` when asked), in place of the last."""
    shutil.rmtree(folder, ignore_errors=True)
    write_study(folder, "random", layout)
    if second_coder:
        with_second_coder(folder)
    kg.load(folder)


def test_the_founding_study_stores_its_passages(founding_store):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        rows = stored_passages(kg, "founding")  # consensus codings, and two coders' for agreement
        assert rows["analysis"].any() and not rows["analysis"].all()
        assert (rows["passage"].notna() == rows["analysis"]).all()
        tables_equal(kg, "founding")


def test_a_store_from_before_the_stored_passages_is_upgraded_and_reads_positions(founding_store, tmp_path):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        before = kg.query("cooccurrence", study_id="founding")
    file, _ = current_database_file(founding_store)
    make_earlier(founding_store, 1)
    with mmkg.open_store(founding_store, read_only=True) as kg:  # upgraded once, as a new version
        assert stored_passages(kg, "founding")["passage"].isna().all()
        assert _stored_passage_table(kg, "founding", None, "segment") is None
        pd.testing.assert_frame_equal(kg.query("cooccurrence", study_id="founding"), before)
    assert not file.exists(), "the version without the columns is collected"
    with mmkg.open_store(founding_store) as kg:  # loading the study again stores its passages
        kg.load(None)
        rows = stored_passages(kg, "founding")
        assert (rows["passage"].notna() == rows["analysis"]).all()
        pd.testing.assert_frame_equal(kg.query("cooccurrence", study_id="founding"), before)


def test_passages_found_a_few_sources_at_a_time_are_the_same(module_store, monkeypatch):
    """A large study's passages are found in chunks of whole sources (`PASSAGE_CHUNK` segments): the numbers
    stored are those of one pass over the whole study."""
    kg, root = module_store
    write_study(root / "chunked", "chunked", HAND_MADE)
    kg.load(root / "chunked")
    columns = ["coder", "analysis", "passage", "loose_passage"]
    whole = stored_passages(kg, "chunked").sort_values(columns, ignore_index=True)
    monkeypatch.setattr(mmkg.graph, "PASSAGE_CHUNK", 2)  # smaller than a source: one source at a time
    kg.load(root / "chunked")
    pd.testing.assert_frame_equal(stored_passages(kg, "chunked").sort_values(columns, ignore_index=True), whole)
    tables_equal(kg, "chunked")
