"""Small CLI manners of issue 16 item 5: commands say which store they open (--verbose, `mmkg studies`), `mmkg
serve` refuses a busy port before it says "Serving on", a Taguette codebook CSV loads as a codebook, and the
LICENSE file matches pyproject's licence. Real store, real sockets, real files."""
from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmkg
from mmkg.cli.main import app
from mmkg.errors import ConfigError
from mmkg.loader import reader_for

ROOT = Path(__file__).resolve().parents[1]
MINI_STUDY = ROOT / "tests" / "data" / "mini_study"
runner = CliRunner()


@pytest.fixture
def mini_store(tmp_path) -> Path:
    store = tmp_path / "store"
    with mmkg.open_store(store) as kg:
        kg.load(MINI_STUDY)
    return store


def test_verbose_commands_and_studies_say_which_store_they_open(mini_store):
    quiet = runner.invoke(app, ["query", "codes", "--store", str(mini_store), "--format", "csv"])
    assert quiet.exit_code == 0, quiet.output
    assert "Using the embedded store" not in quiet.output
    verbose = runner.invoke(app, ["--verbose", "query", "codes", "--store", str(mini_store), "--format", "csv"])
    assert verbose.exit_code == 0, verbose.output
    assert f"Using the embedded store {mini_store.resolve()}" in " ".join(verbose.stderr.split())
    assert verbose.stdout == quiet.stdout, "the note goes to stderr, the rows stay as they were"
    studies = runner.invoke(app, ["studies", "--store", str(mini_store)])
    assert studies.exit_code == 0 and f"Store: the embedded store {mini_store.resolve()}" in \
        " ".join(studies.stderr.split())


def test_serve_refuses_a_busy_port_before_saying_serving_on(mini_store):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "--store", str(mini_store)])
    assert isinstance(result.exception, ConfigError), result.output
    assert f"cannot listen on 127.0.0.1:{port}" in str(result.exception) and "--port" in str(result.exception)
    assert "Serving on" not in result.output


def test_a_taguette_codebook_csv_loads_as_a_codebook(tmp_path):
    path = tmp_path / "Threat tags.csv"
    path.write_text("tag,description,number of highlights\nmodel stealing,copying a model through its API,4\n"
                    "data poisoning,,0\n", encoding="utf-8")
    assert reader_for(path).name == "taguette-codebook"
    with mmkg.open_store(tmp_path / "store") as kg:
        report = kg.load(path)
        assert report.study_id == "threat-tags" and report.codings == 0
        codes = kg.query("codes").set_index("code_id")
    assert sorted(codes.index) == ["data poisoning", "model stealing"]
    assert set(codes["codebook"]) == {"taguette"}
    repeated = tmp_path / "twice.csv"
    repeated.write_text("tag,description,number of highlights\na,,1\na,,2\n", encoding="utf-8")
    with mmkg.open_store(tmp_path / "store2") as kg, pytest.raises(Exception, match=r"row 3, column tag: .*twice"):
        kg.load(repeated)


def test_the_licence_file_matches_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert declared == "MIT" and text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
