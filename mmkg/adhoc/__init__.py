"""Ad-hoc Cypher from strangers: checked against a read-only grammar and allowlist, then run where it
cannot reach files, the network or other clients' state (threat model: docs/security.md).

    runner = AdhocCypher(settings)
    result = runner.run(store, "MATCH (c:Code) RETURN count(c) AS n", {}, client="127.0.0.1")
    result.rows_json   # b'[{"n": 121}]'

On the embedded store every statement runs in a sandboxed worker process (`mmkg.adhoc.pool`); on Neo4j
in a read transaction with a server-side timeout, rows and bytes counted while they stream.
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

from mmkg.adhoc.pool import AdhocResult, Limits, WorkerPool
from mmkg.adhoc.statement import CheckedStatement, Dialect, check_read_statement
from mmkg.config import Settings
from mmkg.errors import BusyError, QueryRefusedError

__all__ = ["AdhocCypher", "AdhocResult", "Limits", "check_read_statement", "CheckedStatement"]


class AdhocCypher:
    """The one way mmkg runs ad-hoc Cypher for a client (the HTTP API's `POST /api/cypher`)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pools: dict[Path, WorkerPool] = {}
        self._lock = threading.Lock()
        self._neo4j_clients: dict[str, int] = {}

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
        dialect: Dialect = "neo4j" if store.name == "neo4j" else "ladybug"
        statement = _checked(cypher, dialect).with_parameters(parameters)
        if dialect == "neo4j":
            return self._run_neo4j(store, statement, limits, client)
        return self._pool(store.path).run(statement, limits, client)

    def _pool(self, store_path: Path) -> WorkerPool:
        with self._lock:
            pool = self._pools.get(store_path)
            if pool is None:
                settings = self.settings
                pool = WorkerPool(lambda: database_version(store_path), size=settings.cypher_workers,
                                  per_client=settings.cypher_per_client, memory_mb=settings.cypher_max_memory_mb,
                                  buffer_pool_mb=settings.cypher_buffer_pool_mb,
                                  queue_timeout_s=settings.cypher_timeout_s)
                self._pools[store_path] = pool
            return pool

    def _run_neo4j(self, store, statement: CheckedStatement, limits: Limits, client: str) -> AdhocResult:
        from mmkg.adhoc.worker import encode_rows

        with self._lock:
            if self._neo4j_clients.get(client, 0) >= self.settings.cypher_per_client:
                raise BusyError(f"at most {self.settings.cypher_per_client} ad-hoc queries per client run at "
                                "once; wait for the running one to finish")
            self._neo4j_clients[client] = self._neo4j_clients.get(client, 0) + 1
        try:
            with store.read_records(statement.text, statement.parameters, timeout_s=limits.timeout_s) as (keys, rows):
                encoded, count, truncated = encode_rows(keys, rows, limits.max_rows, limits.max_bytes)
        finally:
            with self._lock:
                self._neo4j_clients[client] -= 1
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


@lru_cache(maxsize=512)
def _checked(cypher: str, dialect: Dialect) -> CheckedStatement:
    """Parse results, reused for repeated statements (the parameters are added per request)."""
    return check_read_statement(cypher, None, dialect=dialect)


def database_version(store_path: Path) -> tuple[Path, str]:
    """The database file of the embedded store in `store_path` and a token that changes when it is replaced."""
    from mmkg.store.embedded import DATABASE_FILE

    database_file = Path(store_path) / DATABASE_FILE
    stat = os.stat(database_file)
    return database_file, f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"
