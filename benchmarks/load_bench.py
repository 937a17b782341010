"""End-to-end load of a codings CSV (read, validate, build graph rows, COPY, count checks) against a bare
LadybugDB COPY of the same rows.

    python benchmarks/load_bench.py [--sizes 10000 100000 1000000] [--repeat 3]

Target at 10^6 codings: >= 200,000 codings/s end to end.  The bare COPY writes the CSV's rows, already in a
DataFrame, into one node table with the CSV's columns: the store's raw speed on this machine.  Each size is
measured `--repeat` times, alternating mmkg and bare COPY; the median is printed with the slowest and fastest
rate.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ladybug
import pandas as pd

import mmkg
from mmkg.synthetic import synthetic_codings


def bare_copy(frame: pd.DataFrame, folder: Path) -> float:
    db = ladybug.Database(str(folder / "bare.lbug"))
    conn = ladybug.Connection(db)
    columns = ", ".join(f"`{c}` STRING" for c in frame.columns if c != "row")
    conn.execute(f"CREATE NODE TABLE Coding(row INT64, {columns}, PRIMARY KEY(row))")
    frame = frame.astype(str).assign(row=range(len(frame)))[["row"] + [c for c in frame.columns]]
    started = time.perf_counter()
    conn.execute("COPY Coding FROM $frame", {"frame": frame})
    seconds = time.perf_counter() - started
    conn.close()
    db.close()
    return seconds


def mmkg_load(frame: pd.DataFrame, folder: Path) -> float:
    """Seconds for `kg.load` of the frame as a codings CSV into a store that already holds the founding study."""
    csv = folder / "codings.csv"
    frame.to_csv(csv, index=False)
    with mmkg.open_store(folder / "store") as kg:
        kg.load(None)  # the ontology and the founding study first, as in a user's store
        started = time.perf_counter()
        report = kg.load(csv)
        seconds = time.perf_counter() - started
    assert report.codings == len(frame)
    return seconds


def rates(size: int, seconds: list[float]) -> str:
    """Median, slowest and fastest codings/s."""
    per_second = sorted(size / s for s in seconds)
    return f"{size / statistics.median(seconds):>10,.0f} {per_second[0]:>10,.0f} {per_second[-1]:>10,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'codings':>10} {'mmkg load s':>12} {'codings/s':>10} {'slowest':>10} {'fastest':>10} "
          f"{'bare COPY s':>12} {'codings/s':>10} {'slowest':>10} {'fastest':>10}   (median of {args.repeat})")
    for size in args.sizes:
        frame = synthetic_codings(size)
        loads, copies = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                loads.append(mmkg_load(frame, Path(tmp)))
            with tempfile.TemporaryDirectory() as tmp:
                copies.append(bare_copy(frame, Path(tmp)))
        print(f"{size:>10,} {statistics.median(loads):>12.2f} {rates(size, loads)} "
              f"{statistics.median(copies):>12.2f} {rates(size, copies)}", flush=True)


if __name__ == "__main__":
    main()
