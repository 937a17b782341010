"""The read-back of a study follows the schema: a property a future mmkg adds to `mmkg.schema` (and to the study
tables' columns) survives `map apply`, `export study` and a reload with no other change; a schema property the
tables have no column for is refused by name instead of being dropped."""
from __future__ import annotations

import csv
import dataclasses
import importlib
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

import mmkg
from mmkg import schema, tables
from mmkg.graph_tables import COMPUTED, SchemaMismatch, read_study_tables, unplaced_properties
from mmkg.mapping import apply_mapping

MINI_STUDY = Path(__file__).resolve().parent / "data" / "mini_study"


def add_property(monkeypatch, label: str, prop: str, kind: str) -> None:
    """The schema with one more property of `label`, as every mmkg module sees it (the modules that read the
    schema are imported first, so none binds the patched tables for good)."""
    for name in ("mmkg.graph", "mmkg.store.ddl", "mmkg.store.embedded", "mmkg.store.neo4j_import",
                 "mmkg.store.study_reads", "mmkg.loader.validate", "mmkg.graph_tables"):
        importlib.import_module(name)
    old_nodes, old_by_label = schema.NODES, schema.NODE_BY_LABEL
    table = dataclasses.replace(old_by_label[label], properties=old_by_label[label].properties + ((prop, kind),))
    nodes = tuple(table if n.label == label else n for n in old_nodes)
    by_label = {**old_by_label, label: table}
    for module in [m for name, m in list(sys.modules.items()) if name.startswith("mmkg") and m is not None]:
        if getattr(module, "NODES", None) is old_nodes:
            monkeypatch.setattr(module, "NODES", nodes)
        if getattr(module, "NODE_BY_LABEL", None) is old_by_label:
            monkeypatch.setattr(module, "NODE_BY_LABEL", by_label)


def study_with_colours(folder: Path) -> Path:
    shutil.copytree(MINI_STUDY, folder)
    codes = folder / "codes.csv"
    with codes.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for number, row in enumerate(rows):
        row["colour"] = f"#{number:06x}"
    with codes.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def colours_in(folder: Path) -> dict[tuple[str, str], str]:
    with (folder / "codes.csv").open(encoding="utf-8", newline="") as handle:
        return {(r["codebook"], r["code_id"]): r["colour"] for r in csv.DictReader(handle)}


@pytest.mark.slow  # three stores, each loading the ontology
def test_a_property_added_to_the_schema_survives_map_apply_export_and_reload(monkeypatch, tmp_path):
    add_property(monkeypatch, "Code", "colour", schema.STRING)
    monkeypatch.setitem(tables.COLUMNS, "codes", [*tables.COLUMNS["codes"], "colour"])
    source = study_with_colours(tmp_path / "study")
    expected = colours_in(source)
    with mmkg.open_store(tmp_path / "store") as kg:
        kg.load(source)
        stored = kg.cypher("MATCH (k:Code) RETURN k.codebook AS codebook, k.id AS code_id, k.colour AS colour")
        assert {(r.codebook, r.code_id): r.colour for r in stored.itertuples()} == expected
        code = read_study_tables(kg, "mini").codes.iloc[0]
        apply_mapping(kg, "mini", pd.DataFrame([{"codebook": code["codebook"], "code_id": code["code_id"],
                                                  "concept": "Poisoning", "match": "close",
                                                  "note": "test"}]))
        assert len(read_study_tables(kg, "mini").concept_map) == 1
        kg.export_study("mini", tmp_path / "export")
    assert colours_in(tmp_path / "export") == expected  # kept by `map apply`, written by the export
    with mmkg.open_store(tmp_path / "back") as back:
        back.load(tmp_path / "export")
        codes = read_study_tables(back, "mini").codes
        assert dict(zip(zip(codes["codebook"], codes["code_id"]), codes["colour"])) == expected


def test_a_schema_property_without_a_column_is_refused_by_name(monkeypatch, founding_template):
    with mmkg.open_store(founding_template, read_only=True) as kg:
        add_property(monkeypatch, "Segment", "sentiment", schema.FLOAT)
        assert unplaced_properties() == ["Segment.sentiment"]
        with pytest.raises(SchemaMismatch, match=r"Segment\.sentiment.*mmkg\.tables\.COLUMNS"):
            read_study_tables(kg, "founding")


def test_every_schema_property_of_a_study_is_read_back_or_named_as_computed():
    """The guard, strict both ways: nothing unplaced, and every `COMPUTED` entry names a real property."""
    assert unplaced_properties() == []
    properties = {f"{n.label}.{p}" for n in schema.NODES for p, _ in n.properties} | \
        {f"{r.type}.{p}" for r in schema.RELS for p, _ in r.properties} | \
        {f"*.{p}" for n in schema.NODES for p in n.columns}
    assert sorted(COMPUTED - properties) == []
