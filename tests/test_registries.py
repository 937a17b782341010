"""Each registry is the one place its things are named: a reader, an output format or an export registered in a
fixture appears in the CLI's help, the HTTP API (its enum, its uploads) and the generated docs tables with that
one registration, and the docs tables in the repository are the registries' (`python -m mmkg.docs`)."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

import mmkg
from mmkg import docs
from mmkg.cli.app import export_app
from mmkg.cli.main import app as cli
from mmkg.config import Settings
from mmkg.formats import OutputFormat, register_output_format, unregister_output_format
from mmkg.queries import get_query
from mmkg.server.app import create_app
from mmkg.units import UNITS, units_help

ROOT = Path(__file__).resolve().parents[1]
MINI_STUDY = ROOT / "tests" / "data" / "mini_study"
LOCAL = "http://127.0.0.1"
TOKEN = "registry-test-token"
runner = CliRunner()


def help_text(*args: str) -> str:
    result = runner.invoke(cli, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.replace("│", " ").split())


# ------------------------------------------------------------------------------------- the docs tables
def test_every_docs_table_is_the_registrys():
    assert docs.stale(ROOT) == [], "run: python -m mmkg.docs"
    pages = " ".join(p.read_text(encoding="utf-8") for p in docs.doc_files(ROOT))
    assert {name for name in docs.TABLES if f"<!-- generated: {name} " in pages} == set(docs.TABLES)


def test_a_stale_table_is_found_and_rewritten(tmp_path):
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    readme = tmp_path / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("| `refi-qda` |", "| `refi-qda-old` |"), encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "mmkg.docs", "--check", "--root", str(tmp_path)],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "stale: README.md: readers" in check.stdout
    subprocess.run([sys.executable, "-m", "mmkg.docs", "--root", str(tmp_path)], check=True, capture_output=True)
    assert readme.read_text(encoding="utf-8") == text
    assert docs.stale(tmp_path) == []


def test_an_unknown_block_is_an_error():
    with pytest.raises(ValueError, match="unknown generated block 'vibes'"):
        docs.render("<!-- generated: vibes -->\n| x |\n<!-- end -->", "page.md")


# ------------------------------------------------------------------------------------------- readers
# tsv_reader: tests/conftest.py


@pytest.fixture(scope="module")
def mini_codings_tsv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mini")
    with mmkg.open_store(folder / "store") as kg:
        kg.load(MINI_STUDY)
        exported = kg.export_codings("mini")
    tsv = folder / "mini-codings.tsv"
    exported.to_csv(tsv, sep="\t", index=False)
    return tsv


def test_a_registered_reader_reaches_the_cli_the_api_and_the_docs(tsv_reader, mini_codings_tsv, tmp_path):
    assert "a tab-separated codings table (.tsv)" in help_text("load")
    settings = Settings(store=tmp_path / "store", upload_token=SecretStr(TOKEN))
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        assert ".tsv" in client.get("/upload").text
        response = client.post("/api/studies", headers={"Authorization": f"Bearer {TOKEN}"},
                               files={"file": ("from-tsv.tsv", mini_codings_tsv.read_bytes())})
        assert response.status_code == 201, response.text
        assert response.json()["counts"]["CODED_AS"] == len(pd.read_csv(mini_codings_tsv, sep="\t")) > 0
    assert "| `codings-tsv` | `.tsv` | the file ending (the default reader) | a codings table with tabs" in \
        docs.render("<!-- generated: readers -->\n<!-- end -->")
    assert "README.md: readers" in docs.stale(ROOT)


def test_without_the_registration_the_reader_is_nowhere(mini_codings_tsv, tmp_path):
    assert ".tsv" not in help_text("load")
    settings = Settings(store=tmp_path / "store", upload_token=SecretStr(TOKEN))
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        response = client.post("/api/studies", headers={"Authorization": f"Bearer {TOKEN}"},
                               files={"file": ("from-tsv.tsv", mini_codings_tsv.read_bytes())})
        assert response.status_code in (400, 415, 422) and ".tsv" in response.text
    assert ".tsv" not in docs.render("<!-- generated: readers -->\n<!-- end -->")


# ------------------------------------------------------------------------------------ output formats
@pytest.fixture
def tsv_format():
    """Tab-separated output, registered for the test only."""
    yield register_output_format(OutputFormat("tsv", "tab-separated values", "text/tab-separated-values",
                                              ".tsv", lambda frame: frame.to_csv(index=False, sep="\t")))
    unregister_output_format("tsv")


def test_a_registered_output_format_reaches_the_cli_the_api_and_the_docs(tsv_format, founding_template, tmp_path):
    assert "table, csv, json or tsv" in help_text("query")
    assert "csv, json or tsv" in help_text("export", "codes")
    printed = runner.invoke(cli, ["query", "studies", "--store", str(founding_template), "--format", "tsv"])
    assert printed.exit_code == 0, printed.output
    studies = pd.read_csv(io.StringIO(printed.stdout), sep="\t")
    assert studies["study_id"].tolist() == ["founding"]
    codes = runner.invoke(cli, ["export", "codes", "--store", str(founding_template), "--format", "tsv"])
    assert codes.exit_code == 0 and len(pd.read_csv(io.StringIO(codes.stdout), sep="\t")) > 50
    store = tmp_path / "store"
    shutil.copytree(founding_template, store)
    with TestClient(create_app(Settings(store=store)), base_url=LOCAL) as client:
        response = client.get("/api/queries/studies", params={"format": "tsv"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/tab-separated-values")
        assert pd.read_csv(io.StringIO(response.text), sep="\t")["study_id"].tolist() == ["founding"]
        by_accept = client.get("/api/queries/studies", headers={"Accept": "text/tab-separated-values"})
        assert by_accept.headers["content-type"].startswith("text/tab-separated-values")
        schema = client.get("/openapi.json").json()
        (fmt,) = [p for p in schema["paths"]["/api/queries/studies"]["get"]["parameters"] if p["name"] == "format"]
        assert "tsv" in json.dumps(fmt["schema"])
    assert "| `tsv` | tab-separated values | `text/tab-separated-values` |" in \
        docs.render("<!-- generated: output-formats -->\n<!-- end -->")


def test_without_the_registration_the_output_format_is_nowhere(founding_template, tmp_path):
    assert "tsv" not in help_text("query")
    refused = runner.invoke(cli, ["query", "studies", "--store", str(founding_template), "--format", "tsv"])
    assert refused.exit_code == 2 and "unknown format 'tsv' (use table, csv, json)" in " ".join(refused.output.split())
    store = tmp_path / "store"
    shutil.copytree(founding_template, store)
    with TestClient(create_app(Settings(store=store)), base_url=LOCAL) as client:
        assert client.get("/api/queries/studies", params={"format": "tsv"}).status_code == 422
        assert client.get("/api/queries/studies", params={"format": "csv"}).headers["content-type"] \
            .startswith("text/csv")


# ----------------------------------------------------------------------------------- export formats
@pytest.fixture
def export_participants():
    """An `mmkg export participants` subcommand, registered for the test only (as any command module does)."""
    @export_app.command("participants")
    def export_participants_command(output: Path = typer.Option(..., "-o")) -> None:
        """One row per participant (a test's export)."""
        output.write_text("participant_id\n", encoding="utf-8")

    yield
    export_app.registered_commands[:] = [c for c in export_app.registered_commands
                                         if c.callback is not export_participants_command]


def test_a_registered_export_reaches_the_cli_and_the_docs(export_participants):
    assert "participants One row per participant (a test's export)." in help_text("export")
    assert "| `participants` | One row per participant (a test's export). |" in \
        docs.render("<!-- generated: export-formats -->\n<!-- end -->")
    assert "README.md: export-formats" in docs.stale(ROOT)


# --------------------------------------------------------------------------------------------- units
def test_the_units_are_named_once():
    for name in ("cooccurrence", "code_neighbourhood"):
        (unit,) = [p for p in get_query(name).parameters if p.name == "unit"]
        assert unit.description == f"unit: {units_help()}"
    assert re.findall(r"`(\w+)` \|", docs.render("<!-- generated: units -->\n<!-- end -->")) == list(UNITS)


def test_the_views_offer_the_registered_units(founding_template, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(founding_template, store)
    with TestClient(create_app(Settings(store=store)), base_url=LOCAL) as client:
        schema = client.get("/openapi.json").json()
        (unit,) = [p for p in schema["paths"]["/views/cooccurrence"]["get"]["parameters"] if p["name"] == "unit"]
        assert unit["schema"]["enum"] == list(UNITS)
        page = client.get("/views/cooccurrence", params={"unit": "participant"}).text
        assert all(f'<option value="{u}"' in page for u in UNITS)
