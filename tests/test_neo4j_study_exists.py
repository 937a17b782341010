"""A load that must not replace a study (`mmkg load` without --replace) refuses an existing id inside its
own write on Neo4j: the check before the load and the write are separate transactions, so two loads of one
id could both pass the check; the switch transaction repeats it, and the uniqueness of `Study.uid` fails
the later of two switches that overlap.  Against the real Neo4j test server."""
from __future__ import annotations

import threading
import time

import pytest
from conftest import MINI_STUDY, NEO4J_URI, open_backend
from test_neo4j import snapshot
from test_neo4j_store import NOTHING_LEFT, leftovers

import mmkg
from mmkg.errors import StoreError, StudyExistsError
from mmkg.graph import study_graph
from mmkg.loader import read_study, validate
from mmkg.synthetic import synthetic_codings

pytestmark = pytest.mark.neo4j


@pytest.fixture
def neo4j_kg(tmp_path):
    graph = open_backend("neo4j", tmp_path)
    yield graph
    graph.close()


def mini_rows():
    return study_graph(validate(read_study(MINI_STUDY, study_id="mini")))


def studies(kg) -> list[str]:
    return kg.cypher("MATCH (s:Study) RETURN s.uid AS uid ORDER BY uid")["uid"].tolist()


def test_writing_a_new_study_refuses_an_id_the_store_holds_and_changes_nothing(neo4j_kg):
    neo4j_kg.load(MINI_STUDY, study_id="mini")
    before = snapshot(neo4j_kg)
    with pytest.raises(StudyExistsError, match="'mini' is in the store already"):
        neo4j_kg.store.write_new_study("mini", mini_rows())
    assert snapshot(neo4j_kg) == before
    assert leftovers(neo4j_kg) == NOTHING_LEFT


def blocked_transactions(kg) -> int:
    frame = kg.cypher("SHOW TRANSACTIONS YIELD status RETURN status")
    return sum(str(status).startswith("Blocked") for status in frame["status"])


@pytest.mark.parametrize("new", [True, False], ids=["new-study", "replace"])
def test_a_switch_that_overlaps_another_writers_switch_of_the_same_id_writes_nothing(neo4j_kg, new):
    """Another writer has written the study in a transaction it has not committed yet (as a concurrent
    load's switch would have): this load's switch cannot see it, waits for its uid, and once the other
    commits, fails without writing anything."""
    rows = mini_rows()
    other = mmkg.open_store(neo4j_uri=NEO4J_URI)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            write = neo4j_kg.store.write_new_study if new else neo4j_kg.store.replace_study
            write("mini", rows)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    try:
        with other.store._session() as session:
            transaction = session.begin_transaction()
            transaction.run("CREATE (:Study {uid: 'mini', id: 'mini', study_id: 'mini', title: 'the other load'})")
            writer = threading.Thread(target=load)
            writer.start()
            deadline = time.monotonic() + 60
            while not blocked_transactions(other) and writer.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert blocked_transactions(other) == 1, "the load's switch should wait for the other writer's uid"
            transaction.commit()
            writer.join(60)
    finally:
        other.close()
    assert len(errors) == 1
    if new:
        assert isinstance(errors[0], StudyExistsError), errors
    else:
        assert isinstance(errors[0], StoreError) and "another load of study mini" in str(errors[0]), errors
    assert neo4j_kg.cypher("MATCH (s:Study) RETURN s.title AS title")["title"].tolist() == ["the other load"]
    assert neo4j_kg.cypher("MATCH (p:Participant) RETURN count(p) AS n")["n"].iloc[0] == 0
    assert leftovers(neo4j_kg) == NOTHING_LEFT


def test_two_loads_of_one_new_id_at_once_write_it_once(neo4j_kg, tmp_path):
    """`mmkg load` without --replace from two clients at the same moment: one writes, the other is refused."""
    codings = tmp_path / "race.csv"
    synthetic_codings(3_000, study_id="race").to_csv(codings, index=False)
    neo4j_kg.load()  # the ontology is there, as in a store in use
    clients = [mmkg.open_store(neo4j_uri=NEO4J_URI) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def load(client) -> None:
        start.wait()
        try:
            outcomes.append(client.load(codings, replace=False).codings)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcomes.append(exc)

    threads = [threading.Thread(target=load, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for client in clients:
        client.close()
    refused = [o for o in outcomes if isinstance(o, StudyExistsError)]
    written = [o for o in outcomes if isinstance(o, int)]
    assert len(refused) == 1 and written == [3_000], outcomes
    assert studies(neo4j_kg) == ["founding", "race"]
    assert neo4j_kg.query("studies").set_index("study_id").loc["race", "codings"] == 3_000
    assert leftovers(neo4j_kg) == NOTHING_LEFT
