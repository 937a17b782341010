"""docker-compose.yml parses (Debian's `docker-compose` checks it without a Docker engine) and wires
Neo4j 5 and the mmkg API the way docs/neo4j.md says."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


def compose_config(password: str | None) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose): cannot check the compose file")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "MMKG_", "COMPOSE_"))}
    if password is not None:
        env["NEO4J_PASSWORD"] = password
    return subprocess.run([binary, "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


@pytest.mark.slow
def test_compose_file_is_valid_and_wires_neo4j_and_the_api():
    done = compose_config("a-test-password")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    neo4j, api = config["services"]["neo4j"], config["services"]["api"]
    assert neo4j["image"] == "neo4j:5-community"
    assert neo4j["environment"]["NEO4J_AUTH"] == "neo4j/a-test-password"
    assert {p["target"] for p in neo4j["ports"]} == {7474, 7687}
    assert any(v.startswith("neo4j-data:/data") for v in neo4j["volumes"]) and "neo4j-data" in config["volumes"]
    assert "cypher-shell" in " ".join(neo4j["healthcheck"]["test"])
    assert Path(api["build"]["context"]) == ROOT and (ROOT / "Dockerfile").is_file()
    assert api["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert api["command"][:2] == ["mmkg", "serve"] and "bolt://neo4j:7687" in api["command"]
    assert api["environment"]["NEO4J_PASSWORD"] == "a-test-password"


@pytest.mark.slow
def test_compose_refuses_to_start_without_a_password():
    done = compose_config(None)
    assert done.returncode != 0 and "NEO4J_PASSWORD" in done.stderr
