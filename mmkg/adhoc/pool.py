"""Worker processes for ad-hoc Cypher: spawned on demand, killed at the time limit, replaced when they die
or when the store publishes a new version.

The server neither parses nor runs ad-hoc Cypher itself. `WorkerPool.run` hands the client's statement to
an idle worker (`mmkg/adhoc/worker.py`, sandboxed), which checks it against the grammar and runs it on the
embedded store — or, in a pool without a database file, only returns the checked statement for Neo4j
(`WorkerPool.check`). The pool waits for the reply until the wall-clock limit and kills the worker if the
limit passes; a worker that crashes or exceeds its memory is replaced, and only its client sees an error.
"""
from __future__ import annotations

import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mmkg.adhoc.statement import CheckedStatement, Dialect
from mmkg.errors import BusyError, QueryError, QueryLimitError, QueryRefusedError, SandboxUnavailableError, StoreError

log = logging.getLogger("mmkg.adhoc")
KILL_GRACE_S = 1.0  # the engine's own timeout fires first; the kill is the limit that cannot be talked around
START_TIMEOUT_S = 60.0
START_ATTEMPTS = 3
MINIMUM_RUN_S = 0.1  # a request that waited for its worker until its deadline still gets this long
HEADER_LIMIT = 64 * 1024
# Workers die with the thread that started them (PR_SET_PDEATHSIG follows the parent thread, not the
# process), so every worker is started from this one thread, which lives as long as the server.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmkg-adhoc-spawner")
VersionSource = Callable[[], tuple[Path | None, str]]  # -> (database file to open now or None, its version)


@dataclass(frozen=True)
class Limits:
    """What one ad-hoc query may use; enforced by the worker (rows, bytes) and from outside it (time)."""

    timeout_s: float
    max_rows: int
    max_bytes: int


@dataclass(frozen=True)
class AdhocResult:
    columns: list[str]
    rows_json: bytes  # a JSON array of row objects, as the worker wrote it
    row_count: int
    truncated_by: str | None  # "rows", "bytes" or None


class _StartFailed(Exception):
    """A worker exited before it said it was ready."""


class _WorkerLost(Exception):
    """The worker died, broke the protocol or passed the deadline; it has been killed."""


class _Worker:
    def __init__(self, database_file: Path | None, version: str, config: dict, parser: bytes):
        self.version = version
        config = {**config, "database_file": str(database_file) if database_file else None}
        self.process = _SPAWNER.submit(
            subprocess.Popen, [sys.executable, "-I", "-m", "mmkg.adhoc.worker", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
            start_new_session=True).result()
        os.set_blocking(self.process.stdout.fileno(), False)
        try:
            self._send(parser)
            ready = json.loads(self._read_frame(time.monotonic() + START_TIMEOUT_S, HEADER_LIMIT))
        except _WorkerLost:
            raise StoreError(f"the ad-hoc Cypher worker for {database_file} did not start "
                             f"(exit code {self.process.returncode})") from None
        if not ready.get("ready") and ready.get("stage") == "database":
            self.kill()
            raise _StartFailed(ready.get("message", ""))
        if not ready.get("ready"):
            self.kill()
            raise SandboxUnavailableError(f"ad-hoc Cypher is unavailable here: its sandbox could not be set up "
                                          f"({ready.get('message')}); see docs/security.md")
        self.layers = ready["layers"]

    def request(self, message: dict, deadline: float, max_rows_bytes: int) -> tuple[dict, bytes]:
        self._send(json.dumps(message).encode("utf-8"))
        header = json.loads(self._read_frame(deadline, HEADER_LIMIT))
        rows = self._read_frame(deadline, max_rows_bytes + 1024)
        return header, rows

    def _send(self, payload: bytes) -> None:
        try:
            self.process.stdin.write(struct.pack(">I", len(payload)) + payload)
            self.process.stdin.flush()
        except OSError:
            self.kill()
            raise _WorkerLost("the worker is gone") from None

    def _read_frame(self, deadline: float, limit: int) -> bytes:
        head = self._read_exactly(4, deadline)
        (length,) = struct.unpack(">I", head)
        if length > limit:
            self.kill()
            raise _WorkerLost(f"the worker sent {length:,} bytes, over the limit of {limit:,}")
        return self._read_exactly(length, deadline)

    def _read_exactly(self, count: int, deadline: float) -> bytes:
        fd = self.process.stdout.fileno()
        chunks, received = [], 0
        while received < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise _WorkerLost("deadline")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(fd, min(count - received, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                self.kill()
                raise _WorkerLost("the worker exited")
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait on anything
            log.error("ad-hoc worker %s did not exit after SIGKILL", self.process.pid)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class WorkerPool:
    """Up to `size` sandboxed workers over the database file `version_source()` names (None: workers that
    only check statements); `parser` gives the serialized grammar the workers load."""

    def __init__(self, version_source: VersionSource, parser: Callable[[], bytes], *, size: int, memory_mb: int,
                 buffer_pool_mb: int):
        self.version_source, self.parser = version_source, parser
        self.size = size
        self.config = {"memory_mb": memory_mb, "buffer_pool_mb": buffer_pool_mb}
        self._condition = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._count = 0  # idle + busy + starting
        self._closed = False
        self.layers: dict | None = None

    def run(self, cypher: str, parameters: dict | None, dialect: Dialect, limits: Limits) -> AdhocResult:
        """Check `cypher` and run it in a worker within `limits`; mmkg errors for refusals, limits, failures."""
        header, payload = self._request(cypher, parameters, dialect, limits)
        return AdhocResult(columns=header["columns"], rows_json=payload, row_count=header["row_count"],
                           truncated_by=header["truncated"])

    def check(self, cypher: str, parameters: dict | None, dialect: Dialect, limits: Limits) -> CheckedStatement:
        """Check `cypher` in a worker (the pool has no database) and return it printed for `dialect`."""
        _, payload = self._request(cypher, parameters, dialect, limits)
        checked = json.loads(payload)
        return CheckedStatement(text=checked["text"], parameters=checked["parameters"])

    def _request(self, cypher: str, parameters: dict | None, dialect: Dialect, limits: Limits) -> tuple[dict, bytes]:
        # The time limit runs from the request's arrival: waiting for a free worker counts against it.
        deadline = time.monotonic() + limits.timeout_s
        worker = self._acquire(deadline)
        remaining = max(deadline - time.monotonic(), MINIMUM_RUN_S)
        try:
            header, payload = worker.request(
                {"cypher": cypher, "parameters": parameters or {}, "dialect": dialect,
                 "max_rows": limits.max_rows, "max_bytes": limits.max_bytes, "timeout_s": remaining},
                time.monotonic() + remaining + KILL_GRACE_S, limits.max_bytes)
        except _WorkerLost as lost:
            self._discard(worker)
            self._replace_in_background()
            if str(lost) == "deadline":
                raise QueryLimitError(f"query stopped after the time limit of {limits.timeout_s:g} s") from None
            raise QueryError("the query stopped the query engine (it crashed, or needed more than the "
                             f"memory limit of {self.config['memory_mb']} MiB); nothing else was affected") from None
        self._release(worker)
        if not header.get("ok"):
            kind, message = header.get("kind"), header.get("message", "")
            if kind == "refused":
                raise QueryRefusedError(message)
            if kind == "timeout":
                raise QueryLimitError(f"query stopped after the time limit of {limits.timeout_s:g} s")
            if kind == "memory" or "bad_alloc" in message:
                raise QueryLimitError(f"query stopped: it needed more than the memory limit of "
                                      f"{self.config['memory_mb']} MiB")
            raise QueryError(f"query failed: {message}")
        return header, payload

    def _acquire(self, deadline: float) -> _Worker:
        _, version = self.version_source()
        with self._condition:
            while True:
                if self._closed:
                    raise StoreError("the server is shutting down")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.version == version and worker.alive():
                        return worker
                    self._count -= 1
                    self._workers.discard(worker)
                    worker.kill()
                if self._count < self.size:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BusyError(f"all {self.size} ad-hoc Cypher workers were busy for the whole time limit; "
                                    "try again shortly")
                self._condition.wait(remaining)
        try:
            worker = self._start()
        except BaseException:
            self._discard(None)
            raise
        self.layers = worker.layers
        with self._condition:
            self._workers.add(worker)
        return worker

    def _start(self) -> _Worker:
        """A new worker on the version published now; read the version again if it was collected between
        reading and opening it (a writer published twice)."""
        for attempt in range(START_ATTEMPTS):
            database_file, version = self.version_source()
            try:
                return _Worker(database_file, version, self.config, self.parser())
            except _StartFailed as failed:
                if attempt == START_ATTEMPTS - 1 or database_file is None or database_file.exists():
                    raise StoreError(f"the ad-hoc Cypher worker did not start: {failed or 'it exited'}") from None
        raise AssertionError("unreachable")

    def _release(self, worker: _Worker) -> None:
        with self._condition:
            if self._closed:
                self._count -= 1
                self._workers.discard(worker)
                worker.kill()
            else:
                self._idle.append(worker)
            self._condition.notify()

    def _discard(self, worker: _Worker | None) -> None:
        with self._condition:
            self._count -= 1
            self._workers.discard(worker)
            self._condition.notify()

    def _replace_in_background(self) -> None:
        """Start a worker for the one just killed, so the next request does not wait for it to start."""
        with self._condition:
            if self._closed or self._count >= self.size:
                return
            self._count += 1

        def start() -> None:
            try:
                worker = self._start()
            except Exception:  # noqa: BLE001 - the next request starts one itself and reports why
                self._discard(None)
                return
            with self._condition:
                self._workers.add(worker)
            self._release(worker)

        threading.Thread(target=start, name="mmkg-adhoc-replace", daemon=True).start()

    def close(self) -> None:
        """Kill every worker; a query still running gets an error."""
        with self._condition:
            self._closed = True
            workers, self._workers, self._idle = list(self._workers), set(), []
            self._count = 0
            self._condition.notify_all()
        for worker in workers:
            worker.kill()
