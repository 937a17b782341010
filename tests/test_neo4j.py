"""Load, query and API on every store: the embedded LadybugDB always, Neo4j where NEO4J_URI is set.

`pytest -m neo4j` runs the Neo4j half (start one with `docker compose up -d neo4j`, then export NEO4J_URI,
NEO4J_USER, NEO4J_PASSWORD; see docs/neo4j.md); without NEO4J_URI it skips with that reason.  The Neo4j
tier empties its database before every test.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import MINI_STUDY, NEO4J_URI, open_backend
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import mmkg
from mmkg.cli.main import app
from mmkg.config import Settings
from mmkg.errors import MmkgError, QueryError
from mmkg.graph import ontology_graph, study_graph
from mmkg.loader import read_study, validate
from mmkg.schema import NODES, RELS

NEO4J_ONLY = [pytest.param("neo4j", marks=pytest.mark.neo4j)]
SLOW_READ = "MATCH (a:Segment), (b:Segment), (c:Segment) WHERE a.id < b.id AND b.id < c.id RETURN count(*) AS n"


def snapshot(kg) -> dict[str, object]:
    """Every label's sorted uids and every relationship type's sorted (from, to, properties) rows."""
    state: dict[str, object] = {}
    for node in NODES:
        state[node.label] = kg.cypher(f"MATCH (n:{node.label}) RETURN n.uid AS uid ORDER BY uid")["uid"].tolist()
    for rel in RELS:
        props = "".join(f", r.{p} AS {p}" for p, _ in rel.properties)
        frame = kg.cypher(f"MATCH (a:{rel.source})-[r:{rel.type}]->(b:{rel.target}) "
                          f"RETURN a.uid AS source, b.uid AS target{props}")
        state[rel.type] = sorted(tuple(_cell(v) for v in row) for row in frame.itertuples(index=False))
    return state


def _cell(value):
    """One comparable value: numbers as rounded floats, lists sorted, every kind of missing as None."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(sorted((_cell(v) for v in value), key=repr))
    if isinstance(value, dict):
        return tuple(sorted((k, _cell(v)) for k, v in value.items() if not k.startswith("_")))
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return round(float(value), 9)
    return value


def normal(frame: pd.DataFrame) -> tuple[list[str], list[tuple]]:
    rows = [tuple(_cell(v) for v in row) for row in frame.itertuples(index=False)]
    return [str(c) for c in frame.columns], sorted(rows, key=repr)


def reopen_read_only(backend: str, kg, tmp_path):
    """The same graph opened read-only (LadybugDB allows one read-write opener per folder)."""
    kg.close()
    if backend == "ladybug":
        return mmkg.open_store(tmp_path / "store", read_only=True)
    return mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=True)


# ------------------------------------------------------------------------------------------ load
@pytest.mark.slow
def test_load_writes_every_row_and_loading_again_changes_nothing(kg):
    expected = study_graph(validate(read_study(None)))
    report = kg.load()
    assert report.counts == {name: n for name, n in expected.counts().items()}
    first = snapshot(kg)
    ontology = ontology_graph()
    for label, frame in [*expected.nodes.items(), *ontology.nodes.items()]:
        assert len(first[label]) == len(frame), label
    for rel_type, frame in [*expected.rels.items(), *ontology.rels.items()]:
        assert len(first[rel_type]) == len(frame), rel_type
    kg.load()
    assert snapshot(kg) == first


@pytest.mark.slow
def test_a_failed_load_leaves_the_graph_as_it_was(founding_kg):
    before = snapshot(founding_kg)
    rows = study_graph(validate(read_study(None)))
    coded = rows.rels["CODED_AS"].copy()
    coded.loc[len(coded) - 1, "to"] = "founding/code/interview/NO-SUCH-CODE"  # the last batch fails
    rows.rels["CODED_AS"] = coded
    with pytest.raises(MmkgError):
        founding_kg.store.replace_study("founding", rows, None)
    assert snapshot(founding_kg) == before


@pytest.mark.slow
def test_deleting_a_study_keeps_the_others_and_the_ontology(kg):
    kg.load()
    founding_only = snapshot(kg)
    kg.load(MINI_STUDY)
    assert kg.study_ids() == ["founding", "mini"]
    kg.delete_study("mini")
    assert snapshot(kg) == founding_only
    assert kg.store.has_ontology()


# ------------------------------------------------------------------------------------------ queries
@pytest.mark.slow
def test_every_named_query_gives_the_embedded_answer(founding_kg, founding_template):
    from mmkg.queries import registry

    queries = sorted(name for name, q in registry().items() if q.mode == "read")
    assert len(queries) >= 10
    with mmkg.open_store(founding_template, read_only=True) as reference:
        for name in queries:
            expected = reference.query(name)
            found = founding_kg.query(name)
            assert normal(found) == normal(expected), f"query '{name}' differs from the embedded store's answer"


# ------------------------------------------------------------------------------------------ read-only
@pytest.mark.slow
def test_read_transactions_refuse_writes_and_stop_at_the_time_limit(backend, founding_kg, tmp_path):
    before = snapshot(founding_kg)
    graph = reopen_read_only(backend, founding_kg, tmp_path)
    try:
        for write in ("MATCH (n:Code) DETACH DELETE n", "CREATE (:Study {uid: 'intruder', id: 'intruder'})",
                      "MATCH (n:Study) SET n.title = 'changed'"):
            with pytest.raises(QueryError):
                graph.store.execute_read(write, timeout_s=5)
        with pytest.raises(QueryError, match="time limit"):
            graph.store.execute_read(SLOW_READ, timeout_s=0.5)
        frame = graph.store.execute_read("MATCH (k:Code) RETURN k.id AS id ORDER BY id", max_rows=3)
        assert len(frame) == 3 and list(frame.columns) == ["id"]
        assert snapshot(graph) == before
    finally:
        graph.close()


# ------------------------------------------------------------------------------------------ API and CLI
@pytest.mark.slow
def test_the_api_serves_the_graph_and_refuses_writes(backend, tmp_path):
    graph = open_backend(backend, tmp_path)
    graph.load()
    graph.close()
    if backend == "ladybug":
        factory = lambda read_only: mmkg.open_store(tmp_path / "store", read_only=read_only)  # noqa: E731
    else:
        factory = lambda read_only: mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=read_only)  # noqa: E731
    with TestClient(mmkg_app(tmp_path, factory), base_url="http://127.0.0.1") as client:
        studies = client.get("/api/studies").json()
        assert [s["study_id"] for s in studies] == ["founding"] and "reconstruction" in studies[0]["provenance"]
        codes = client.get("/api/queries/codes").json()
        assert {("interview", "A.3"), ("interview", "C.4")} <= {(r["codebook"], r["code_id"]) for r in codes["rows"]}
        read = client.post("/api/cypher", json={"cypher": "MATCH (p:Participant) RETURN count(p) AS n"})
        assert read.status_code == 200 and read.json()["rows"] == [{"n": 15}]
        refused = client.post("/api/cypher", json={"cypher": "MATCH (n) DETACH DELETE n"})
        assert refused.status_code == 400 and refused.json()["error"]["kind"] == "query_refused"
        assert client.post("/api/cypher", json={"cypher": "MATCH (p:Participant) RETURN count(p) AS n"}
                           ).json()["rows"] == [{"n": 15}]


def mmkg_app(tmp_path, factory):
    from mmkg.server.app import create_app

    return create_app(Settings(store=tmp_path / "store"), kg_factory=factory)


@pytest.mark.slow
def test_the_cli_loads_and_lists_studies(backend, tmp_path):
    open_backend(backend, tmp_path).close()  # an empty graph
    where = ["--store", str(tmp_path / "store")] if backend == "ladybug" else ["--neo4j", NEO4J_URI]
    runner = CliRunner()
    loaded = runner.invoke(app, ["load", *where])
    assert loaded.exit_code == 0, loaded.output
    assert "Loaded study 'founding'" in loaded.output
    listed = runner.invoke(app, ["studies", *where])
    assert listed.exit_code == 0 and "founding" in listed.output


# ------------------------------------------------------------------------------------------ Neo4j only
@pytest.mark.parametrize("backend", NEO4J_ONLY)
def test_the_store_sends_only_the_statements_the_linter_checks(founding_kg):
    from mmkg.store.neo4j_store import statements

    sent = set(founding_kg.store.sent)
    assert sent and sent <= set(statements()), sorted(sent - set(statements()))


@pytest.mark.parametrize("backend", NEO4J_ONLY)
def test_the_neo4j_import_export_matches_the_embedded_one(founding_kg, founding_template, tmp_path):
    from mmkg.store.neo4j_import import export_neo4j_import

    export_neo4j_import(founding_kg, tmp_path / "from-neo4j")
    with mmkg.open_store(founding_template, read_only=True) as reference:
        export_neo4j_import(reference, tmp_path / "from-embedded")
    names = sorted(p.name for p in (tmp_path / "from-embedded").iterdir())
    assert sorted(p.name for p in (tmp_path / "from-neo4j").iterdir()) == names
    for name in names:
        lines = lambda folder: sorted((tmp_path / folder / name).read_text(encoding="utf-8").splitlines())  # noqa: E731
        assert lines("from-neo4j") == lines("from-embedded"), name


# ------------------------------------------------------------------------------------------ no server needed
def test_an_unreachable_or_malformed_neo4j_uri_is_a_clear_error():
    runner = CliRunner()
    for uri, code, words in (("bolt://127.0.0.1:1", 5, "cannot reach Neo4j at bolt://127.0.0.1:1"),
                             ("http://127.0.0.1:1", 6, "is not a Bolt URI"),
                             ("localhost:7687", 6, "is not a Bolt URI")):
        done = runner.invoke(app, ["studies", "--neo4j", uri], standalone_mode=False, catch_exceptions=True)
        assert isinstance(done.exception, MmkgError) and done.exception.exit_code == code, done.output
        assert words in done.exception.message


def test_neo4j_settings_come_from_the_environment(monkeypatch):
    from mmkg.config import Neo4jSettings

    monkeypatch.setenv("NEO4J_URI", "bolt://graph.example:7687")
    monkeypatch.setenv("NEO4J_USER", "analyst")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret-password")
    monkeypatch.setenv("NEO4J_DATABASE", "studies")
    settings = Neo4jSettings()
    assert (settings.uri, settings.user, settings.password.get_secret_value(), settings.database) == \
        ("bolt://graph.example:7687", "analyst", "s3cret-password", "studies")
    assert "s3cret" not in repr(settings)
