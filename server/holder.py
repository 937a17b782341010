"""The graph the server holds open read-only, the lock requests read it under, how many read at once, and the
factory that opens it."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio

from mmkg.api import LoadReport, Mmkg, open_store
from mmkg.config import Settings
from mmkg.errors import MmkgError, StoreBusyError, StoreError, StoreUnavailableError
from mmkg.server.version_memo import fixed_version

KgFactory = Callable[[bool], Mmkg]  # read_only -> an open graph


class _ReadWriteLock:
    """Many readers or one writer."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._writing = True
            self._cond.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def read_slots() -> int:
    """How many graph reads a server process runs at once: its usable cores, at least 2. A read is mostly
    Python under the GIL, so more at once only make each slower (20 clients of the uncached founding
    co-occurrence: 23 req/s uncapped against 40 for one client; 44 with 2 slots), and a second slot keeps one
    slow query from holding up every other request. `mmkg serve --workers N` runs N processes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(2, cores)


class GraphHolder:
    """The server's graph, read-only. Each request reads one version from start to end; on the embedded
    store, a request that finds a newer published version (this server's upload or another process's load:
    one stat of the store's `CURRENT` file) opens it, and the version it replaces is closed once its last
    request has finished. Uploads are written one at a time, as new versions, while requests go on."""

    def __init__(self, factory: KgFactory):
        self._factory = factory
        self._kg: Mmkg | None = None
        self._readers: dict[int, int] = {}  # id(graph) -> requests reading it
        self._retired: dict[int, Mmkg] = {}  # replaced graphs still being read
        self._lock = _ReadWriteLock()  # close() waits for the requests in flight
        self._open_lock = threading.Lock()
        self._upload_lock = threading.Lock()
        self._uploads = 0
        self.cacheable = False
        self.read_limiter = anyio.CapacityLimiter(read_slots())  # requests beyond it wait for a slot

    @property
    def generation(self) -> Any:
        """Changes whenever what requests see may change: this server's uploads and, on the embedded
        store, the version published in the store folder (by any process)."""
        kg = self._kg
        latest = getattr(kg.store, "latest_version", None) if kg is not None else None
        if latest is None:
            return self._uploads
        try:
            return self._uploads, latest()
        except MmkgError:
            return self._uploads, None

    @contextmanager
    def reading(self) -> Iterator[Mmkg]:
        with self._lock.read():
            kg = self._check_out()
            try:
                yield kg
            finally:
                self._check_in(kg)

    def _check_out(self) -> Mmkg:
        with self._open_lock:
            kg = self._kg
            try:
                fresh = self._factory(True) if kg is None or _is_stale(kg) else None
            except StoreUnavailableError:
                raise
            except StoreError as exc:  # missing or unreadable: the server's store setting is at fault, not the request
                raise StoreUnavailableError(exc.message, details=exc.details) from None
            if fresh is not None:
                self.cacheable = fixed_version(fresh) is not None
                if kg is not None:
                    self._retire(kg)
                self._kg = kg = fresh
            self._readers[id(kg)] = self._readers.get(id(kg), 0) + 1
            return kg

    def _check_in(self, kg: Mmkg) -> None:
        with self._open_lock:
            self._readers[id(kg)] -= 1
            if self._readers[id(kg)] == 0:
                del self._readers[id(kg)]
                if self._retired.pop(id(kg), None) is not None:
                    kg.close()

    def _retire(self, kg: Mmkg) -> None:
        if self._readers.get(id(kg), 0):
            self._retired[id(kg)] = kg
        else:
            kg.close()

    def load(self, source: Path, study_id: str | None,
             prepare: Callable[[], Path] | None = None, replace: bool = True) -> LoadReport:
        """Load `source` as a new version under the store's writer lock; `prepare()` (unpacking a zip) runs
        under that lock too and returns the source to load. One upload at a time: a second one, or one that
        meets another process's load, is refused (`StoreBusyError`) without waiting."""
        if not self._upload_lock.acquire(blocking=False):
            raise StoreBusyError("another upload is being written to the store; send this one again when it "
                                 "has finished (nothing was written)")
        try:
            with self._factory(False) as writable:
                hold = getattr(writable.store, "writing", None)
                with hold() if hold is not None else nullcontext():
                    if prepare is not None:
                        source = prepare()
                    return writable.load(source, study_id=study_id, replace=replace)
        finally:
            self._uploads += 1
            self._upload_lock.release()

    def close(self) -> None:
        with self._lock.write(), self._open_lock:
            for kg in [self._kg, *self._retired.values()]:
                if kg is not None:
                    kg.close()
            self._kg = None
            self._retired.clear()


def _is_stale(kg: Mmkg) -> bool:
    """True when the graph's store has published a newer version than the one `kg` reads."""
    is_stale = getattr(kg.store, "is_stale", None)
    return bool(is_stale()) if is_stale is not None else False


def default_factory(settings: Settings, neo4j_uri: str | None = None) -> KgFactory:
    """Open the store the settings name (Neo4j when a URI is given or NEO4J_URI is set)."""
    return lambda read_only: open_store(settings.store, neo4j_uri=neo4j_uri, read_only=read_only)
