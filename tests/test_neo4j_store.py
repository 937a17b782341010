"""The Neo4j store's staged loads, error mapping and lost commits, against the real Neo4j test server.

Without NEO4J_URI every test here skips (see tests/conftest.py); `bash tools/neo4j-test-server/run.sh`
starts the server the tier expects.
"""
from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from bolt_proxy import CommitCutter
from conftest import MINI_STUDY, NEO4J_URI, open_backend
from test_neo4j import snapshot

import mmkg
from mmkg.errors import MmkgError, QueryError, StoreError
from mmkg.graph import ontology_graph, study_graph
from mmkg.loader import read_study, validate
from mmkg.store import neo4j_store

pytestmark = pytest.mark.neo4j

INTERNAL = {"staged nodes": "MATCH (n:MmkgStaging) RETURN count(n) AS n",
            "retired nodes": "MATCH (n:MmkgRetired) RETURN count(n) AS n",
            "load markers": "MATCH (n:MmkgLoad) RETURN count(n) AS n",
            "leases": "MATCH (n:MmkgLease) RETURN count(n) AS n",
            "segments without a source": "MATCH (n:Segment) WHERE NOT EXISTS { (:Source)-[:HAS_SEGMENT]->(n) } "
                                         "RETURN count(n) AS n",
            "staged labels": "MATCH (n) WHERE any(l IN labels(n) WHERE l STARTS WITH 'Staged') RETURN count(n) AS n"}


def leftovers(kg) -> dict[str, int]:
    """What loads and deletes leave behind (all zero when nothing is in progress)."""
    return {what: int(kg.cypher(cypher)["n"].iloc[0]) for what, cypher in INTERNAL.items()}


NOTHING_LEFT = {what: 0 for what in INTERNAL}


@pytest.fixture
def neo4j_kg(tmp_path):
    graph = open_backend("neo4j", tmp_path)
    yield graph
    graph.close()


@pytest.fixture
def founding_neo4j(neo4j_kg):
    neo4j_kg.load()
    return neo4j_kg


def other_reader() -> mmkg.Mmkg:
    """A second client with its own driver and connections, as another process would have."""
    return mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=True)


@pytest.fixture
def small_founding(neo4j_kg):
    """The store with a small study under the founding study's id: the version the shipped one replaces."""
    neo4j_kg.load(MINI_STUDY, study_id="founding")
    return neo4j_kg


def shipped():
    return read_study(None)


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts, every missing value None (NaN never equals itself)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def visible(kg) -> tuple:
    """What a reader of the founding study sees through the named queries."""
    return (records(kg.query("studies")), records(kg.query("codings", study_id="founding")),
            records(kg.query("participants", study_id="*")))


# ------------------------------------------------------------------------------------------ staged loads
def test_a_reader_sees_the_old_version_until_the_switch_and_the_new_one_after(small_founding, monkeypatch):
    monkeypatch.setattr(neo4j_store, "BATCH_ROWS", 40)  # many staging transactions
    reader = other_reader()
    old = visible(reader)
    seen: list[tuple[str, bool, int]] = []

    def progress(step: str, done: int, total: int) -> None:
        if step.startswith(("staged", "switched")):
            seen.append((step, visible(reader) == old, leftovers(reader)["staged nodes"]))

    try:
        small_founding.load_tables(shipped(), progress=progress)
        new = visible(reader)
    finally:
        reader.close()
    staged = [s for s in seen if s[0].startswith("staged")]
    assert len(staged) >= 10, seen
    assert all(old_visible for _, old_visible, _ in staged), [s for s in staged if not s[1]]
    assert max(n for _, _, n in staged) > 0  # the staging was committed, batch by batch, yet invisible
    assert seen[-1][0].startswith("switched") and not seen[-1][1]
    assert new != old and [s["study_id"] for s in new[0]] == ["founding"]
    assert new[0][0]["participants"] == 15
    assert leftovers(small_founding) == NOTHING_LEFT


def test_a_load_that_fails_halfway_leaves_the_graph_as_it_was_and_no_staging(small_founding, monkeypatch):
    monkeypatch.setattr(neo4j_store, "BATCH_ROWS", 40)
    before = snapshot(small_founding)
    staged = []

    def interrupt(step: str, done: int, total: int) -> None:
        if step.startswith("staged"):
            staged.append(step)
            if len(staged) == 6:
                raise KeyboardInterrupt("the user pressed Ctrl-C")

    with pytest.raises(KeyboardInterrupt):
        small_founding.load_tables(shipped(), progress=interrupt)
    assert snapshot(small_founding) == before
    assert leftovers(small_founding) == NOTHING_LEFT


def test_the_next_write_removes_staging_that_a_dead_client_left(small_founding, monkeypatch):
    """A client whose connections drop mid-load (here: its driver is closed from another thread while it
    stages) leaves committed staging behind; the next load sees the lease free and removes it."""
    monkeypatch.setattr(neo4j_store, "BATCH_ROWS", 40)
    before = snapshot(small_founding)
    doomed = mmkg.open_store(neo4j_uri=NEO4J_URI)
    staged = []

    def die(step: str, done: int, total: int) -> None:
        if step.startswith("staged"):
            staged.append(step)
            if len(staged) == 5:
                doomed.store._driver.close()  # every connection of this client goes, as if its process died

    with pytest.raises(MmkgError):
        doomed.load_tables(shipped(), progress=die)
    left = leftovers(small_founding)
    assert left["staged nodes"] > 0 and left["load markers"] == 1, left
    assert snapshot(small_founding) == before
    small_founding.load(MINI_STUDY)  # the next write
    assert leftovers(small_founding) == NOTHING_LEFT
    small_founding.delete_study("mini")
    assert snapshot(small_founding) == before


def test_a_running_load_is_left_alone_by_another_writer(small_founding, monkeypatch):
    """While one load stages (its lease held), a load of another study must not sweep its staging."""
    monkeypatch.setattr(neo4j_store, "BATCH_ROWS", 40)
    other = mmkg.open_store(neo4j_uri=NEO4J_URI)
    results: list = []

    def meanwhile(step: str, done: int, total: int) -> None:
        if step.startswith("staged") and not results:
            try:
                results.append(other.load(MINI_STUDY).study_id)
            except MmkgError as exc:  # pragma: no cover - reported below
                results.append(exc)

    try:
        small_founding.load_tables(shipped(), progress=meanwhile)
    finally:
        other.close()
    assert results == ["mini"]
    assert small_founding.study_ids() == ["founding", "mini"]
    assert small_founding.query("studies")["participants"].tolist() == [15, len(read_study(MINI_STUDY).participants)]
    assert leftovers(small_founding) == NOTHING_LEFT


def test_deleting_a_study_is_one_switch_and_leaves_nothing_behind(founding_neo4j):
    before = snapshot(founding_neo4j)
    founding_neo4j.load(MINI_STUDY)
    founding_neo4j.delete_study("mini")
    assert snapshot(founding_neo4j) == before
    assert leftovers(founding_neo4j) == NOTHING_LEFT


def test_batches_are_bounded_by_rows_and_by_bytes(neo4j_kg, monkeypatch):
    """Segments with long texts: a batch holds at most BATCH_BYTES of text (measured as UTF-8 here),
    at most BATCH_ROWS rows, and the texts arrive whole."""
    monkeypatch.setattr(neo4j_store, "BATCH_ROWS", 500)
    monkeypatch.setattr(neo4j_store, "BATCH_BYTES", 256 * 1024)
    rows = study_graph(validate(read_study(None)))
    segments = rows.nodes["Segment"].copy()
    segments["text"] = [f"{i} " + "ü" * (2_000 + 37 * (i % 100)) for i in range(len(segments))]
    rows.nodes["Segment"] = segments
    plan = neo4j_kg.store._plan("check", rows)
    bulk = [b for b in plan if b.children is not None]
    assert sum(b.rows for b in bulk) == len(segments) and sum(b.children for b in bulk) == len(rows.rels["CODED_AS"])
    assert len(bulk) > len(segments) * 4_000 / (256 * 1024)  # split by bytes, not only by rows
    for batch in plan:
        assert batch.rows <= 500
        text = sum(len(t.encode("utf-8")) for t in batch.params.get("text", []) if t)
        assert batch.rows == 1 or text <= 256 * 1024, (batch.what, batch.rows, text)
    neo4j_kg.store.replace_study("founding", rows, ontology_graph())
    stored = neo4j_kg.cypher("MATCH (:Source)-[:HAS_SEGMENT]->(g:Segment) RETURN g.uid AS uid, g.text AS text")
    assert dict(zip(stored["uid"], stored["text"])) == dict(zip(segments["uid"], segments["text"]))


def test_no_transaction_of_a_large_load_grows_with_the_study(neo4j_kg, tmp_path):
    """Watch Neo4j's own accounting (SHOW TRANSACTIONS, which includes a transaction's COMMIT) while 10^5
    codings load in 10+ staged batches: no transaction reaches half the test server's 256 MiB per-transaction
    limit (a batch of 10^4 segments peaks near 90 MiB while it commits; one transaction for all would need
    about ten times that)."""
    from mmkg.synthetic import synthetic_codings

    path = tmp_path / "codings.csv"
    synthetic_codings(100_000).to_csv(path, index=False)
    neo4j_kg.load()
    peak, done = [0, ""], threading.Event()
    watcher = mmkg.open_store(neo4j_uri=NEO4J_URI)

    def watch() -> None:
        while not done.is_set():
            frame = watcher.store.execute_read("SHOW TRANSACTIONS YIELD estimatedUsedHeapMemory AS bytes, "
                                               "currentQuery AS query RETURN bytes, query")
            for bytes_used, query in zip(frame["bytes"], frame["query"]):
                if (bytes_used or 0) > peak[0]:
                    peak[:] = [int(bytes_used), query[:120]]
            time.sleep(0.05)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        report = neo4j_kg.load(path)
    finally:
        done.set()
        thread.join()
        watcher.close()
    assert report.codings == 100_000 and len(read_study(path).segments) > 4 * neo4j_store.BATCH_ROWS
    assert 0 < peak[0] < 128 * 1024 * 1024, f"peak transaction memory {peak[0]:,} bytes in {peak[1]}"


# ------------------------------------------------------------------------------------------ the ontology
def test_a_load_that_brings_the_ontology_keeps_other_studies_concept_links(founding_neo4j):
    """What two racing first loads do: the second one, too, brings the ontology (it saw none). It is merged:
    no concept, and no other study's MAPS_TO link, is deleted."""
    maps_to = "MATCH (k:Code)-[m:MAPS_TO]->(c:Concept) WHERE k.study_id = 'founding' RETURN count(m) AS n"
    links, concepts = founding_neo4j.cypher(maps_to)["n"].iloc[0], founding_neo4j.cypher(
        "MATCH (c:Concept) RETURN count(c) AS n")["n"].iloc[0]
    assert links > 0
    mini = study_graph(validate(read_study(MINI_STUDY)))
    founding_neo4j.store.replace_study("mini", mini, ontology_graph())
    assert founding_neo4j.cypher(maps_to)["n"].iloc[0] == links
    assert founding_neo4j.cypher("MATCH (c:Concept) RETURN count(c) AS n")["n"].iloc[0] == concepts


def test_two_first_loads_at_once_both_keep_their_concept_links(neo4j_kg):
    """Two clients load two studies into an empty store at the same time; each decides inside its own
    write whether the ontology is there, and both studies keep every link."""
    clients = [mmkg.open_store(neo4j_uri=NEO4J_URI) for _ in range(2)]
    sources = [(None, "founding"), (None, "founding-copy")]
    errors: list[BaseException] = []

    def load(client, source, study_id) -> None:
        try:
            client.load(source, study_id=study_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(c, *s)) for c, s in zip(clients, sources)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert not errors, errors
    expected = len(study_graph(validate(read_study(None))).rels["MAPS_TO"])
    links = neo4j_kg.cypher("MATCH (k:Code)-[m:MAPS_TO]->(:Concept) RETURN k.study_id AS s, count(m) AS n ORDER BY s")
    assert links.to_dict("records") == [{"s": "founding", "n": expected}, {"s": "founding-copy", "n": expected}]
    concepts = neo4j_kg.cypher("MATCH (c:Concept) RETURN count(c) AS n")["n"].iloc[0]
    assert concepts == len(ontology_graph().nodes["Concept"])
    assert leftovers(neo4j_kg) == NOTHING_LEFT


# ------------------------------------------------------------------------------------------ lost commits
@pytest.mark.parametrize("forward_commit", [True, False], ids=["committed", "not-committed"])
def test_a_connection_lost_during_the_switch_commit_is_resolved_by_asking_neo4j(founding_neo4j, forward_commit):
    """The connection breaks at the switch's COMMIT (a real proxy between driver and server): when Neo4j
    did commit, the load reports success; when it did not, a clear error and the old graph."""
    before = snapshot(founding_neo4j)
    port = int(NEO4J_URI.rsplit(":", 1)[1])
    with CommitCutter(port) as proxy, mmkg.open_store(neo4j_uri=proxy.uri) as client:
        proxy.arm(neo4j_store.SWITCHED.encode(), forward_commit=forward_commit)
        if forward_commit:
            report = client.load(MINI_STUDY)
            assert report.study_id == "mini" and report.codings == len(read_study(MINI_STUDY).codings)
        else:
            with pytest.raises(StoreError, match="did not commit it, so the graph is as it was"):
                client.load(MINI_STUDY)
        assert proxy.cut == ("after forwarding COMMIT" if forward_commit else "before forwarding COMMIT")
    if forward_commit:
        assert founding_neo4j.study_ids() == ["founding", "mini"]
        founding_neo4j.delete_study("mini")
    assert snapshot(founding_neo4j) == before
    founding_neo4j.load()  # a next write removes what the cut connection's load could not
    assert leftovers(founding_neo4j) == NOTHING_LEFT


def test_an_incomplete_commit_elsewhere_says_the_outcome_is_unknown():
    from neo4j.exceptions import IncompleteCommit

    error = neo4j_store._translated(IncompleteCommit("connection lost during commit"), None)
    assert isinstance(error, StoreError) and "outcome is unknown" in error.message


# ------------------------------------------------------------------------------------------ errors
def test_server_errors_become_mmkg_errors(founding_neo4j):
    with pytest.raises(QueryError, match="query failed"):
        founding_neo4j.cypher("MATCH (n:Code RETURN n")
    with pytest.raises(QueryError, match="already exists"):
        founding_neo4j.cypher("CREATE (:Study {uid: 'founding'})")  # the uid constraint
    reader = other_reader()
    reader.close()
    with pytest.raises(StoreError):
        reader.cypher("RETURN 1 AS n")  # a closed driver


def test_an_error_that_is_not_neo4js_is_raised_as_it_is():
    """(`raise _translate(exc, None)` raised TypeError for these.)"""
    error = ValueError("a bug of ours")
    assert neo4j_store._translated(error, None) is error


def test_a_schema_the_data_violates_is_a_clear_error_when_the_store_opens(neo4j_kg):
    neo4j_kg.cypher("DROP CONSTRAINT code_uid")
    neo4j_kg.cypher("CREATE (:Code {uid: 'twice'}), (:Code {uid: 'twice'})")
    with pytest.raises(StoreError, match="code_uid"):
        mmkg.open_store(neo4j_uri=NEO4J_URI)
    neo4j_kg.cypher("MATCH (k:Code {uid: 'twice'}) DETACH DELETE k")
    mmkg.open_store(neo4j_uri=NEO4J_URI).close()  # and opens again once the data is fixed


def test_obsolete_schema_is_dropped(neo4j_kg):
    """Stores made by earlier mmkg versions had a uniqueness constraint on Segment.uid, which a staged load
    cannot live with: opening the store read-write drops it."""
    neo4j_kg.cypher("CREATE CONSTRAINT segment_uid IF NOT EXISTS FOR (n:Segment) REQUIRE n.uid IS UNIQUE")
    mmkg.open_store(neo4j_uri=NEO4J_URI).close()
    names = neo4j_kg.cypher("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")["names"].iloc[0]
    assert "segment_uid" not in names and "code_uid" in names
    neo4j_kg.load()
    neo4j_kg.load()  # replacing a version: both versions' segments exist for a moment
    assert leftovers(neo4j_kg) == NOTHING_LEFT


def test_frames_keep_columns_of_an_empty_result(founding_neo4j):
    frame = founding_neo4j.cypher("MATCH (k:Code) WHERE k.id = 'none' RETURN k.id AS id, k.label AS label")
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["id", "label"] and frame.empty


REFI_WITH_REGIONS = MINI_STUDY.parent / "refi-qda" / "atlasti-8.4-refi-standard-project.qdpx"


@pytest.mark.parametrize("study_id", ["*", "founding"])
def test_key_fetches_in_their_neo4j_form_give_the_rows_of_the_row_form(founding_neo4j, study_id):
    """The co-occurrence key fetches run as one record of column lists on Neo4j; the frame must hold the rows
    (nulls, dtypes, the sources' order) that the plain row form gives as records, for every variant."""
    from mmkg.store.keys import neo4j_form, unit_statements

    founding_neo4j.load(REFI_WITH_REGIONS, study_id="atlas")  # picture regions: positions partly null
    for coders in ([], ["nobody"], ["coder1", "A"]):
        for positions in (False, True):
            for statement, params in unit_statements(study_id, coders, positions, width=1 << 20):  # keys packed
                assert neo4j_form(statement) is not None
                listed = founding_neo4j.store.execute(statement, params)
                as_records = founding_neo4j.store.execute_read(statement, params)
                assert list(listed.columns) == list(as_records.columns)
                if "ORDER BY" not in statement:
                    listed, as_records = (f.sort_values(list(f.columns), ignore_index=True)
                                          for f in (listed, as_records))
                pd.testing.assert_frame_equal(listed, as_records, obj=statement)
    segments = founding_neo4j.store.execute(*unit_statements(study_id, [], True)[-1])  # the positions fetch
    assert len(segments) > 100 and segments["start"].notna().any()


def test_a_key_fetch_runs_in_a_read_transaction(founding_neo4j, monkeypatch):
    from mmkg.store.keys import unit_statements

    modes = []
    real = founding_neo4j.store._session
    monkeypatch.setattr(founding_neo4j.store, "_session", lambda read=False: modes.append(read) or real(read))
    founding_neo4j.cypher(*unit_statements("founding", [], False)[0])
    founding_neo4j.cypher("MATCH (k:Code) RETURN count(k) AS n")
    assert modes == [True, False]
