"""The API over real HTTP: `mmkg serve` (uvicorn) on a free loopback port."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest
from live_server import live_server

MINI_STUDY = Path(__file__).resolve().parent / "data" / "mini_study"
TOKEN = "live-token"
pytestmark = pytest.mark.slow  # starts real servers (a few seconds each)


def test_serve_on_an_empty_store_loads_the_shipped_study_then_serves(tmp_path):
    store = tmp_path / "store"
    with live_server(store) as base:
        studies = httpx.get(f"{base}/api/studies").json()
    assert [s["study_id"] for s in studies] == ["founding"] and studies[0]["codings"] > 0
    assert "loading the shipped founding study" in live_server.last_log


@pytest.fixture
def served(founding_store):
    with live_server(founding_store, env={"MMKG_UPLOAD_TOKEN": TOKEN, "MMKG_MAX_UPLOAD_BYTES": "100000"}) as base:
        yield base


def test_live_api_queries_cypher_views_and_errors(served):
    with httpx.Client(base_url=served, timeout=30) as http:
        body = http.get("/api/queries/codes").json()
        assert body["query"] == "codes" and len(body["rows"]) == 121
        csv = http.get("/api/queries/codes", headers={"Accept": "text/csv"})
        assert csv.headers["content-type"].startswith("text/csv") and csv.text.count("\n") == 122
        refused = http.post("/api/cypher", json={"cypher": "MATCH (c:Coder) DETACH DELETE c"})
        assert refused.status_code == 400 and refused.json()["error"]["kind"] == "query_refused"
        coders = http.post("/api/cypher", json={"cypher": "MATCH (c:Coder) RETURN count(c) AS n"}).json()
        assert coders["rows"] == [{"n": 3}]
        missing = http.get("/api/studies/none")
        assert missing.status_code == 404 and set(missing.json()["error"]) == {"kind", "message", "details"}
        for path in ("/", "/views/threat-map", "/views/cooccurrence", "/docs", "/openapi.json"):
            assert http.get(path).status_code == 200, path


def test_live_upload_is_atomic_and_guarded(served):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in MINI_STUDY.iterdir():
            archive.write(path, path.name)
    data = buffer.getvalue()
    with httpx.Client(base_url=served, timeout=60) as http:
        assert http.post("/api/studies", params={"filename": "m.zip"}, content=data).status_code == 401
        too_big = http.post("/api/studies", params={"filename": "m.zip"}, content=b"0" * 100_001,
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert too_big.status_code == 413 and too_big.json()["error"]["kind"] == "too_large"
        loaded = http.post("/api/studies", params={"filename": "m.zip", "study_id": "mini2"}, content=data,
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/zip"})
        assert loaded.status_code == 201, loaded.text
        assert {s["study_id"] for s in http.get("/api/studies").json()} == {"founding", "mini2"}
        assert http.post("/api/cypher", json={"cypher": "MATCH (s:Study) DETACH DELETE s"}).status_code == 400
