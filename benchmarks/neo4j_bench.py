"""Neo4j beside the embedded store, in the same run: a load of 10^5 and 10^6 synthetic codings (codings/s)
and the co-occurrence query on the loaded study.

    bash tools/neo4j-test-server/run.sh
    NEO4J_USER=neo4j NEO4J_PASSWORD=mmkg-test-password \\
        python benchmarks/neo4j_bench.py --uri bolt://127.0.0.1:7687 [--sizes 100000 1000000]

Each load goes into a store that holds the ontology and the founding study (the Neo4j database is emptied
first: use a throw-away server).  The load is end to end — `kg.load(codings.csv)`: read, validate, build the
graph rows, write (Neo4j: staged batches, the switch, the count checks), as a user runs it.  The co-occurrence
query is `kg.query("cooccurrence", study_id="synthetic")` (segment unit, every metric), best of `--repeat`;
`equal` says whether both stores found the same pairs with the same n_ab.  `load avg` is the machine's
1-minute load average when the row's load began (2 cores here: above 2, the store waited for CPU); with
`--server-pid` (the test server's, e.g. `$(cat tools/neo4j-test-server/server.pid)`), `server cpu s` is the CPU
time Neo4j spent on the load, which contention inflates less than the wall time, and `server codings/cpu-s` the
codings Neo4j wrote per second of its own CPU (the rate a load would reach with a free core for the server and
nothing else to wait for).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import mmkg
from mmkg.synthetic import synthetic_codings


def timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def server_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) the process `pid` has used so far (0 without a pid)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(size: int, uri: str, folder: Path, repeat: int, server_pid: int | None) -> list[dict]:
    codings = folder / f"codings-{size}.csv"
    synthetic_codings(size).to_csv(codings, index=False)
    rows, pairs = [], {}
    for name in ("embedded", "neo4j"):
        kg = mmkg.open_store(folder / f"store-{size}") if name == "embedded" else mmkg.open_store(neo4j_uri=uri)
        try:
            if name == "neo4j":
                kg.store.clear()
            kg.load()
            load_avg, cpu_before = os.getloadavg()[0], server_cpu_s(server_pid)
            seconds, report = timed(lambda: kg.load(codings))
            server_s = server_cpu_s(server_pid) - cpu_before if name == "neo4j" else None
            query_s, frame = min((timed(lambda: kg.query("cooccurrence", study_id="synthetic")) for _ in range(repeat)),
                                 key=lambda t: t[0])
            pairs[name] = dict(zip(zip(frame["code_a"], frame["code_b"]), frame["n_ab"]))
            rows.append({"codings": report.codings, "store": name, "load_s": seconds,
                         "rate": report.codings / seconds, "cooccurrence_s": query_s, "pairs": len(frame),
                         "load_avg": load_avg, "server_s": server_s})
        finally:
            kg.close()
    for row in rows:
        row["equal"] = pairs["embedded"] == pairs["neo4j"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", default="bolt://127.0.0.1:7687")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2, help="co-occurrence runs per store (best is reported)")
    parser.add_argument("--server-pid", type=int, help="the Neo4j server's PID on this machine (its CPU time)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [row for size in args.sizes for row in bench(size, args.uri, Path(folder), args.repeat, args.server_pid)]
    print("| codings | store | load s | codings/s | server cpu s | server codings/cpu-s | co-occurrence s | pairs "
          "| equal | load avg |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        server = "" if r["server_s"] is None else f"{r['server_s']:.1f}"
        per_cpu_s = f"{r['codings'] / r['server_s']:,.0f}" if r["server_s"] else ""
        print(f"| {r['codings']:,} | {r['store']} | {r['load_s']:.2f} | {r['rate']:,.0f} | {server} | {per_cpu_s} "
              f"| {r['cooccurrence_s']:.2f} | {r['pairs']:,} | {r['equal']} | {r['load_avg']:.1f} |")


if __name__ == "__main__":
    main()
