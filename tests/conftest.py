"""Shared fixtures: real stores (embedded always; Neo4j when NEO4J_URI is set), the shipped study, ../shared."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import mmkg
from mmkg.loader import shipped_study_path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MINI_STUDY = ROOT / "tests" / "data" / "mini_study"

BACKENDS = ["ladybug", pytest.param("neo4j", marks=pytest.mark.neo4j)]
# The Neo4j tier's server, taken out of the environment: every other test (and every CLI call in a test)
# then uses the embedded store it names, even in a shell that exports NEO4J_URI.
NEO4J_URI = os.environ.pop("NEO4J_URI", None)


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the clone (CI has it; a user's clone does not)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: this test needs the project's shared material")
    return SHARED


@pytest.fixture(scope="session")
def founding_template(tmp_path_factory) -> Path:
    """An embedded store holding the shipped study, loaded once per session; copy it, never write to it."""
    path = tmp_path_factory.mktemp("founding-template")
    with mmkg.open_store(path) as kg:
        kg.load()
    return path


@pytest.fixture
def founding_store(founding_template, tmp_path) -> Path:
    """A private copy of an embedded store that holds the shipped study."""
    target = tmp_path / "store"
    shutil.copytree(founding_template, target)
    return target


@pytest.fixture(scope="module")
def module_store(tmp_path_factory):
    """(an embedded store, a folder beside it) shared by one module's tests, each loading studies of its own."""
    root = tmp_path_factory.mktemp("module-store")
    kg = mmkg.open_store(root / "store")
    yield kg, root
    kg.close()


def open_backend(backend: str, tmp_path: Path) -> mmkg.Mmkg:
    """A fresh, empty graph on the named backend."""
    if backend == "ladybug":
        return mmkg.open_store(tmp_path / "store")
    uri = NEO4J_URI
    if not uri:
        pytest.skip("NEO4J_URI is not set: start Neo4j (docker compose up -d neo4j) and export NEO4J_URI, "
                    "NEO4J_USER, NEO4J_PASSWORD to run the Neo4j tier")
    kg = mmkg.open_store(neo4j_uri=uri)
    kg.store.clear()  # the Neo4j tier owns its database: every test starts from an empty graph
    return kg


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def kg(backend, tmp_path):
    """An empty graph on every backend (the Neo4j one skips without NEO4J_URI)."""
    graph = open_backend(backend, tmp_path)
    yield graph
    graph.close()


@pytest.fixture
def founding_kg(backend, tmp_path):
    """A graph holding the shipped study, on every backend."""
    graph = open_backend(backend, tmp_path)
    graph.load()
    yield graph
    graph.close()


@pytest.fixture
def shipped_study() -> Path:
    return shipped_study_path()


# ------------------------------------------------------------------------------------------ the neo4j tier
def _neo4j_tier(terminalreporter) -> dict[str, int]:
    """Outcomes of the tests marked neo4j (by test id; setup and teardown failures count as failed)."""
    outcomes: dict[str, set[str]] = {"passed": set(), "failed": set(), "skipped": set()}
    for key, reports in terminalreporter.stats.items():
        for report in reports:
            if "neo4j" not in getattr(report, "keywords", {}):
                continue
            if key == "passed" and report.when == "call":
                outcomes["passed"].add(report.nodeid)
            elif key in ("failed", "error"):
                outcomes["failed"].add(report.nodeid)
            elif key == "skipped":
                outcomes["skipped"].add(report.nodeid)
    return {name: len(ids) for name, ids in outcomes.items()}


def pytest_terminal_summary(terminalreporter):
    tier = _neo4j_tier(terminalreporter)
    if any(tier.values()):
        where = NEO4J_URI or "no NEO4J_URI"
        terminalreporter.write_line(f"neo4j tier ({where}): {tier['passed']} passed, {tier['failed']} failed, "
                                    f"{tier['skipped']} skipped")


def pytest_sessionfinish(session, exitstatus):
    """With MMKG_REQUIRE_NEO4J=1 (CI), a neo4j-tier test that skipped fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("MMKG_REQUIRE_NEO4J") == "1" and reporter is not None and _neo4j_tier(reporter)["skipped"]:
        reporter.write_line("MMKG_REQUIRE_NEO4J=1 but neo4j-tier tests skipped: failing the run", red=True)
        session.exitstatus = 1


@pytest.fixture
def tsv_reader():
    """A tab-separated codings table, registered as a reader for the test only."""
    import pandas as pd

    from mmkg.loader import Reader, register_reader, unregister_reader
    from mmkg.loader.codings_csv import read_codings_table

    def read(path: Path, study_id: str | None):
        converted = path.with_suffix(".converted.csv")
        pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False).to_csv(converted, index=False)
        return read_codings_table(converted, study_id=study_id)

    yield register_reader(Reader("codings-tsv", {".tsv": "a tab-separated codings table"}, read,
                                 description="a codings table with tabs between its cells"))
    unregister_reader("codings-tsv")
