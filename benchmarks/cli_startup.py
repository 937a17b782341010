"""Start-up of the interactive CLI (`mmkg --help`, `mmkg queries`) against the bare interpreter and the CLI
framework, and a 10^4-row terminal table against the same rows written as CSV.

    python benchmarks/cli_startup.py [--repeat 10] [--rows 10000]

Whole processes, best of `--repeat`, measured in the same run: wall time and CPU time (user + system of the child;
on a shared machine the wall time swings with the load, the CPU time much less).  Baselines:
- `python -c pass`: the interpreter alone (in this venv, with its site-packages);
- `python -c "import typer, rich.console"`: the CLI framework alone;
- `python -c "import typer.rich_utils"`: what typer itself imports to format any `--help` (rich.markdown and
  markdown-it among it, whether or not a help uses Markdown).
Goal (issue 18): ≤ 0.3 s each on a quiet machine.  The project's modules are byte-compiled first (`compileall`, as
`pip install` does for a wheel): with PYTHONDONTWRITEBYTECODE set, an editable install would otherwise recompile
every module changed since its .pyc on every start (~10 ms for cli/app.py alone).
Table: `mmkg.cli.app.print_frame` of a `--rows`-row codings table (`mmkg.synthetic`) printed to a terminal of
COLUMNS=200 (it shows the first `TERMINAL_ROWS` rows and a note) against `write_frame(…, "csv")` of the same frame,
in this process, best of `--repeat`; goal ≤ 1 s.
Checks: every command exits 0; `mmkg queries` names every named query and `mmkg --help` every command; the table
says how many rows it shows of how many and how to get all of them.
"""
from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib
import io
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

MMKG = str(Path(sys.executable).with_name("mmkg"))
COMMANDS = ("load", "studies", "paper", "queries", "query", "serve", "export", "map")
ENV = {**os.environ, "COLUMNS": "200"}


def best_of(repeat: int, command: list[str]) -> tuple[float, float, str]:
    """(best wall s, best CPU s, output) of `repeat` runs of `command`."""
    wall, cpu, output = float("inf"), float("inf"), ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=ENV)
        wall = min(wall, time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-400:]}")
        output = done.stdout
    return wall, cpu, output


def table_seconds(repeat: int, rows: int) -> tuple[float, float, str, int]:
    """(best s of the terminal table, best s of CSV, the table's text, rows) for a `rows`-row codings frame."""
    from rich.console import Console

    import mmkg.cli.app as cli
    from mmkg.synthetic import synthetic_codings

    frame = synthetic_codings(rows).reset_index(drop=True)
    table, csv, text = float("inf"), float("inf"), ""
    for _ in range(repeat):
        screen = io.StringIO()
        cli.console = Console(file=screen, width=200, force_terminal=True)  # a terminal 200 columns wide
        started = time.perf_counter()
        cli.print_frame(frame, title="codings")
        table = min(table, time.perf_counter() - started)
        text = screen.getvalue()
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            cli.write_frame(frame, None, "csv")
            csv = min(csv, time.perf_counter() - started)
    return table, csv, text, len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    from mmkg.queries import registry

    python = sys.executable
    for package in ("mmkg", "mmkg.cli", "mmkg.queries", "mmkg.loader", "mmkg.server"):
        for folder in importlib.import_module(package).__path__:
            compileall.compile_dir(folder, quiet=1, maxlevels=0)
    runs = {name: best_of(args.repeat, command) for name, command in (
        ("python -c pass", [python, "-c", "pass"]),
        ("import typer, rich", [python, "-c", "import typer, rich.console"]),
        ("import typer.rich_utils", [python, "-c", "import typer.rich_utils"]),
        ("mmkg --help", [MMKG, "--help"]),
        ("mmkg queries", [MMKG, "queries"]))}
    help_text, queries_text = runs["mmkg --help"][2], runs["mmkg queries"][2]
    missing = [c for c in COMMANDS if c not in help_text] + [q for q in registry() if q not in queries_text]
    if missing:
        raise SystemExit(f"not listed: {', '.join(missing)}")
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat}; whole processes")
    print(f"{'command':>24} {'wall s':>7} {'CPU s':>6} {'CPU ×python':>11} {'CPU ×typer':>10}  output checked")
    base_cpu, typer_cpu = runs["python -c pass"][1], runs["import typer, rich"][1]
    for name, (wall, cpu, _) in runs.items():
        checked = "every command" if name == "mmkg --help" else "every query" if name == "mmkg queries" else ""
        print(f"{name:>24} {wall:>7.3f} {cpu:>6.3f} {cpu / base_cpu:>11.1f} {cpu / typer_cpu:>10.1f}  {checked}")

    table, csv, text, rows = table_seconds(args.repeat, args.rows)
    from mmkg.cli.app import TERMINAL_ROWS

    flat = " ".join(text.split())
    if f"first {TERMINAL_ROWS:,} of {rows:,} rows shown" not in flat or "--format csv" not in flat:
        raise SystemExit("the table does not say which rows it shows and how to get them all")
    print(f"\n{rows:,}-row table in a 200-column terminal (first {TERMINAL_ROWS} rows and a note): "
          f"{table:.3f} s; the same frame as CSV {csv:.3f} s ({table / csv:.1f}×); note checked")


if __name__ == "__main__":
    main()
