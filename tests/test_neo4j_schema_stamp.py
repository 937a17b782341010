"""A Neo4j database records the schema version its graph was written with (one `MmkgSchema` node), as the
embedded store does in its SCHEMA file: opening one of another version is refused with a message naming both
versions and what to do, an older one is upgraded in place when a migration leads to this version, and a
database from before the stamp is stamped.  Against the real Neo4j test server (skips without NEO4J_URI)."""
from __future__ import annotations

import pytest
from conftest import MINI_STUDY, NEO4J_URI, open_backend

import mmkg
from mmkg.errors import StoreError
from mmkg.schema import SCHEMA_VERSION
from mmkg.store import neo4j_store

pytestmark = pytest.mark.neo4j


@pytest.fixture
def neo4j_kg(tmp_path):
    graph = open_backend("neo4j", tmp_path)  # emptied: no stamp until a read-write open writes one
    yield graph
    graph.cypher("MATCH (s:MmkgSchema) DELETE s")  # the next test's read-write open must not meet a foreign one
    graph.close()


def stamps(kg) -> list:
    return kg.cypher("MATCH (s:MmkgSchema) RETURN s.version AS version")["version"].tolist()


def set_stamp(kg, version) -> None:
    kg.cypher("MATCH (s:MmkgSchema) DELETE s")
    kg.cypher("CREATE (:MmkgSchema {version: $version})", {"version": version})


def test_a_read_write_open_stamps_the_database(neo4j_kg):
    assert stamps(neo4j_kg) == []  # emptied by the fixture
    mmkg.open_store(neo4j_uri=NEO4J_URI).close()
    assert stamps(neo4j_kg) == [SCHEMA_VERSION]
    mmkg.open_store(neo4j_uri=NEO4J_URI).close()
    assert stamps(neo4j_kg) == [SCHEMA_VERSION], "one stamp, however often the database opens"


def test_a_database_from_before_the_stamp_opens_and_is_stamped(neo4j_kg):
    neo4j_kg.load(MINI_STUDY)
    neo4j_kg.cypher("MATCH (s:MmkgSchema) DELETE s")
    with mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=True) as reader:
        assert reader.study_ids() == ["mini"] and stamps(reader) == []  # read-only: nothing written
    mmkg.open_store(neo4j_uri=NEO4J_URI).close()
    assert stamps(neo4j_kg) == [SCHEMA_VERSION]


@pytest.mark.parametrize("read_only", [True, False])
def test_a_newer_database_is_refused_naming_both_versions(neo4j_kg, read_only):
    neo4j_kg.load(MINI_STUDY)
    set_stamp(neo4j_kg, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError) as refused:
        mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=read_only)
    message = refused.value.message
    assert f"schema version {SCHEMA_VERSION + 1}" in message and f"knows version {SCHEMA_VERSION}" in message
    assert "newer mmkg" in message and "upgrade mmkg" in message and NEO4J_URI in message
    assert stamps(neo4j_kg) == [SCHEMA_VERSION + 1] and neo4j_kg.study_ids() == ["mini"], "nothing changed"


def test_an_older_database_without_a_migration_is_refused_and_left_alone(neo4j_kg):
    unreachable = min(neo4j_store.MIGRATIONS, default=SCHEMA_VERSION) - 1  # no migration leads on from it
    neo4j_kg.load(MINI_STUDY)
    set_stamp(neo4j_kg, unreachable)
    with pytest.raises(StoreError) as refused:
        mmkg.open_store(neo4j_uri=NEO4J_URI)
    message = refused.value.message
    assert f"older mmkg (schema version {unreachable}; this mmkg has version {SCHEMA_VERSION})" in message
    assert "Nothing was changed" in message and "mmkg load SOURCE --neo4j URI" in message and "1 study" in message
    assert stamps(neo4j_kg) == [unreachable] and neo4j_kg.study_ids() == ["mini"]


@pytest.fixture
def migration():
    """A migration from the version before this one, registered for the test only: it marks every code."""
    def mark_codes(store) -> None:
        store.execute("MATCH (k:Code) SET k.migrated = true")

    step = SCHEMA_VERSION - 1
    registered = neo4j_store.MIGRATIONS.get(step)
    neo4j_store.MIGRATIONS[step] = mark_codes
    yield
    if registered is None:
        neo4j_store.MIGRATIONS.pop(step)
    else:
        neo4j_store.MIGRATIONS[step] = registered


def test_an_older_database_is_upgraded_in_place_when_opened_read_write(neo4j_kg, migration):
    neo4j_kg.load(MINI_STUDY)
    set_stamp(neo4j_kg, SCHEMA_VERSION - 1)
    with pytest.raises(StoreError, match="open it read-write once to upgrade it in place"):
        mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=True)
    assert stamps(neo4j_kg) == [SCHEMA_VERSION - 1]
    with mmkg.open_store(neo4j_uri=NEO4J_URI) as upgraded:
        marked = upgraded.cypher("MATCH (k:Code) RETURN count(k) AS n, count(k.migrated) AS marked")
        assert marked["n"].iloc[0] == marked["marked"].iloc[0] == 7
    assert stamps(neo4j_kg) == [SCHEMA_VERSION]
    with mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=True) as reader:
        assert reader.study_ids() == ["mini"]


def test_a_stamp_that_is_no_version_is_a_clear_error(neo4j_kg):
    set_stamp(neo4j_kg, "one")
    with pytest.raises(StoreError, match="MmkgSchema node of Neo4j holds no schema version"):
        mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=True)


def test_the_stamp_statements_are_the_stores_own():
    assert set(neo4j_store.SCHEMA_STAMP_STATEMENTS) <= set(neo4j_store.statements())
