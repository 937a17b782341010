"""Where `mmkg load`'s peak memory comes from: RSS phase by phase, in one process.

    python benchmarks/load_phases.py CODINGS.csv [--floor]
    python benchmarks/load_phases.py --write 1000000 CODINGS.csv   # write synthetic_codings(N) there first

Runs `Mmkg.load` of the CSV into an empty store in this process with a thread sampling VmRSS every 10 ms. The
load's steps are found by wrapping the functions it calls (reader, codings reader, validation, graph rows, each
table's COPY or CREATE, the checkpoint); for each step it prints the RSS when the step began and ended, the
largest RSS sampled inside it (VmHWM is reset at every boundary through /proc/self/clear_refs, so a peak shorter
than a sample is still seen) and Arrow's allocated bytes at its end. `--floor` stops after opening the store:
the memory of the interpreter with what `mmkg load` imports and an open store, before a byte is read.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


class Phases:
    """The RSS of each step, sampled by a thread."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.stack: list[str] = []
        self.peak = 0
        self.began = time.perf_counter()
        self.lock = threading.Lock()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            rss = _status("VmRSS:")
            with self.lock:
                self.peak = max(self.peak, rss)
            time.sleep(0.01)

    def mark(self, name: str) -> None:
        """Close the step running now (if any) as `name` and start measuring the next."""
        import pyarrow as pa

        with self.lock:
            rss = _status("VmRSS:")
            peak = max(self.peak, _status("VmHWM:"), rss)
            self.rows.append((name, time.perf_counter() - self.began, rss, peak, pa.total_allocated_bytes()))
            self.peak = rss
            _reset_peak()

    def wrap(self, owner, attribute: str, name) -> None:
        """Mark the start and end of every call of `owner.attribute`; `name(*args)` names the step."""
        original = getattr(owner, attribute)

        def wrapped(*args, **kwargs):
            step = name(*args) if callable(name) else name
            self.mark(f"before {step}")
            try:
                return original(*args, **kwargs)
            finally:
                self.mark(step)

        setattr(owner, attribute, wrapped)

    def print(self, csv_bytes: int) -> None:
        print(f"{'step (ends)':<34} {'t s':>7} {'RSS MB':>8} {'peak MB':>8} {'×CSV':>5} {'Arrow MB':>9}")
        for name, seconds, rss, peak, arrow in self.rows:
            print(f"{name:<34} {seconds:>7.1f} {rss / 1e6:>8.0f} {peak / 1e6:>8.0f} {peak / csv_bytes:>5.2f} "
                  f"{arrow / 1e6:>9.0f}")
        top = max(row[3] for row in self.rows)
        print(f"peak RSS {top / 1e6:,.0f} MB = {top / csv_bytes:.2f}× the CSV ({csv_bytes / 1e6:,.1f} MB); "
              f"VmHWM since the last mark {_status('VmHWM:') / 1e6:,.0f} MB; load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--write", type=int, help="write synthetic_codings(N) to CSV and stop")
    parser.add_argument("--floor", action="store_true", help="stop after opening the store")
    args = parser.parse_args()
    if args.write:
        from mmkg.synthetic import synthetic_codings

        synthetic_codings(args.write).to_csv(args.csv, index=False)
        return
    phases = Phases()
    phases.mark("interpreter")
    import mmkg.api
    import mmkg.graph
    import mmkg.loader
    import mmkg.loader.codings_csv as codings_csv
    import mmkg.store.embedded as embedded

    phases.mark("import mmkg.api")
    phases.wrap(codings_csv, "read_csv_text", "CSV parse")
    phases.wrap(mmkg.loader, "read_study", "reader (parse + tables)")
    validate = mmkg.loader.validate
    type(mmkg.loader).validate = property(lambda self: _validating)  # the package property the load reads

    def _validating(tables):
        phases.mark("before validation")
        try:
            return validate(tables)
        finally:
            phases.mark("validation")

    phases.wrap(mmkg.graph, "study_graph", "graph rows")
    phases.wrap(embedded, "_copy", lambda conn, table, rows: f"COPY {table} ({rows.num_rows:,})")
    phases.wrap(embedded, "_create", lambda conn, label, rows: f"CREATE {label} ({rows.num_rows:,})")
    phases.wrap(embedded.EmbeddedStore, "_publish", "checkpoint done; publish")
    with tempfile.TemporaryDirectory() as folder:
        kg = mmkg.api.open_store(Path(folder) / "store")
        kg.studies()
        phases.mark("store open")
        if not args.floor:
            import pandas  # noqa: F401  what a load imports anyway
            import pyarrow.csv  # noqa: F401

            phases.mark("pandas, pyarrow.csv")
            report = kg.load(args.csv)
            phases.mark("load returned")
            print(f"{report.codings:,} codings in {report.seconds:.1f} s", file=sys.stderr)
        kg.close()
    phases.print(args.csv.stat().st_size)


if __name__ == "__main__":
    main()
