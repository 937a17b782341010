"""Study metadata written at load: `studies` reads each study's counts instead of counting its rows per request,
and a store written before studies carried them is upgraded once, as a new published version."""
from __future__ import annotations

import ladybug
import pandas as pd

import mmkg
from mmkg.schema import STUDY_COUNTS
from mmkg.store.embedded import current_database_file

# Counted by walking the graph: what the counts written at load must equal.
WALKED = {
    "participants": "MATCH (s:Study {id: $s})-[:HAS_PARTICIPANT]->(p:Participant) RETURN count(p)",
    "sources": "MATCH (s:Study {id: $s})-[:HAS_PARTICIPANT]->(:Participant)-[:HAS_SOURCE]->(x:Source) RETURN count(x)",
    "codes": "MATCH (k:Code) WHERE k.study_id = $s RETURN count(k)",
    "codings": "MATCH (:Participant {study_id: $s})-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(:Segment)"
               "-[c:CODED_AS]->(:Code) RETURN count(c)",
}


def walked_counts(kg, study_id: str) -> dict[str, int]:
    return {name: int(kg.cypher(cypher, {"s": study_id}).iloc[0, 0]) for name, cypher in WALKED.items()}


def study_counts(kg) -> dict[str, dict[str, int]]:
    return {row["study_id"]: {name: int(row[name]) for name in STUDY_COUNTS}
            for row in kg.studies().to_dict("records")}


def test_studies_lists_the_counts_written_at_load_which_equal_the_graphs(founding_store, tmp_path):
    csv = tmp_path / "codings.csv"
    pd.DataFrame({"study_id": "small", "participant_id": ["P1", "P1", "P2"], "source_id": ["P1-i", "P1-i", "P2-i"],
                  "source_kind": "interview", "segment_id": ["s1", "s1", "s2"], "start": [0, 0, 5], "end": [4, 4, 9],
                  "code_id": ["A", "B", "A"], "codebook": "interview", "coder": "c1"}).to_csv(csv, index=False)
    with mmkg.open_store(founding_store) as kg:
        kg.load(csv, study_id="small")
        listed = study_counts(kg)
        assert set(listed) == {"founding", "small"}
        for study_id, counts in listed.items():
            assert counts == walked_counts(kg, study_id), study_id
        assert listed["small"] == {"participants": 2, "sources": 2, "codes": 2, "codings": 3}
        kg.delete_study("small")
        assert set(study_counts(kg)) == {"founding"}


def test_a_store_from_before_the_counts_is_upgraded_once_as_a_new_version(founding_store):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        expected = study_counts(kg)
    file, old_version = current_database_file(founding_store)
    db = ladybug.Database(str(file))  # make it a store of an earlier mmkg: Study without the counts
    conn = ladybug.Connection(db)
    for name in STUDY_COUNTS:
        conn.execute(f"ALTER TABLE Study DROP {name}")
    conn.close()
    db.close()
    with mmkg.open_store(founding_store, read_only=True) as kg:
        assert study_counts(kg) == expected
        assert kg.store.version != old_version
        assert study_counts(kg)["founding"] == walked_counts(kg, "founding")
    assert not file.exists(), "the version without counts is collected"
    with mmkg.open_store(founding_store, read_only=True) as kg:
        upgraded = kg.store.version
    assert upgraded == current_database_file(founding_store)[1], "the second open finds nothing to upgrade"
