"""The Neo4j 5 store: the same graph and queries on a Neo4j server, through the official `neo4j` driver.

- One driver per store, created in `Neo4jStore.connect` and injected; every session names its database.
- Constraints and indexes come from `mmkg.schema.neo4j_schema()` (the schema LadybugDB's tables come
  from) and are created idempotently (`IF NOT EXISTS`) when a store is opened read-write.
- A load is ONE write transaction: delete the study's previous version, `UNWIND $rows … MERGE` on `uid`
  in batches of `BATCH_ROWS`, check the counts; any failure rolls everything back, so Neo4j stays as it was.
- Reads that must not write (`execute_read`, behind `/api/cypher`) run in a read transaction with a
  server-side timeout: Neo4j itself refuses writes there.

Every statement this module sends on its own behalf is built by the `*_statement` functions below and
listed by `statements()`, which the Cypher linter test checks with Neo4j's own linter.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import pandas as pd

from mmkg.errors import ConfigError, QueryError, QueryLimitError, StoreError
from mmkg.graph import GraphRows
from mmkg.schema import (BOOL, FLOAT, INT, NODE_BY_LABEL, NODES, ONTOLOGY_NODE_LABELS, REL_BY_TYPE, RELS,
                         STUDY_NODE_LABELS, NodeTable, RelTable, neo4j_schema)
from mmkg.store import Progress, StepTicker
from mmkg.store.dialect import to_neo4j

BATCH_ROWS = 5_000
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
# Properties that tell apart parallel relationships between the same two nodes (MERGE keys besides the
# endpoints): one segment is coded with one code by several coders.
REL_KEYS: dict[str, tuple[str, ...]] = {"CODED_AS": ("coder",)}

# ------------------------------------------------------------------------------------------ statements
PING = "RETURN 1 AS n"
HAS_ONTOLOGY = "MATCH (c:Concept) RETURN count(c) AS n"
CLEAR = "MATCH (n) DETACH DELETE n"


def delete_study_statement(label: str) -> str:
    return f"MATCH (n:{label}) WHERE n.study_id = $study_id DETACH DELETE n"


def delete_label_statement(label: str) -> str:
    return f"MATCH (n:{label}) DETACH DELETE n"


def merge_nodes_statement(node: NodeTable) -> str:
    """`UNWIND $rows MERGE` on `uid`, then set every schema property (a null removes it)."""
    assignments = ", ".join(f"n.{name} = row.{name}" for name, _ in node.properties)
    return f"UNWIND $rows AS row MERGE (n:{node.label} {{uid: row.uid}}) SET {assignments}"


def merge_rels_statement(rel: RelTable) -> str:
    """`UNWIND $rows MERGE` between the two endpoints found by `uid` (plus the type's key properties)."""
    keys = REL_KEYS.get(rel.type, ())
    key_map = " {" + ", ".join(f"{k}: row.{k}" for k in keys) + "}" if keys else ""
    rest = [name for name, _ in rel.properties if name not in keys]
    assignments = " SET " + ", ".join(f"r.{name} = row.{name}" for name in rest) if rest else ""
    return (f"UNWIND $rows AS row MATCH (a:{rel.source} {{uid: row.source_uid}}) "
            f"MATCH (b:{rel.target} {{uid: row.target_uid}}) MERGE (a)-[r:{rel.type}{key_map}]->(b){assignments}")


def count_study_nodes_statement(label: str) -> str:
    return f"MATCH (n:{label}) WHERE n.study_id = $study_id RETURN count(n) AS n"


def count_study_rels_statement(rel: RelTable) -> str:
    return (f"MATCH (a:{rel.source})-[r:{rel.type}]->(:{rel.target}) WHERE a.study_id = $study_id "
            "RETURN count(r) AS n")


def count_nodes_statement(label: str) -> str:
    return f"MATCH (n:{label}) RETURN count(n) AS n"


def count_rels_statement(rel: RelTable) -> str:
    return f"MATCH (:{rel.source})-[r:{rel.type}]->(:{rel.target}) RETURN count(r) AS n"


def statements() -> list[str]:
    """Every statement the store sends on its own behalf (schema, load, delete, counts, clear)."""
    study_rels = [r for r in RELS if NODE_BY_LABEL[r.source].study_scoped]
    ontology_rels = [r for r in RELS if not NODE_BY_LABEL[r.source].study_scoped]
    return [*neo4j_schema(), PING, HAS_ONTOLOGY, CLEAR,
            *(delete_study_statement(label) for label in STUDY_NODE_LABELS),
            *(delete_label_statement(label) for label in ONTOLOGY_NODE_LABELS),
            *(merge_nodes_statement(node) for node in NODES),
            *(merge_rels_statement(rel) for rel in RELS),
            *(count_study_nodes_statement(label) for label in STUDY_NODE_LABELS),
            *(count_study_rels_statement(rel) for rel in study_rels),
            *(count_nodes_statement(label) for label in ONTOLOGY_NODE_LABELS),
            *(count_rels_statement(rel) for rel in ontology_rels)]


# ------------------------------------------------------------------------------------------ the store
class Neo4jStore:
    """A Neo4j 5 database behind the `GraphStore` interface."""

    name = "neo4j"

    def __init__(self, driver, database: str, *, read_only: bool = False):
        self._driver = driver
        self.database = database
        self.read_only = read_only
        self.sent: list[str] = []  # the store's own statements, in order (checked against `statements()`)

    @classmethod
    def connect(cls, uri: str, user: str, password: str, database: str = "neo4j", *,
                read_only: bool = False) -> "Neo4jStore":
        """Create the one driver, check that the server answers, and (read-write) create the schema."""
        import neo4j
        from neo4j.exceptions import AuthError, ConfigurationError, Neo4jError, ServiceUnavailable

        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in BOLT_SCHEMES:
            raise ConfigError(f"NEO4J_URI '{uri}' is not a Bolt URI: use bolt://host:7687 or neo4j://host:7687 "
                              f"(schemes: {', '.join(BOLT_SCHEMES)}; mmkg needs Bolt for read transactions "
                              "and time limits)")
        try:
            driver = neo4j.GraphDatabase.driver(uri, auth=(user, password))
        except (ValueError, ConfigurationError) as exc:
            raise ConfigError(f"NEO4J_URI '{uri}' is not a Neo4j URI ({exc}); use bolt://host:7687 or "
                              "neo4j://host:7687") from None
        store = cls(driver, database, read_only=read_only)
        try:
            driver.verify_connectivity()
            with store._session(read=True) as session:
                session.execute_read(lambda tx: store._single(tx, PING))
        except AuthError:
            driver.close()
            raise StoreError(f"Neo4j at {uri} refused user '{user}': check NEO4J_USER and NEO4J_PASSWORD") from None
        except (ServiceUnavailable, OSError) as exc:
            driver.close()
            raise StoreError(f"cannot reach Neo4j at {uri} ({exc}); is the server running "
                             "(docker compose up -d neo4j)?") from None
        except Neo4jError as exc:
            driver.close()
            raise StoreError(f"Neo4j at {uri} refused database '{database}': {exc.message}") from None
        if not read_only:
            store.create_schema()
        return store

    def _session(self, read: bool = False):
        import neo4j

        mode = neo4j.READ_ACCESS if read or self.read_only else neo4j.WRITE_ACCESS
        return self._driver.session(database=self.database, default_access_mode=mode)

    def create_schema(self) -> None:
        """Uniqueness constraints on every `uid` and the indexes the schema names (idempotent)."""
        with self._session() as session:
            for statement in neo4j_schema():
                self._consume(session.run, statement)

    # --- reads -------------------------------------------------------------------------------------------
    def execute(self, cypher: str, params: dict | None = None) -> pd.DataFrame:
        """Run one statement (in a read transaction when the store is read-only)."""
        text = to_neo4j(cypher)

        def work(tx) -> pd.DataFrame:
            return _frame(tx.run(text, params or {}), None)

        with self._session() as session:
            run = session.execute_read if self.read_only else session.execute_write
            return self._call(run, work)

    def execute_read(self, cypher: str, params: dict | None = None, *, timeout_s: float | None = None,
                     max_rows: int | None = None) -> pd.DataFrame:
        """Run a statement in an explicit read transaction with a server-side timeout: Neo4j itself refuses
        writes there and stops the statement at the time limit (no client-side retry)."""
        text = to_neo4j(cypher)

        def work() -> pd.DataFrame:
            with self._session(read=True) as session, session.begin_transaction(timeout=timeout_s) as transaction:
                return _frame(transaction.run(text, params or {}), max_rows)

        return self._call(work, timeout_s=timeout_s)

    @contextmanager
    def read_records(self, cypher: str, params: dict | None = None, *, timeout_s: float):
        """Yield (column names, an iterator of row value lists) of one statement run as written in a read
        transaction with a server-side timeout; rows stream from the server as they are consumed."""
        try:
            with self._session(read=True) as session, session.begin_transaction(timeout=timeout_s) as transaction:
                result = transaction.run(cypher, params or {})
                keys = list(result.keys())
                yield keys, ([_graph_value(v) for v in record.values()] for record in result)
        except (StoreError, QueryError):
            raise
        except Exception as exc:  # noqa: BLE001 - translated below
            translated = _translate(exc, timeout_s)
            if translated is None:
                raise
            raise translated from None

    def has_ontology(self) -> bool:
        with self._session(read=True) as session:
            return self._call(session.execute_read, lambda tx: self._single(tx, HAS_ONTOLOGY)) > 0

    # --- writes ------------------------------------------------------------------------------------------
    def replace_study(self, study_id: str, rows: GraphRows, ontology: GraphRows | None = None,
                      progress: Progress | None = None) -> dict[str, int]:
        """Delete the study's previous version, MERGE its rows (and the ontology's) in batches and check
        the counts, all in one write transaction: a failure leaves Neo4j as it was."""
        self._require_writable()
        parts = [part for part in (ontology, rows) if part is not None]
        steps = sum(_batch_count(frame) for part in parts for frame in [*part.nodes.values(), *part.rels.values()]) + 2

        def work(tx) -> dict[str, int]:
            tick = StepTicker(progress, steps)

            self._delete_study(tx, study_id)
            if ontology is not None:
                for label in ONTOLOGY_NODE_LABELS:
                    self._run(tx, delete_label_statement(label))
            tick(f"removed previous version of {study_id}")
            for part in parts:
                self._write(tx, part, tick)
            counts = self._check_counts(tx, study_id, rows, ontology)
            tick("checked counts")
            return counts

        with self._session() as session:
            return self._call(session.execute_write, work)

    def delete_study(self, study_id: str) -> None:
        self._require_writable()
        with self._session() as session:
            self._call(session.execute_write, lambda tx: self._delete_study(tx, study_id))

    def clear(self) -> None:
        """Delete every node and relationship of the database (the Neo4j test tier starts from empty)."""
        self._require_writable()
        with self._session() as session:
            self._call(session.execute_write, lambda tx: self._run(tx, CLEAR))

    def close(self) -> None:
        self._driver.close()

    # --- internals ---------------------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError("the store is open read-only")

    def _delete_study(self, tx, study_id: str) -> None:
        for label in STUDY_NODE_LABELS:
            self._run(tx, delete_study_statement(label), study_id=study_id)

    def _write(self, tx, part: GraphRows, tick: Callable[[str], None]) -> None:
        for label, frame in part.nodes.items():
            node = NODE_BY_LABEL[label]
            statement = merge_nodes_statement(node)
            for batch in _batches(frame, dict(node.properties)):
                self._run(tx, statement, rows=batch)
                tick(f"{label}: {len(frame):,} nodes")
        for rel_type, frame in part.rels.items():
            rel = REL_BY_TYPE[rel_type]
            statement = merge_rels_statement(rel)
            renamed = frame.rename(columns={"from": "source_uid", "to": "target_uid"})
            for batch in _batches(renamed, dict(rel.properties)):
                self._run(tx, statement, rows=batch)
                tick(f"{rel_type}: {len(frame):,} relationships")

    def _check_counts(self, tx, study_id: str, rows: GraphRows, ontology: GraphRows | None) -> dict[str, int]:
        counts = {}
        for label, frame in rows.nodes.items():
            counts[label] = _expect(self._single(tx, count_study_nodes_statement(label), study_id=study_id),
                                    len(frame), label)
        for rel_type, frame in rows.rels.items():
            counts[rel_type] = _expect(self._single(tx, count_study_rels_statement(REL_BY_TYPE[rel_type]),
                                                    study_id=study_id), len(frame), rel_type)
        if ontology is not None:
            for label, frame in ontology.nodes.items():
                _expect(self._single(tx, count_nodes_statement(label)), len(frame), label)
            for rel_type, frame in ontology.rels.items():
                _expect(self._single(tx, count_rels_statement(REL_BY_TYPE[rel_type])), len(frame), rel_type)
        return counts

    def _run(self, tx, statement: str, **params) -> None:
        self.sent.append(statement)
        tx.run(statement, params).consume()

    def _single(self, tx, statement: str, **params) -> int:
        self.sent.append(statement)
        return int(tx.run(statement, params).single(strict=True)["n"])

    def _consume(self, run, statement: str) -> None:
        self.sent.append(statement)
        try:
            run(statement).consume()
        except Exception as exc:  # noqa: BLE001 - translated below
            raise _translate(exc, None) from None

    def _call(self, run, *args, timeout_s: float | None = None):
        """`run(*args)` (e.g. a session's execute_write with a transaction function); driver and server
        errors become mmkg errors."""
        try:
            return run(*args)
        except (StoreError, QueryError):
            raise
        except Exception as exc:  # noqa: BLE001 - translated below
            translated = _translate(exc, timeout_s)
            if translated is None:
                raise
            raise translated from None


# ------------------------------------------------------------------------------------------ helpers
def _translate(exc: Exception, timeout_s: float | None):
    """The mmkg error for a driver or server error (None: not a Neo4j error)."""
    from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

    if isinstance(exc, (ServiceUnavailable, SessionExpired)):
        return StoreError(f"lost the connection to Neo4j ({exc}); nothing was changed by this call")
    if isinstance(exc, Neo4jError):
        code = exc.code or ""
        if "TimedOut" in code or (timeout_s and "Terminated" in code):
            return QueryLimitError(f"query stopped after the time limit of {timeout_s} s")
        if code.endswith("AccessMode") or "ForbiddenOnReadOnlyDatabase" in code:
            return QueryError(f"query refused: writes are not allowed here ({exc.message})")
        if code.startswith("Neo.ClientError"):
            return QueryError(f"query failed: {exc.message}")
        return StoreError(f"Neo4j failed: {exc.message} ({code})")
    if isinstance(exc, DriverError):
        return StoreError(f"Neo4j driver error: {exc}")
    return None


def _graph_value(value):
    """Nodes, relationships and paths as dicts shaped like LadybugDB's (`_ID`, `_LABEL`, properties)."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"_ID": value.element_id, "_LABEL": next(iter(value.labels), None), **dict(value)}
    if isinstance(value, Relationship):
        return {"_SRC": value.start_node.element_id if value.start_node else None,
                "_DST": value.end_node.element_id if value.end_node else None,
                "_LABEL": value.type, "_ID": value.element_id, **dict(value)}
    if isinstance(value, Path):
        return {"_NODES": [_graph_value(n) for n in value.nodes], "_RELS": [_graph_value(r) for r in value.relationships]}
    if isinstance(value, list):
        return [_graph_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _graph_value(v) for k, v in value.items()}
    if hasattr(value, "iso_format"):  # neo4j.time types
        return value.iso_format()
    return value


def _frame(result, max_rows: int | None) -> pd.DataFrame:
    keys = list(result.keys())
    records = result.fetch(max_rows) if max_rows is not None else list(result)
    return pd.DataFrame([[_graph_value(v) for v in record.values()] for record in records], columns=keys)


def _convert(kind: str):
    cast = {INT: int, FLOAT: float, BOOL: bool}.get(kind, str)

    def convert(value):
        if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
            return None
        return cast(value)
    return convert


def _batches(frame: pd.DataFrame, types: dict[str, str]) -> Iterator[list[dict]]:
    """Rows as plain Python dicts (driver-safe types, None for missing), `BATCH_ROWS` at a time."""
    columns = list(frame.columns)
    converters = [_convert(types.get(column, "STRING")) for column in columns]
    for start in range(0, len(frame), BATCH_ROWS):
        chunk = frame.iloc[start:start + BATCH_ROWS]
        yield [{column: convert(value) for column, convert, value in zip(columns, converters, row)}
               for row in chunk.itertuples(index=False, name=None)]


def _batch_count(frame: pd.DataFrame) -> int:
    return -(-len(frame) // BATCH_ROWS)


def _expect(found: int, expected: int, what: str) -> int:
    if found != expected:
        raise StoreError(f"after writing, Neo4j holds {found:,} {what} where {expected:,} were written; "
                         "the load was rolled back")
    return found
