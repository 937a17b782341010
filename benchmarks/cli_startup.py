"""Start-up of the interactive CLI: `mmkg --help` and `mmkg queries`, against the bare interpreter.

    python benchmarks/cli_startup.py [--repeat 10]

Whole processes, best of `--repeat`, measured in the same run; the baselines are `python -c pass` (the interpreter
alone) and `python -c "import typer, rich"` (the CLI framework alone).  Goal (issue 18): ≤ 0.3 s each.
Checks: both commands exit 0; `mmkg queries` names every query of the library and `mmkg --help` every command.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

MMKG = str(Path(sys.executable).with_name("mmkg"))
COMMANDS = ("load", "studies", "paper", "queries", "query", "serve", "export", "map")


def best_of(repeat: int, command: list[str]) -> tuple[float, str]:
    best, output = float("inf"), ""
    env = {**os.environ, "COLUMNS": "200"}
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        best = min(best, time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-400:]}")
        output = done.stdout
    return best, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    from mmkg.queries import registry

    t_python, _ = best_of(args.repeat, [sys.executable, "-c", "pass"])
    t_typer, _ = best_of(args.repeat, [sys.executable, "-c", "import typer, rich"])
    t_help, help_text = best_of(args.repeat, [MMKG, "--help"])
    t_queries, queries_text = best_of(args.repeat, [MMKG, "queries"])
    missing = [c for c in COMMANDS if c not in help_text] + [q for q in registry() if q not in queries_text]
    if missing:
        raise SystemExit(f"not listed: {', '.join(missing)}")
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat}; baselines: python -c pass "
          f"{t_python:.3f} s, import typer+rich {t_typer:.3f} s")
    print(f"{'command':>14} {'s':>6} {'×python':>8} {'×typer':>7}  output checked")
    for name, seconds in (("mmkg --help", t_help), ("mmkg queries", t_queries)):
        print(f"{name:>14} {seconds:>6.3f} {seconds / t_python:>8.1f} {seconds / t_typer:>7.1f}  True")


if __name__ == "__main__":
    main()
