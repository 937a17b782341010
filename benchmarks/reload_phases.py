"""Where one re-load or delete in the embedded store spends its time: every step of the write, timed in one process.

    python benchmarks/reload_phases.py STORE reload CODINGS.csv   # `Mmkg.load(CODINGS.csv)`, replacing its study
    python benchmarks/reload_phases.py STORE delete STUDY_ID      # `Mmkg.delete_study(STUDY_ID)`

A probe (issue 18, goal 3), not a benchmark with a baseline: it writes STORE for real (the write publishes a new
version), so point it at a store made for it. The steps are found by wrapping the functions the write calls
(reading and validating, the segment counts, the file copy, the delete, every table written, the checks,
opening and closing the database, publishing, collecting the old version) and every statement LadybugDB runs
(each DETACH DELETE, COPY, COMMIT and CHECKPOINT: a COMMIT or COPY that ends a transaction includes LadybugDB's
checkpoint). It prints each step's seconds in the order they ran, then the store's size (database file,
segments, codings) and the load average.
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path

STARTED = time.perf_counter()

import ladybug  # noqa: E402 - imported after the clock starts: the import is part of a write's process

import mmkg  # noqa: E402
import mmkg.graph as graph  # noqa: E402
import mmkg.loader as loader  # noqa: E402
from mmkg.store import embedded  # noqa: E402

IMPORTED = time.perf_counter()
steps: list[tuple[int, str, float]] = []  # (depth, what, seconds), in the order the steps ended
depth = 0


def timed(owner, name: str, label: str | None = None) -> None:
    """Replace `owner.name` by a wrapper that records its duration."""
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        global depth
        started = time.perf_counter()
        depth += 1
        try:
            return function(*args, **kwargs)
        finally:
            depth -= 1
            steps.append((depth, label or name, time.perf_counter() - started))

    setattr(owner, name, wrapper)


class TimedConnection(ladybug.Connection):
    def execute(self, query, *args, **kwargs):
        started = time.perf_counter()
        try:
            return super().execute(query, *args, **kwargs)
        finally:
            if isinstance(query, str) and not query.startswith(("CALL ", "CREATE ")):
                steps.append((depth, " ".join(query.split())[:88], time.perf_counter() - started))


class TimedDatabase(ladybug.Database):
    def __init__(self, path, *args, **kwargs):
        started = time.perf_counter()
        super().__init__(path, *args, **kwargs)
        mode = "read-only" if kwargs.get("read_only") else "read-write"
        steps.append((depth, f"open {Path(str(path)).name} {mode}", time.perf_counter() - started))

    def close(self):
        started = time.perf_counter()
        super().close()
        steps.append((depth, "close the database", time.perf_counter() - started))


def instrument() -> None:
    ladybug.Connection = TimedConnection  # the store imports ladybug inside its functions: it gets these
    ladybug.Database = TimedDatabase
    for name in ("read_study", "validate"):
        timed(loader, name)
    timed(graph, "study_graph")
    for name in ("_copy_file", "_delete_study", "_copy_all", "_check_counts", "_fsync"):
        timed(embedded, name)
    for name in ("_segment_counts", "_change_copy", "_rebuild", "_read_all", "_publish", "_collect"):
        timed(embedded.EmbeddedStore, name)
    timed(embedded._WritableFile, "reopen")


def store_size(store: Path) -> str:
    file, _ = embedded.current_database_file(store)
    with mmkg.open_store(store, read_only=True) as kg:
        segments = int(kg.cypher("MATCH (n:Segment) RETURN count(n) AS n")["n"].iloc[0])
        codings = int(kg.studies()["codings"].sum())
    return f"{file.stat().st_size / 1e6:,.0f} MB database file, {segments:,} segments, {codings:,} codings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("step", choices=("reload", "delete"))
    parser.add_argument("what", help="the codings CSV to re-load, or the study id to delete")
    args = parser.parse_args()
    before = store_size(args.store)
    instrument()
    started = time.perf_counter()
    kg = mmkg.open_store(args.store)
    opened = time.perf_counter()
    if args.step == "reload":
        kg.load(args.what)
    else:
        kg.delete_study(args.what)
    written = time.perf_counter()
    kg.close()
    print(f"{IMPORTED - STARTED:8.3f}  import mmkg and ladybug")
    print(f"{opened - started:8.3f}  open the store")
    for level, what, seconds in steps:
        print(f"{seconds:8.3f}  {'  ' * level}{what}")
    print(f"{written - opened:8.3f}  the {args.step} in all")
    print(f"store before: {before}; after: {store_size(args.store)}; load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
