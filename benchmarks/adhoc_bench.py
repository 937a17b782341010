"""Ad-hoc Cypher through the sandboxed workers against the in-process path it replaced, in the same run,
and named-query GETs with and without clients looping slow ad-hoc queries.

    python benchmarks/adhoc_bench.py [--repeat 300] [--seconds 8]

1. Library level, founding study, one simple read (`MATCH (k:Code) ... RETURN count(k)`):
   *in-process* = what `POST /api/cypher` did before: the server's read-only store runs the text on its
   own connection and the frame (cut at the row limit) becomes JSON;
   *worker* = `AdhocCypher.run`: the worker parses and checks the statement, runs it, encodes the rows.
2. HTTP (`mmkg serve`, one uvicorn worker, loopback): p50 of the ad-hoc POST; p50 of an uncached named
   query GET alone and while 4 clients loop a statement that runs to the time limit (target: ≤ 2×).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SIMPLE = "MATCH (k:Code) WHERE k.study_id = 'founding' RETURN count(k) AS n"
SLOW = "MATCH (a:Segment), (b:Segment), (c:Segment) WHERE a.id + b.id + c.id = 'x' RETURN count(*) AS n"


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(function, repeat: int) -> list[float]:
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        function(i)
        samples.append(time.perf_counter() - started)
    return samples


def library_level(store: Path, repeat: int) -> dict[str, float]:
    from mmkg.adhoc.runner import AdhocCypher
    from mmkg.config import Settings
    from mmkg.store.embedded import EmbeddedStore

    settings = Settings(store=store)
    embedded = EmbeddedStore(store, read_only=True)
    runner = AdhocCypher(settings)
    limits = runner.limits(None, None)

    def in_process(_):
        frame = embedded.execute(SIMPLE, {})
        frame.iloc[:limits.max_rows].to_json(orient="records")

    def worker(_):
        runner.run(embedded, SIMPLE, {}, limits, client="bench")

    worker(0)  # starts the worker and builds the grammar once
    results = {}
    for name, function in (("in-process", in_process), ("worker", worker)):
        results[name] = p50_ms(timed(function, repeat))
    runner.close()
    embedded.close()
    return results


def http_level(store: Path, repeat: int, seconds: float) -> dict[str, float]:
    import httpx
    from live_server import live_server

    results = {}
    with live_server(store, env={"MMKG_CYPHER_PER_CLIENT": "8", "MMKG_CYPHER_TIMEOUT_S": "2"}) as base:  # noqa: SIM117
        with httpx.Client(base_url=base, timeout=30) as http:
            http.post("/api/cypher", json={"cypher": SIMPLE})
            results["ad-hoc POST"] = p50_ms(timed(lambda i: http.post("/api/cypher", json={"cypher": SIMPLE}), repeat))

            def named(i):
                response = http.get("/api/queries/code_frequencies", params={"study_id": "founding", "bust": i})
                assert response.status_code == 200, response.text

            results["named GET, uncached, alone"] = p50_ms(timed(named, repeat))
            stop = time.monotonic() + seconds
            slow_done = []

            def hammer():
                with httpx.Client(base_url=base, timeout=30) as own:
                    while time.monotonic() < stop:
                        slow_done.append(own.post("/api/cypher", json={"cypher": SLOW}).status_code)

            threads = [threading.Thread(target=hammer) for _ in range(4)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            under_load = []
            while time.monotonic() < stop:
                under_load += timed(lambda i: named(len(under_load) + repeat + i), 1)
            for thread in threads:
                thread.join()
            results["named GET, uncached, 4 slow ad-hoc clients"] = p50_ms(under_load)
            results["slow ad-hoc queries answered"] = float(len(slow_done))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()

    import mmkg

    store = Path(tempfile.mkdtemp(prefix="mmkg-adhoc-bench-")) / "store"
    with mmkg.open_store(store) as kg:
        kg.load()
    library = library_level(store, args.repeat)
    http = http_level(store, args.repeat, args.seconds)
    print(f"library level, p50 of {args.repeat} requests (ms):")
    for name, value in library.items():
        print(f"  {name:<14} {value:7.2f}  ({value / library['in-process']:.2f}x in-process)")
    print("HTTP, p50 (ms):")
    for name, value in http.items():
        print(f"  {name:<45} {value:7.2f}" if "answered" not in name else f"  {name:<45} {value:7.0f}")
    ratio = http["named GET, uncached, 4 slow ad-hoc clients"] / http["named GET, uncached, alone"]
    print(f"named GET slow-down under slow ad-hoc clients: {ratio:.2f}x (target <= 2x)")
    print(f"worker vs in-process: {library['worker'] / library['in-process']:.2f}x (target <= 2x)")
    print(json.dumps({"library_ms": library, "http_ms": http}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
