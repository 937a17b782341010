"""Terminal tables are capped: the first rows, a note saying how many there are, and how to get them all."""
from __future__ import annotations

import io

import pandas as pd
from typer.testing import CliRunner

from mmkg.cli.app import TERMINAL_ROWS
from mmkg.cli.main import app  # every command registered, also when this file runs alone

runner = CliRunner()


def test_a_long_result_prints_its_first_rows_and_says_how_to_get_all(founding_template):
    everything = runner.invoke(app, ["query", "cooccurrence", "--store", str(founding_template), "--format", "csv"])
    assert everything.exit_code == 0, everything.output
    pairs = pd.read_csv(io.StringIO(everything.stdout))
    assert len(pairs) > TERMINAL_ROWS
    table = runner.invoke(app, ["query", "cooccurrence", "--store", str(founding_template)])
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert f"first {TERMINAL_ROWS:,} of {len(pairs):,} rows shown" in text and "--format csv" in text
    last_shown = pairs.iloc[TERMINAL_ROWS - 1]
    assert text.count("│ segment │") == TERMINAL_ROWS, "one table row per shown pair"
    assert str(last_shown["code_a"]) in text


def test_a_short_result_prints_whole_without_a_note(founding_template):
    table = runner.invoke(app, ["query", "studies", "--store", str(founding_template)])
    assert table.exit_code == 0, table.output
    assert "rows shown" not in table.stdout and "founding" in table.stdout
