"""Every benchmark script runs to the end on a small input, with its own checks (equal rows, counts, tables).

The benchmarks are not timed here (their figures come from full runs, benchmarks/README.md); this only keeps a
change to one script's shared helpers from breaking another unseen (http_latency once unpacked `best_of` wrongly).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chromium_cdp import chromium_path

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"

RUNS = {
    "cooccurrence_bench.py": ["--sizes", "3000", "--repeat", "1"],
    "load_bench.py": ["--sizes", "3000", "--repeat", "1"],
    "reload_bench.py": ["--large", "6000", "--small", "2000", "--repeat", "1"],
    "http_latency.py": ["--sizes", "3000", "--repeat", "1"],
    "cli_startup.py": ["--repeat", "1", "--rows", "500"],
    "api_load.py": ["--clients", "2", "--seconds", "1"],
    "adhoc_bench.py": ["--repeat", "5", "--seconds", "1"],
    "render_large.py": ["--size", "3000", "--repeat", "1"],
}
NEEDS = {"cooccurrence_bench.py": "duckdb"}  # the bench extra's DuckDB baseline


def test_every_script_is_run_here():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")}
    # mapping_eval runs in tests/test_mapping_eval.py's way (its figures are tested there); neo4j_bench needs a
    # server of its own; load_phases and reload_phases are probes that take a CSV (and a store made for them)
    assert scripts - set(RUNS) == {"mapping_eval.py", "neo4j_bench.py", "load_phases.py", "reload_phases.py"}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(RUNS))
def test_benchmark_runs_on_a_small_input(script, tmp_path):
    module = NEEDS.get(script)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"needs {module} (pip install -e '.[bench]')")
    if script == "render_large.py" and chromium_path() is None:
        pytest.skip("needs Chromium")
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *RUNS[script]], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
