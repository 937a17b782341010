"""The interactive commands start without the heavy libraries (issue 18: `mmkg --help` and `mmkg queries` start
in well under a second; the time itself is measured in benchmarks/cli_startup.py, not here)."""
from __future__ import annotations

import json
import subprocess
import sys

from mmkg.cli.app import RuntimeParam

plain_text_coercion = RuntimeParam is not None

# pydantic: typer 0.29 imports it to coerce any option (mmkg.cli.app._coerce_text_plainly spares text and flags)
HEAVY = ("pandas", "numpy", "scipy", "pyarrow", "ladybug", "mmkg.api", "mmkg.analysis")
if plain_text_coercion:  # a typer whose internals mmkg.cli.app knows
    HEAVY += ("pydantic",)

PROBE = """
import json, sys
from mmkg.cli.main import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


def loaded_after(*args: str) -> tuple[list[str], str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True,
                          text=True, check=True, env={"COLUMNS": "250", "PATH": ""})
    return json.loads(done.stderr.strip().splitlines()[-1]), done.stdout


def test_help_and_queries_import_no_heavy_library():
    from mmkg.queries import registry

    loaded, text = loaded_after("--help")
    assert loaded == [] and "queries" in text and "load" in text
    loaded, text = loaded_after("queries")
    assert loaded == []
    assert all(name in text for name in registry())


def test_queries_as_csv_still_lists_descriptions():
    from mmkg.queries import registry

    _, text = loaded_after("queries", "--format", "csv")
    assert text.startswith("name,title,parameters,description\n")
    assert registry()["cooccurrence"].description.split(".")[0] in text


def test_a_load_imports_no_analysis_library(tmp_path):
    """`mmkg load` looks up only plain queries (studies, study_ids): scipy and the analysis library stay out of
    its memory (~26 MB); a query with an analysis step still brings them, and checks its step's name."""
    from mmkg.synthetic import synthetic_codings

    csv = tmp_path / "codings.csv"
    synthetic_codings(200).to_csv(csv, index=False)
    probe = (
        "import json, sys\n"
        "import mmkg\n"
        "kg = mmkg.open_store(sys.argv[1])\n"
        "kg.load(sys.argv[2])\n"
        "loaded = [m for m in ('scipy', 'mmkg.analysis') if m in sys.modules]\n"
        "kg.query('cooccurrence')\n"
        "print(json.dumps([loaded, [m for m in ('scipy', 'mmkg.analysis') if m in sys.modules]]))\n")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "store"), str(csv)], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[], ["scipy", "mmkg.analysis"]]
