"""`AdhocCypher`: the one way mmkg runs a stranger's Cypher (threat model: docs/security.md).

    runner = AdhocCypher(settings)
    result = runner.run(store, "MATCH (c:Code) RETURN count(c) AS n", {}, runner.limits(None, None),
                        client="127.0.0.1")
    result.rows_json   # b'[{"n": 121}]'

Every statement is checked in a sandboxed worker process (`mmkg.adhoc.pool`). On the embedded store the
worker also runs it; on Neo4j the server runs the checked statement in a read transaction with a
server-side timeout, rows and bytes counted while they stream.
"""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from mmkg.adhoc.pool import AdhocResult, Limits, WorkerPool
from mmkg.adhoc.statement import parser_bytes
from mmkg.config import Settings
from mmkg.errors import BusyError, QueryRefusedError
from mmkg.store.embedded import current_database_file

__all__ = ["AdhocCypher", "AdhocResult", "Limits"]
NEO4J_CHECKER = Path("neo4j")  # the key of the pool whose workers only check statements


class AdhocCypher:
    """The one way mmkg runs ad-hoc Cypher for a client (the HTTP API's `POST /api/cypher`)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pools: dict[Path, WorkerPool] = {}
        self._clients: Counter[str] = Counter()
        self._lock = threading.Lock()

    def limits(self, max_rows: int | None, timeout_s: float | None) -> Limits:
        """The request's own limits, capped by the settings."""
        settings = self.settings
        return Limits(timeout_s=min(timeout_s or settings.cypher_timeout_s, settings.cypher_timeout_s),
                      max_rows=min(max_rows or settings.cypher_max_rows, settings.cypher_max_rows),
                      max_bytes=settings.cypher_max_bytes)

    def run(self, store, cypher: str, parameters: dict | None, limits: Limits, *, client: str) -> AdhocResult:
        """Check `cypher` for `store`'s dialect and run it within `limits` for `client` (an address)."""
        if len(cypher) > self.settings.cypher_max_chars:
            raise QueryRefusedError(f"the statement has {len(cypher):,} characters; the limit is "
                                    f"{self.settings.cypher_max_chars:,} (MMKG_CYPHER_MAX_CHARS)")
        with self._client_slot(client):
            if store.name != "neo4j":
                return self._pool(store.path).run(cypher, parameters, "ladybug", limits)
            checked = self._pool(NEO4J_CHECKER).check(cypher, parameters, "neo4j", limits)
            return self._run_neo4j(store, checked.text, checked.parameters, limits)

    @contextmanager
    def _client_slot(self, client: str):
        """At most `MMKG_CYPHER_PER_CLIENT` requests of one client address at a time."""
        cap = self.settings.cypher_per_client
        with self._lock:
            if self._clients[client] >= cap:
                raise BusyError(f"at most {cap} ad-hoc quer{'y' if cap == 1 else 'ies'} per client run at once; "
                                "wait for the running one to finish")
            self._clients[client] += 1
        try:
            yield
        finally:
            with self._lock:
                self._clients[client] -= 1
                if not self._clients[client]:
                    del self._clients[client]

    def _pool(self, key: Path) -> WorkerPool:
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                settings = self.settings
                source = (lambda: (None, "checker")) if key == NEO4J_CHECKER else (lambda: current_database_file(key))
                pool = WorkerPool(source, _parser_bytes, size=settings.cypher_workers,
                                  memory_mb=settings.cypher_max_memory_mb,
                                  buffer_pool_mb=settings.cypher_buffer_pool_mb)
                self._pools[key] = pool
            return pool

    @staticmethod
    def _run_neo4j(store, text: str, parameters: dict, limits: Limits) -> AdhocResult:
        from mmkg.adhoc.worker import encode_rows

        with store.read_records(text, parameters, timeout_s=limits.timeout_s) as (keys, rows):
            encoded, count, truncated = encode_rows(keys, rows, limits.max_rows, limits.max_bytes)
        return AdhocResult(columns=list(keys), rows_json=encoded, row_count=count, truncated_by=truncated)

    def sandbox_layers(self) -> dict | None:
        """What the last started worker reported of its sandbox (None before the first worker)."""
        with self._lock:
            return next((p.layers for p in self._pools.values() if p.layers), None)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


@lru_cache(maxsize=1)
def _parser_bytes() -> bytes:
    """The grammar's parser, built once in this process and handed to every worker."""
    return parser_bytes()


