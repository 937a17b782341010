"""The bulk path to Neo4j for big corpora: node and relationship CSVs for `neo4j-admin database import full`.

One file per node label (`nodes_<Label>.csv`: `uid:ID(<Label>)`, typed properties, `:LABEL`) and per
relationship type (`rels_<TYPE>.csv`: `:START_ID(<Source>)`, `:END_ID(<Target>)`, `:TYPE`, typed
properties), read from any store through the same Cypher, plus `import.sh` with the exact command.
Each label has its own id space, named after the label, as the relationship headers refer to it.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmkg.errors import StoreError
from mmkg.schema import BOOL, FLOAT, INT, INT32, INTEGERS, NODES, RELS, NodeTable, RelTable

# LadybugDB property type -> neo4j-admin import header type (strings need none).
HEADER_TYPES = {INT: "long", INT32: "long", FLOAT: "double", BOOL: "boolean"}
IMPORT_SCRIPT = "import.sh"


@dataclass(frozen=True)
class ImportFile:
    path: Path
    kind: str  # "nodes" | "relationships"
    rows: int


def property_header(name: str, kind: str) -> str:
    suffix = HEADER_TYPES.get(kind)
    return f"{name}:{suffix}" if suffix else name


def node_header(node: NodeTable) -> list[str]:
    return [f"uid:ID({node.label})", *(property_header(n, k) for n, k in node.properties), ":LABEL"]


def rel_header(rel: RelTable) -> list[str]:
    return [f":START_ID({rel.source})", f":END_ID({rel.target})", ":TYPE",
            *(property_header(n, k) for n, k in rel.properties)]


def node_query(node: NodeTable) -> str:
    """Every node of the label; a bulk label's through its parent relationship (on Neo4j a load in progress
    writes segments under staged sources, which this leaves out)."""
    columns = ", ".join(f"n.{c} AS {c}" for c in node.columns)
    if node.bulk:
        parent = next(r for r in RELS if r.target == node.label)
        return f"MATCH (:{parent.source})-[:{parent.type}]->(n:{node.label}) RETURN {columns} ORDER BY uid"
    return f"MATCH (n:{node.label}) RETURN {columns} ORDER BY uid"


def rel_query(rel: RelTable) -> str:
    columns = ", ".join(["a.uid AS source_uid", "b.uid AS target_uid", *(f"r.{p} AS {p}" for p, _ in rel.properties)])
    return (f"MATCH (a:{rel.source})-[r:{rel.type}]->(b:{rel.target}) RETURN {columns} "
            "ORDER BY source_uid, target_uid")


def export_neo4j_import(kg, directory: str | Path) -> list[ImportFile]:
    """Write every node and relationship of the graph `kg` (an `mmkg.Mmkg`) as import CSVs into
    `directory`, and `import.sh`; empty tables get no file.  Returns the files written."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{directory}: cannot create the export folder ({exc.strerror})") from None
    written: list[ImportFile] = []
    for node in NODES:
        frame = kg.cypher(node_query(node))
        if frame.empty:
            continue
        frame = _typed(frame, dict(node.properties))
        frame[":LABEL"] = node.label
        written.append(_write(directory / f"nodes_{node.label}.csv", frame, node_header(node), "nodes"))
    for rel in RELS:
        frame = kg.cypher(rel_query(rel))
        if frame.empty:
            continue
        frame = _typed(frame, dict(rel.properties))
        frame.insert(2, ":TYPE", rel.type)
        written.append(_write(directory / f"rels_{rel.type}.csv", frame, rel_header(rel), "relationships"))
    (directory / IMPORT_SCRIPT).write_text(import_script(written), encoding="utf-8")
    return written


def import_command(files: list[ImportFile], folder: str = "$DIR", database: str = "neo4j") -> list[str]:
    """The `neo4j-admin database import full` command line for `files` found in `folder`."""
    # The database name comes first: after the last --relationships=FILE, neo4j-admin reads it as one
    # more file of that option ("File 'neo4j' doesn't exist").
    command = ["neo4j-admin", "database", "import", "full", database, "--overwrite-destination=true",
               "--multiline-fields=true"]
    return command + [f"--{f.kind}={folder}/{f.path.name}" for f in files]


def import_script(files: list[ImportFile]) -> str:
    """A shell script that imports the files beside it into a stopped Neo4j (database: $1, default neo4j)."""
    command = [_quote(part) for part in import_command(files, database="${1:-neo4j}")]
    lines = " ".join(command[:7]) + " \\\n  " + " \\\n  ".join(command[7:])
    return ("#!/bin/sh\n# Bulk-import the mmkg graph into a STOPPED Neo4j 5 (replaces the database).\n"
            "# Written by `mmkg export neo4j-import`; see docs/neo4j.md.\nset -e\n"
            'DIR="$(cd "$(dirname "$0")" && pwd)"\n' + lines + "\n")


def _quote(part: str) -> str:
    return f'"{part}"' if "$" in part else shlex.quote(part)


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Integers without a decimal point and booleans as true/false, missing values empty."""
    frame = frame.copy()
    for column, kind in types.items():
        if column not in frame:
            continue
        series = frame[column]
        if kind in INTEGERS:
            frame[column] = pd.array(pd.to_numeric(series), dtype="Int64")
        elif kind == BOOL:
            frame[column] = series.map(lambda v: None if v is None or pd.isna(v) else ("true" if v else "false"))
    return frame


def _write(path: Path, frame: pd.DataFrame, header: list[str], kind: str) -> ImportFile:
    """Arrow's CSV writer quotes every string, so an empty string is `""` and a missing value an empty field:
    neo4j-admin imports the first as an empty string and the second as no property, as an online load has."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame.set_axis(header, axis=1), preserve_index=False)
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=True, quoting_style="needed"))
    return ImportFile(path=path, kind=kind, rows=len(frame))
