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

from mmkg.graph import ontology_graph, study_graph
from mmkg.loader import read_study, validate
from mmkg.schema import NODE_BY_LABEL, NODES, REL_BY_TYPE, RELS
from mmkg.server.cli import app

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
        expected = [f"{name}:{ {'INT64': 'long', 'DOUBLE': 'double', 'BOOLEAN': 'boolean'}[kind]}"
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
