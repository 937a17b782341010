"""End-to-end load of a codings CSV (read, validate, build graph rows, COPY, count checks) against a bare
LadybugDB COPY of the same rows.

    python benchmarks/load_bench.py [--sizes 10000 100000 1000000]

Target at 10^6 codings: >= 200,000 codings/s end to end.  The bare COPY writes the CSV's rows, already in a
DataFrame, into one node table with the CSV's columns: the store's raw speed on this machine.
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print(f"{'codings':>10} {'mmkg load s':>12} {'codings/s':>10} {'bare COPY s':>12} {'codings/s':>10}")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            frame = synthetic_codings(size)
            csv = tmp / "codings.csv"
            frame.to_csv(csv, index=False)
            with mmkg.open_store(tmp / "store") as kg:
                kg.load(None)  # the ontology and the founding study first, as in a user's store
                started = time.perf_counter()
                report = kg.load(csv)
                seconds = time.perf_counter() - started
            assert report.codings == len(frame)
            bare = bare_copy(frame, tmp)
            print(f"{size:>10,} {seconds:>12.2f} {size / seconds:>10,.0f} {bare:>12.2f} {size / bare:>10,.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
