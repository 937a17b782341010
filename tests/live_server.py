"""Start `mmkg serve` for real (uvicorn on a free loopback port) and stop it again; used by the live tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MMKG = Path(sys.executable).with_name("mmkg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(store: Path, env: dict[str, str] | None = None, timeout_s: float = 60.0,
                args: tuple[str, ...] = ()) -> Iterator[str]:
    """Run `mmkg serve --store STORE [ARGS]` on a free port; yield its base URL once it answers."""
    port = free_port()
    command = [str(MMKG), "serve", "--host", "127.0.0.1", "--port", str(port), "--store", str(store), *args]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MMKG_", "NEO4J_"))}
    environment.update(env or {})
    log = open(Path(store).parent / f"serve-{port}.log", "w+")  # noqa: SIM115 - the server writes it until it stops
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    live_server.process = process  # type: ignore[attr-defined]  (for tests that crash the server)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"mmkg serve exited with {process.returncode}:\n{log.read()}")
            try:
                if httpx.get(f"{base}/api/studies", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mmkg serve did not answer on {base} within {timeout_s} s")
            time.sleep(0.1)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.seek(0)
        server_log = log.read()
        log.close()
        live_server.last_log = server_log  # type: ignore[attr-defined]
