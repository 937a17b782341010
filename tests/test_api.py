"""The HTTP API in process (FastAPI TestClient) on a real embedded store holding the shipped study."""
from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

import mmkg
from mmkg.config import Settings
from mmkg.queries import registry
from mmkg.server.app import create_app

MINI_STUDY = Path(__file__).resolve().parent / "data" / "mini_study"
TOKEN = "test-upload-token"
LOCAL = "http://127.0.0.1"  # the server answers only for loopback host names by default


def settings(store: Path, **overrides) -> Settings:
    values = dict(store=store, upload_token=None, max_upload_bytes=5_000_000, cypher_timeout_s=10.0,
                  cypher_max_rows=10_000)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(founding_store):
    app = create_app(settings(founding_store))
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


@pytest.fixture
def upload_client(founding_store):
    app = create_app(settings(founding_store, upload_token=SecretStr(TOKEN), max_upload_bytes=200_000))
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def assert_error(response, status: int, kind: str) -> dict:
    """The one error shape: exactly {"error": {"kind", "message", "details"}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"kind", "message", "details"}
    assert body["error"]["kind"] == kind
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return body["error"]


def counts(store: Path) -> tuple[int, int]:
    with mmkg.open_store(store, read_only=True) as kg:
        nodes = int(kg.cypher("MATCH (n) RETURN count(n) AS n")["n"].iloc[0])
        rels = int(kg.cypher("MATCH ()-[r]->() RETURN count(r) AS n")["n"].iloc[0])
    return nodes, rels


# ------------------------------------------------------------------------------------------ error shape

def test_every_error_status_has_the_one_json_shape(client, founding_store, tmp_path):
    assert "founding" in assert_error(client.get("/api/studies/nope"), 404, "not_found")["message"]
    assert_error(client.get("/no/such/route"), 404, "not_found")
    assert "cooccurrence" in assert_error(client.get("/api/queries/no_such_query"), 404, "not_found")["message"] \
        or "known" in client.get("/api/queries/no_such_query").json()["error"]["message"]
    details = assert_error(client.get("/api/concepts", params={"kind": "dragon"}), 422, "invalid_request")["details"]
    assert any("kind" in d for d in details)
    assert_error(client.post("/api/cypher", json={}), 422, "invalid_request")
    assert_error(client.post("/api/cypher", json={"cypher": "MATCH (n RETURN n"}), 400, "query_refused")
    assert_error(client.delete("/api/studies"), 405, "method_not_allowed")
    # 503: a store that is not there (real path, real EmbeddedStore)
    with TestClient(create_app(settings(tmp_path / "missing")), base_url=LOCAL) as broken:
        assert "no mmkg store here yet" in assert_error(broken.get("/api/studies"), 503,
                                                        "store_unavailable")["message"]


def test_too_large_upload_is_413_in_the_same_shape(upload_client):
    response = upload_client.post("/api/studies", params={"filename": "big.zip"}, content=b"x" * 200_001,
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert "200,000" in assert_error(response, 413, "too_large")["message"]


# ------------------------------------------------------------------------------------------ resources

def test_studies_participants_codes_and_concepts(client):
    studies = client.get("/api/studies").json()
    assert [s["study_id"] for s in studies] == ["founding"]
    assert "not the authors' data" in studies[0]["provenance"]
    assert client.get("/api/studies/founding").json()["participants"] == 15

    people = client.get("/api/studies/founding/participants").json()
    assert len(people) == 15 and people[0]["participant_id"] == "P1"
    table1 = pd.read_csv(Path(mmkg.__file__).parent.parent / "studies" / "founding" / "participants.csv")
    expected = dict(zip(table1["participant_id"], table1["works_in_security"]))
    assert {p["participant_id"]: p["attributes"]["works_in_security"] for p in people} == expected
    assert isinstance(people[0]["attributes"]["experience_years"], float)
    assert_error(client.get("/api/studies/nope/participants"), 404, "not_found")

    codes = client.get("/api/studies/founding/codes").json()
    stealing = next(c for c in codes if c["codebook"] == "interview" and c["code_id"] == "A.3")
    expected = {"concept": "ModelStealing", "kind": "aml_threat", "match": "exact"}
    assert expected.items() <= stealing["concepts"][0].items()

    threats = client.get("/api/concepts", params={"kind": "aml_threat"}).json()
    assert threats and {c["kind"] for c in threats} == {"aml_threat"}
    concept = client.get("/api/concepts/ModelStealing").json()
    assert "AML.T0024.002" in {x["external_id"] for x in concept["external_ids"]}
    assert ("founding", "interview", "A.3") in {(c["study_id"], c["codebook"], c["code_id"]) for c in concept["codes"]}
    assert_error(client.get("/api/concepts/Dragon"), 404, "not_found")


# ------------------------------------------------------------------------------------------ named queries

def test_every_read_query_is_listed_with_its_parameters_and_documented(client):
    listed = {q["name"]: q for q in client.get("/api/queries").json()}
    expected = {name for name, q in registry().items() if q.mode == "read"}
    assert set(listed) == expected
    spec = client.get("/openapi.json").json()
    openapi_types = {"STRING": "string", "INTEGER": "integer", "FLOAT": "number", "BOOLEAN": "boolean"}
    for name in expected:
        declared = registry()[name].parameters
        assert [p["name"] for p in listed[name]["parameters"]] == [p.name for p in declared]
        documented = {p["name"]: p for p in spec["paths"][f"/api/queries/{name}"]["get"]["parameters"]}
        for p in declared:
            schema = documented[p.name]["schema"]
            types = {s.get("type") for s in schema.get("anyOf", [schema])}
            assert openapi_types[p.type] in types, (name, p.name, schema)


@pytest.mark.slow
def test_named_query_as_json_and_csv_matches_the_python_api(client, founding_store):
    body = client.get("/api/queries/codes", params={"study_id": "founding"}).json()
    csv_by_param = client.get("/api/queries/codes", params={"format": "csv"})
    csv_by_accept = client.get("/api/queries/codes", headers={"Accept": "text/csv"})
    client.app.state.holder.close()
    with mmkg.open_store(founding_store, read_only=True) as kg:
        expected = kg.query("codes", study_id="founding")
    assert body["query"] == "codes" and body["parameters"] == {"study_id": "founding"}
    assert body["columns"] == list(expected.columns)
    assert len(body["rows"]) == len(expected)
    assert [r["code_id"] for r in body["rows"]] == expected["code_id"].tolist()
    for response in (csv_by_param, csv_by_accept):
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text == expected.to_csv(index=False, lineterminator="\n")


def test_query_parameters_are_typed(client):
    spec = client.get("/openapi.json").json()
    integer_params = [(name, p.name) for name, q in registry().items() for p in q.parameters if p.type == "INTEGER"]
    assert integer_params, "the query library declares INTEGER parameters (cooccurrence's min_count …)"
    name, param = integer_params[0]
    assert f"/api/queries/{name}" in spec["paths"]
    assert_error(client.get(f"/api/queries/{name}", params={param: "many"}), 422, "invalid_request")


# ------------------------------------------------------------------------------------------ ad-hoc Cypher

WRITES = {
    "CREATE": "CREATE (:Coder {uid: 'intruder', study_id: 'founding', id: 'intruder'})",
    "MERGE": "MERGE (c:Coder {uid: 'intruder'}) RETURN c.uid",
    "SET": "MATCH (c:Code) SET c.label = 'overwritten' RETURN count(c)",
    "DELETE": "MATCH (c:Coder) DETACH DELETE c",
    "CALL_SUBQUERY": "MATCH (c:Coder) CALL { CREATE (:Coder {uid: 'from-call'}) } RETURN c.uid",
    "CALL_WITH_SUBQUERY": "MATCH (c:Code) WITH c CALL { WITH c SET c.label = 'x' } RETURN count(*)",
    "DDL": "CREATE NODE TABLE Intruder(id STRING, PRIMARY KEY(id))",
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(WRITES))
def test_cypher_writes_are_refused_and_the_store_is_unchanged(founding_store, kind):
    before = counts(founding_store)
    with TestClient(create_app(settings(founding_store)), base_url=LOCAL) as client:
        assert_error(client.post("/api/cypher", json={"cypher": WRITES[kind]}), 400, "query_refused")
        after_label = client.post("/api/cypher", json={"cypher": "MATCH (c:Code) WHERE c.label = 'overwritten' "
                                                                 "RETURN count(c) AS n"}).json()
    assert after_label["rows"] == [{"n": 0}]
    assert counts(founding_store) == before


@pytest.mark.slow
def test_cypher_reads_with_row_and_time_limits(client):
    body = client.post("/api/cypher", json={"cypher": "MATCH (k:Code) RETURN k.id AS id ORDER BY id",
                                            "max_rows": 5}).json()
    assert body["row_count"] == 5 and body["truncated"] is True and len(body["rows"]) == 5
    everything = client.post("/api/cypher", json={"cypher": "MATCH (k:Code) RETURN count(k) AS n"}).json()
    assert everything["truncated"] is False and everything["rows"][0]["n"] == 121
    params = client.post("/api/cypher", json={"cypher": "MATCH (p:Participant) WHERE p.id = $id RETURN p.id AS id",
                                              "parameters": {"id": "P4"}}).json()
    assert params["rows"] == [{"id": "P4"}]
    started = time.perf_counter()
    # ~17 s without a limit (762³ segment triples)
    slow = client.post("/api/cypher", json={"cypher": "MATCH (a:Segment), (b:Segment), (c:Segment) "
                                                      "WHERE a.id + b.id + c.id = 'x' RETURN count(*)",
                                            "timeout_s": 0.3})
    assert "time limit" in assert_error(slow, 400, "query_limit")["message"]
    assert time.perf_counter() - started < 5


def test_cypher_may_not_touch_files(client, tmp_path):
    target = tmp_path / "leak.csv"
    response = client.post("/api/cypher", json={"cypher": f"COPY (MATCH (c:Code) RETURN c.id) TO '{target}'"})
    assert "COPY" in assert_error(response, 400, "query_refused")["message"]
    assert not target.exists()


# ------------------------------------------------------------------------------------------ uploads

def zipped_folder(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, prefix + path.name)
    return buffer.getvalue()


def test_uploads_are_off_without_a_token(client):
    response = client.post("/api/studies", params={"filename": "s.zip"}, content=zipped_folder(MINI_STUDY),
                           headers={"Authorization": "Bearer anything"})
    assert_error(response, 403, "uploads_disabled")


@pytest.mark.slow
def test_upload_needs_the_bearer_token(upload_client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = upload_client.post("/api/studies", params={"filename": "s.zip"},
                                      content=zipped_folder(MINI_STUDY), headers=headers)
        assert_error(response, 401, "unauthorized")
    assert [s["study_id"] for s in upload_client.get("/api/studies").json()] == ["founding"]


@pytest.mark.slow
def test_upload_a_zipped_study_folder_loads_it(upload_client, founding_store):
    assert len(upload_client.get("/api/studies").json()) == 1  # cached before the upload
    response = upload_client.post("/api/studies", params={"filename": "mini.zip"},
                                  content=zipped_folder(MINI_STUDY, prefix="mini_study/"),
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 201, response.text
    assert response.json()["study_id"] == "mini"
    assert {s["study_id"] for s in upload_client.get("/api/studies").json()} == {"founding", "mini"}
    assert len(upload_client.get("/api/studies/mini/participants").json()) == 3
    refused = upload_client.post("/api/cypher", json={"cypher": "MATCH (c:Coder) DETACH DELETE c"})
    assert_error(refused, 400, "query_refused")  # read-only again after the load


def test_upload_refuses_zip_slip_and_broken_studies_without_writing(upload_client, founding_store, tmp_path):
    before = upload_client.get("/api/studies").json()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../escaped.txt", "x")
        archive.writestr("study.json", "{}")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = upload_client.post("/api/studies", params={"filename": "evil.zip"}, content=buffer.getvalue(),
                                  headers=headers)
    assert_error(response, 400, "load_error")
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        for path in MINI_STUDY.iterdir():
            text = path.read_text() if path.name != "codings.csv" else "segment_id,codebook,code_id,coder\nNOPE,x,y,z\n"
            archive.writestr(path.name, text)
    response = upload_client.post("/api/studies", params={"filename": "broken.zip"}, content=broken.getvalue(),
                                  headers=headers)
    assert response.status_code in (400, 422) and set(response.json()) == {"error"}
    assert_error(upload_client.post("/api/studies", params={"filename": "notes.txt"}, content=b"hi", headers=headers),
                 400, "load_error")
    assert upload_client.get("/api/studies").json() == before


# ------------------------------------------------------------------------------------------ views

OFFLINE_FORBIDDEN = ("cdn.", "cdnjs", "jsdelivr", "unpkg", "bootstrap", "googleapis")


def assert_offline_page(html: str) -> None:
    lowered = html.lower()
    for needle in OFFLINE_FORBIDDEN:
        assert needle not in lowered, needle
    # same-origin assets only
    assert not re.search(r"<script src=\"(?!/static/)|<link rel=\"stylesheet\" href=\"(?!/static/)", lowered)
    assert "not the authors" in html  # the provenance line


def test_index_page_links_views_and_queries(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert_offline_page(response.text)
    for href in ("/views/cooccurrence", "/views/threat-map", "/views/comparison", "/views/participants/P1",
                 "/api/queries/codes", "/docs"):
        assert f'href="{href}' in response.text


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/views/cooccurrence", "/views/cooccurrence?unit=segment&metric=jaccard",
                                  "/views/threat-map", "/views/participants/P1", "/views/comparison"])
def test_views_are_offline_pages_with_provenance(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert_offline_page(response.text)
    assert 'class="network"' in response.text


@pytest.mark.parametrize("path", ["/api/queries/codes?study_id=founding", "/api/studies",
                                  "/views/cooccurrence?study_id=founding"])
def test_a_bug_below_a_route_is_an_internal_error_not_a_query_error(founding_store, monkeypatch, path):
    """An exception mmkg did not raise on purpose is a 500 `internal_error` in the one shape, never a 400 the
    client is blamed for (no catch-all may turn bugs into `query_error`)."""
    from mmkg.store.embedded import EmbeddedStore

    def bug(self, *args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    with TestClient(create_app(settings(founding_store)), base_url=LOCAL, raise_server_exceptions=False) as c:
        assert c.get(path).status_code == 200  # the route works before the fault is injected
        monkeypatch.setattr(EmbeddedStore, "execute", bug)
        monkeypatch.setattr(EmbeddedStore, "execute_read", bug)
        uncached = path + ("&" if "?" in path else "?") + "bust=1"  # a parameter no route declares: not cached
        body = assert_error(c.get(uncached), 500, "internal_error")
    assert "TypeError" in body["message"] and "unsupported operand" not in body["message"]


def test_view_errors_use_the_error_shape(client):
    assert_error(client.get("/views/participants/P99"), 404, "not_found")
    assert_error(client.get("/views/cooccurrence", params={"study_id": "nope"}), 404, "not_found")
    assert_error(client.get("/views/cooccurrence", params={"metric": "vibes"}), 422, "invalid_request")


def test_large_network_renders_server_side_within_a_second():
    from mmkg.server.views import build_network, render_page

    nodes = [{"id": f"n{i}", "label": f"code {i}", "value": i % 17 + 1, "title": f"code {i}"} for i in range(2000)]
    edges = [{"from": f"n{i % 2000}", "to": f"n{(i * 7 + 1) % 2000}", "value": 1.0, "title": f"n_ab = {i}"}
             for i in range(20000)]
    started = time.perf_counter()
    net = build_network(nodes, edges, heading="large")
    html = render_page("large", [net])
    seconds = time.perf_counter() - started
    assert seconds <= 1.0, f"rendering took {seconds:.2f} s"
    data = json.loads(html.split('id="network-0-data">', 1)[1].split("</script>", 1)[0])
    assert len(data["nodes"]) == 2000 and len(data["edges"]) == 20000


def test_query_results_carry_the_provenance_of_their_studies(client):
    body = client.get("/api/queries/cooccurrence", params={"study_id": "founding"}).json()
    assert "not the authors' data" in body["provenance"]["founding"]
    concepts = client.get("/api/queries/concepts", params={"study_id": "founding"}).json()
    assert set(concepts["provenance"]) == {"founding"}
