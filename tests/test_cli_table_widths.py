"""Terminal tables fit the terminal: at COLUMNS=80 and 120 no line is wider, text cells wrap between words,
numbers and words are never split (`foun/ding`, `1.83/e-19` were), and a table that had to be cut says how to
get everything (`--format csv`).  Real subprocesses of the `mmkg` command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from rich.cells import cell_len

WIDTHS = [80, 120]


def run(args: list[str], columns: int) -> str:
    env = {**os.environ, "COLUMNS": str(columns)}
    result = subprocess.run([sys.executable, "-m", "mmkg.cli.main", *args], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def shown(value) -> str:
    """A cell as the table shows it (`mmkg.cli.app._cell`): floats to 3 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "; ".join(map(shown, value))
    return str(value)


def table_words(out: str) -> list[str]:
    """The words inside the table's cells (header and body rows)."""
    words = []
    for line in out.splitlines():
        if line.startswith(("│", "┃")):
            for cell in line.strip("│┃").replace("┃", "│").split("│"):
                words += cell.split()
    return words


def assert_whole_words(out: str, rows: list[dict], width: int) -> None:
    assert out.strip(), "nothing printed"
    assert max(cell_len(line) for line in out.splitlines()) <= width
    whole = {w for row in rows for v in [*row, *map(shown, row.values())] for w in str(v).split()}
    for word in table_words(out):
        if word.endswith("…"):  # a word too long for its column ends in '…', it is not carried over
            assert any(w.startswith(word[:-1]) for w in whole), word
        else:
            assert word in whole, f"{word!r} is not a whole word of any cell"


@pytest.mark.parametrize("width", WIDTHS)
def test_a_wide_query_result_fits_and_keeps_its_words(founding_template, width):
    args = ["query", "code_neighbourhood", "-p", "code=A.3", "-p", "limit=12", "--store", str(founding_template)]
    rows = json.loads(run([*args, "--format", "json"], width))
    out = run(args, width)
    assert_whole_words(out, rows, width)
    assert "founding" in table_words(out) and "foun" not in table_words(out)
    assert "Everything: --format csv" in " ".join(out.split()) and "not shown" in out
    assert {"model", "stealing"} <= set(table_words(out))  # label_a wraps between its words


@pytest.mark.parametrize("width", WIDTHS)
def test_numbers_and_long_words_are_never_split(width, tmp_path):
    """The cells the issue saw broken: a study id, a p value in exponent notation, long text and long words."""
    script = tmp_path / "table.py"
    script.write_text(
        "import pandas as pd\n"
        "from mmkg.cli.app import print_frame\n"
        "frame = pd.DataFrame({'study_id': ['founding'] * 3, 'code_a': ['A.3', 'C.10', 'E.11'],\n"
        "    'label': ['model stealing of the deployed classifier behind the public prediction API'] * 3,\n"
        "    'note': ['see https://example.org/a/very/long/address/that/no/column/can/hold/whole', 'x', 'y'],\n"
        "    'fisher_p': [1.83e-19, 0.0412, 1.0], 'n_ab': [12, 3, 1], 'lift': [3.21, 1.5, 0.98],\n"
        "    'description': ['co-occurs with code breach and data breach in interviews about attacks'] * 3})\n"
        "print_frame(frame, title='Pairs')\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": str(width)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    rows = [{"study_id": "founding", "code_a": a, "label": "model stealing of the deployed classifier behind the "
             "public prediction API", "note": n, "fisher_p": p, "n_ab": k, "lift": lift,
             "description": "co-occurs with code breach and data breach in interviews about attacks"}
            for a, n, p, k, lift in [("A.3", "see https://example.org/a/very/long/address/that/no/column/can/hold/"
                                      "whole", 1.83e-19, 12, 3.21), ("C.10", "x", 0.0412, 3, 1.5),
                                     ("E.11", "y", 1.0, 1, 0.98)]]
    assert_whole_words(out, rows, width)
    words = table_words(out)
    assert "1.83e-19" in words and "founding" in words and "0.0412" in words
    assert "Everything: --format csv" in " ".join(out.split())


def test_a_table_that_fits_prints_whole_without_a_note(founding_template):
    out = run(["query", "studies", "--store", str(founding_template)], 1000)
    assert "founding" in table_words(out) and "Everything: --format csv" not in out
