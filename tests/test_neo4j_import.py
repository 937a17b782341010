"""`mmkg export neo4j-import DIR`: CSVs with the headers `neo4j-admin database import full` expects, whose
relationship ids all resolve to node ids, and an import script that names every file."""
from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmkg.cli.main import app
from mmkg.graph import ontology_graph, study_graph
from mmkg.loader import read_study, validate
from mmkg.schema import NODE_BY_LABEL, NODES, REL_BY_TYPE, RELS

ID_HEADER = re.compile(r"^(?P<name>\w+):ID\((?P<space>\w+)\)$")
END_HEADER = re.compile(r"^:(?P<end>START|END)_ID\((?P<space>\w+)\)$")
TYPED = re.compile(r"^\w+(:(long|double|boolean))?$")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, founding_template) -> Path:
    out = tmp_path_factory.mktemp("neo4j-import")
    done = CliRunner().invoke(app, ["export", "neo4j-import", str(out), "--store", str(founding_template)])
    assert done.exit_code == 0, done.output
    assert "import.sh" in done.output
    return out


def header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_node_files_have_an_id_space_per_label_typed_properties_and_the_label(exported):
    files = sorted(exported.glob("nodes_*.csv"))
    assert {f.stem.removeprefix("nodes_") for f in files} == {n.label for n in NODES}
    for path in files:
        label = path.stem.removeprefix("nodes_")
        columns = header(path)
        match = ID_HEADER.match(columns[0])
        assert match and match["name"] == "uid" and match["space"] == label, columns
        assert columns[-1] == ":LABEL" and all(TYPED.match(c) for c in columns[1:-1]), columns
        expected = [f"{name}:{ {'INT64': 'long', 'INT32': 'long', 'DOUBLE': 'double', 'BOOLEAN': 'boolean'}[kind]}"
                    if kind != "STRING" else name for name, kind in NODE_BY_LABEL[label].properties]
        assert columns[1:-1] == expected
        frame = read(path)
        assert set(frame[":LABEL"]) == {label} and frame.iloc[:, 0].is_unique


def test_every_relationship_id_resolves_to_a_node_id(exported):
    ids = {path.stem.removeprefix("nodes_"): set(read(path).iloc[:, 0]) for path in exported.glob("nodes_*.csv")}
    files = sorted(exported.glob("rels_*.csv"))
    assert len(files) >= len(RELS) - 1  # SUBGROUP_OF is empty in the founding study: no file
    for path in files:
        rel = REL_BY_TYPE[path.stem.removeprefix("rels_")]
        columns = header(path)
        start, end = END_HEADER.match(columns[0]), END_HEADER.match(columns[1])
        assert (start["end"], start["space"], end["end"], end["space"]) == ("START", rel.source, "END", rel.target)
        assert columns[2] == ":TYPE" and all(TYPED.match(c) for c in columns[3:]), columns
        frame = read(path)
        assert set(frame[":TYPE"]) == {rel.type}
        dangling = (set(frame.iloc[:, 0]) - ids[rel.source]) | (set(frame.iloc[:, 1]) - ids[rel.target])
        assert not dangling, f"{path.name}: ids without a node: {sorted(dangling)[:5]}"


@pytest.mark.slow
def test_the_export_holds_exactly_the_graph_rows_with_typed_values(exported):
    rows = study_graph(validate(read_study(None)))
    ontology = ontology_graph()
    for part in (rows, ontology):
        for label, frame in part.nodes.items():
            assert len(read(exported / f"nodes_{label}.csv")) == len(frame), label
        for rel_type, frame in part.rels.items():
            path = exported / f"rels_{rel_type}.csv"
            assert (len(read(path)) if path.exists() else 0) == len(frame), rel_type
    segments = read(exported / "nodes_Segment.csv")
    assert set(segments["synthetic:boolean"]) <= {"true", "false"}
    assert segments["start_pos:long"].str.fullmatch(r"\d*").all()  # integers, never 12.0; empty = no value
    coded = read(exported / "rels_CODED_AS.csv")
    assert set(coded["analysis:boolean"]) == {"true", "false"}


def test_the_import_script_names_every_file_once(exported):
    script = (exported / "import.sh").read_text(encoding="utf-8")
    assert "neo4j-admin database import full" in script
    subprocess.run(["sh", "-n", str(exported / "import.sh")], check=True)
    named = re.findall(r'--(nodes|relationships)=\$DIR/([\w.]+)"', script)
    files = {p.name for p in exported.glob("*.csv")}
    assert sorted(name for _, name in named) == sorted(files)
    assert all(kind == ("nodes" if name.startswith("nodes_") else "relationships") for kind, name in named)


# ------------------------------------------------------------------------------------------ the real importer
@pytest.mark.neo4j
@pytest.mark.slow
def test_neo4j_admin_imports_the_export_and_it_answers_like_an_online_load(tmp_path):
    """The bulk path end to end: the export of an embedded store (founding study + synthetic codings) is
    imported by Neo4j's own `neo4j-admin database import full` (run by the test server's bin/neo4j-admin
    through the exported import.sh, unchanged) into a second Neo4j test server; it holds the same counts
    as the embedded store and answers every named query like the same studies loaded online into Neo4j."""
    import os
    import socket

    from conftest import NEO4J_URI, ROOT, open_backend
    from test_cross_store import differences
    from test_neo4j import snapshot

    import mmkg
    from mmkg.queries import registry
    from mmkg.synthetic import synthetic_codings

    server = ROOT / "tools" / "neo4j-test-server"
    codings = tmp_path / "synthetic.csv"
    synthetic_codings(20_000).to_csv(codings, index=False)
    with mmkg.open_store(tmp_path / "store") as embedded:
        embedded.load()
        embedded.load(codings)
    export = tmp_path / "export"
    done = CliRunner().invoke(app, ["export", "neo4j-import", str(export), "--store", str(tmp_path / "store")])
    assert done.exit_code == 0, done.output

    home = tmp_path / "neo4j-home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "neo4j.conf").write_text((server / "neo4j.conf").read_text(encoding="utf-8"), encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PATH": f"{server / 'bin'}{os.pathsep}{os.environ['PATH']}", "NEO4J_HOME": str(home),
           "NEO4J_TEST_HOME": str(home), "NEO4J_TEST_KEEP_DATA": "1", "NEO4J_TEST_PORT": str(port),
           "NEO4J_TEST_PID_FILE": str(tmp_path / "server.pid"), "NEO4J_TEST_HEAP": "512m"}
    imported = subprocess.run(["sh", str(export / "import.sh")], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=900)  # neo4j-admin writes import.report into its working folder
    assert imported.returncode == 0, imported.stdout[-3000:] + imported.stderr[-3000:]
    assert "IMPORT DONE" in imported.stdout
    started = subprocess.run(["bash", str(server / "run.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        online = open_backend("neo4j", tmp_path)
        online.load()
        online.load(codings)
        with mmkg.open_store(neo4j_uri=f"bolt://127.0.0.1:{port}") as bulk, \
                mmkg.open_store(tmp_path / "store", read_only=True) as embedded:
            assert snapshot(bulk) == snapshot(embedded)  # every node's uid, every relationship with its properties
            for name, query in sorted(registry().items()):
                if query.mode == "read":  # two studies: every study where the query can pool them, else founding
                    study = {} if not any(p.name == "study_id" for p in query.parameters) else \
                        {"study_id": "*" if "$study_id = '*'" in query.cypher else "founding"}
                    problems = differences(online.query(name, **study), bulk.query(name, **study))
                    assert not problems, f"{name}: bulk import differs from the online load:\n" + "\n".join(problems)
        online.close()
    finally:
        subprocess.run(["bash", str(server / "stop.sh")], env=env, capture_output=True, timeout=120)
    assert NEO4J_URI
