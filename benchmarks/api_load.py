"""Load test: C concurrent keep-alive clients for T seconds against the co-occurrence endpoint of `mmkg serve`
(one uvicorn worker, loopback only) on the shipped study; prints req/s, p50, p99 and errors.

    python benchmarks/api_load.py [--clients 20] [--seconds 10] [--workers 1] [--gzip]
                                  [--path /api/queries/cooccurrence]

`--gzip` asks for a compressed body, as browsers, httpx and requests do.

Starts its own server on a temporary copy-free store (the shipped study is loaded into a fresh temp folder).
Targets: >= 1,000 req/s, p99 < 50 ms, 0 errors.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(port: int, path: str, stop_at: float, latencies: list[float], errors: list[str],
                 extra_headers: str) -> None:
    """One keep-alive HTTP/1.1 connection sending GETs back to back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n{extra_headers}\r\n".encode()
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"HTTP {status}")
    except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def load(port: int, path: str, clients: int, seconds: float,
               extra_headers: str) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(client(port, path, started + seconds, latencies, errors, extra_headers)
                           for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--path", default="/api/queries/cooccurrence?study_id=founding&unit=segment")
    parser.add_argument("--workers", type=int, default=1, help="`mmkg serve --workers`")
    parser.add_argument("--gzip", action="store_true", help="ask for gzip, as browsers, httpx and requests do")
    args = parser.parse_args()

    store = Path(tempfile.mkdtemp(prefix="mmkg-bench-")) / "store"
    port = free_port()
    mmkg_cli = Path(sys.executable).with_name("mmkg")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMKG_", "NEO4J_"))}
    command = [str(mmkg_cli), "serve", "--host", "127.0.0.1", "--port", str(port), "--store", str(store),
               "--workers", str(args.workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                warm = httpx.get(f"http://127.0.0.1:{port}{args.path}", timeout=30)
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    print(server.stderr.read().decode(), file=sys.stderr)
                    return 1
                time.sleep(0.2)
        print(f"{args.path}: HTTP {warm.status_code}, {len(warm.content):,} bytes per response")
        try:  # the client must not be the bottleneck: use uvloop when uvicorn[standard] brought it
            import uvloop

            run = uvloop.run
        except ImportError:
            run = asyncio.run
        extra_headers = "Accept-Encoding: gzip\r\n" if args.gzip else ""
        latencies, errors, elapsed = run(load(port, args.path, args.clients, args.seconds, extra_headers))
    finally:
        server.terminate()
        server.wait(timeout=10)
    rate = len(latencies) / elapsed
    p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    print(f"{args.clients} clients x {args.seconds:g} s, {args.workers} worker(s): {len(latencies):,} requests, "
          f"{rate:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {len(errors)}")
    for error in sorted(set(errors))[:5]:
        print(f"  error: {error}")
    ok = rate >= 1000 and p99 < 50 and not errors
    print("targets (>= 1,000 req/s, p99 < 50 ms, 0 errors):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
