"""Uncached HTTP latency of a named query against the same query in process, on the founding study and at 10^6.

    python benchmarks/http_latency.py [--sizes 1000000] [--repeat 5]

For each store (the shipped founding study; a synthetic study of SIZE codings beside it, `cooccurrence_bench`'s
generator): `mmkg serve` in its own process on a loopback port, and in this process the same store opened with
`mmkg.open_store(read_only=True)`.  Measured in the same run, best of `--repeat`, one request at a time:

- **HTTP**: `GET /api/queries/cooccurrence?study_id=S` — every request bypasses the server's response cache (the
  parameter is sent twice, which the cache refuses to key on and the route reads as one), so the server runs the
  query, serialises and sends it each time; asked as curl and urllib ask (no compression) and as browsers, httpx
  and requests ask (`Accept-Encoding: gzip`: the server also compresses the body, the client inflates it);
- **in process** (the baseline): `kg.query("cooccurrence", study_id=S)`;
- the index page `/` (never cached) beside the in-process `kg.query("studies")` it shows;
- two uncached requests at once against one alone: with reads in parallel the pair takes less than two alone
  (on 2 busy cores, parallel reads can only show as far as the machine has a core free).

Check: the rows the server sends (either way) equal the in-process rows (same columns, values and order; the API
writes floats with 10 significant decimals).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import mmkg

sys.path.insert(0, str(Path(__file__).parent))
from cooccurrence_bench import best_of, overlapping_codings  # noqa: E402

MMKG = str(Path(sys.executable).with_name("mmkg"))  # the installed command, as a user runs it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, compressed: bool = False) -> bytes:
    """The body of a GET; `compressed` asks for gzip, as browsers do, and inflates what comes."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if compressed else {})
    with urllib.request.urlopen(request, timeout=600) as response:
        body = response.read()
        return gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body


def same_rows(body: bytes, frame) -> bool:
    sent = json.loads(body)
    if sent["columns"] != list(frame.columns) or len(sent["rows"]) != len(frame):
        return False
    for got, want in zip(sent["rows"], frame.to_dict("records")):
        for column in frame.columns:
            a, b = got[column], want[column]
            if isinstance(b, float) and (b != b or math.isinf(b)):
                if a is not None and a == a:
                    return False
            elif isinstance(b, float):
                if a is None or not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-10):
                    return False
            elif a != (b.item() if hasattr(b, "item") else b):
                return False
    return True


def measure(store: Path, study: str, label: str, repeat: int) -> None:
    port = free_port()
    server = subprocess.Popen([MMKG, "serve", "--store", str(store),
                               "--port", str(port)], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                get(f"{base}/api/studies")
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("mmkg serve stopped before it answered") from None
                time.sleep(0.2)
        url = f"{base}/api/queries/cooccurrence?study_id={study}&study_id={study}"
        with mmkg.open_store(store, read_only=True) as kg:
            get(url)  # the server's first request opens the store; not counted
            t_http, _, body = best_of(repeat, lambda: get(url))
            t_gzip, _, gzip_body = best_of(repeat, lambda: get(url, compressed=True))
            t_local, _, frame = best_of(repeat, lambda: kg.query("cooccurrence", study_id=study))
            t_index, _, _ = best_of(repeat, lambda: get(f"{base}/"))
            t_studies, _, _ = best_of(repeat, lambda: kg.query("studies"))
        equal = same_rows(body, frame) and same_rows(gzip_body, frame)

        def pair() -> None:
            threads = [threading.Thread(target=get, args=(url,)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        t_pair, _, _ = best_of(max(2, repeat // 2), pair)
        load = os.getloadavg()[0]
        print(f"{label:>22} {len(frame):>6} {t_http:>7.3f} {t_local:>7.3f} {t_http / t_local:>6.2f} "
              f"{t_gzip:>7.3f} {t_gzip / t_local:>6.2f} "
              f"{t_index:>7.3f} {t_studies:>8.3f} {t_pair:>7.3f} {t_pair / t_http:>6.2f} {load:>5.1f}  {equal}",
              flush=True)
        if not equal:
            raise SystemExit(f"{label}: the server's rows differ from the in-process rows")
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'store':>22} {'pairs':>6} {'HTTP s':>7} {'local s':>7} {'ratio':>6} {'gzip s':>7} {'ratio':>6} "
          f"{'index s':>7} {'studies s':>8} "
          f"{'2 at once':>7} {'×one':>6} {'load':>5}  rows equal  (best of {args.repeat})")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        with mmkg.open_store(store) as kg:
            kg.load(None)
        measure(store, "founding", "founding", args.repeat)
        for size in args.sizes:
            csv = Path(tmp) / f"codings-{size}.csv"
            overlapping_codings(size).to_csv(csv, index=False)
            subprocess.run([MMKG, "load", str(csv), "--store", str(store)],
                           check=True, stdout=subprocess.DEVNULL)
            measure(store, "synthetic", f"synthetic {size:,}", args.repeat)


if __name__ == "__main__":
    main()
