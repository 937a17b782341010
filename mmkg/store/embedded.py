"""The embedded store: LadybugDB in a folder, written in one transaction per load through `COPY`."""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mmkg.errors import QueryError, StoreError
from mmkg.graph import GraphRows
from mmkg.schema import NODE_BY_LABEL, NODES, REL_BY_TYPE, RELS, STUDY_NODE_LABELS, ladybug_ddl
from mmkg.store import Progress, StepTicker

DATABASE_FILE = "graph.lbug"
REBUILD_THRESHOLD = 20_000  # segments + codings of the replaced study above which tables are rebuilt


class EmbeddedStore:
    """A LadybugDB database in folder `path` (created on first use)."""

    name = "ladybug"

    def __init__(self, path: str | Path, *, read_only: bool = False):
        import ladybug

        self.path = Path(path).expanduser()
        self.read_only = read_only
        database_file = self.path / DATABASE_FILE
        if read_only and not database_file.exists():
            raise StoreError(f"{self.path}: no mmkg store here yet (run `mmkg load --store {self.path}` first)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db = ladybug.Database(str(database_file), read_only=read_only)
            self._conn = ladybug.Connection(self._db)
        except RuntimeError as exc:
            raise StoreError(f"{self.path}: cannot open the graph store ({exc})") from None
        self._lock = threading.RLock()
        if not read_only:
            for statement in ladybug_ddl():
                self._conn.execute(statement)
        elif not self._tables_exist():
            raise StoreError(f"{self.path}: store has no mmkg schema")

    def _tables_exist(self) -> bool:
        tables = self._conn.execute("CALL show_tables() RETURN name").get_as_df()
        return {n.label for n in NODES} <= set(tables["name"])

    # --- reads -------------------------------------------------------------------------------------------
    def execute(self, cypher: str, params: dict | None = None) -> pd.DataFrame:
        """Run one statement; a failure becomes `QueryError` with the store's own message."""
        with self._lock:
            try:
                result = self._conn.execute(cypher, params or {})
            except RuntimeError as exc:
                raise QueryError(f"query failed: {exc}") from None
            frame = result.get_as_df()
        return frame

    def execute_read(self, cypher: str, params: dict | None = None, *, timeout_s: float | None = None,
                     max_rows: int | None = None) -> pd.DataFrame:
        """Run a statement that must not write: needs a read-only store, which refuses writes itself."""
        if not self.read_only:
            raise StoreError("execute_read needs a store opened read-only")
        with self._lock:
            if timeout_s:
                self._conn.set_query_timeout(int(timeout_s * 1000))
            try:
                result = self._conn.execute(cypher, params or {})
                frame = _take(result, max_rows)
            except RuntimeError as exc:
                message = str(exc)
                if "interrupted" in message.lower() or "timeout" in message.lower():
                    raise QueryError(f"query stopped after the time limit of {timeout_s} s") from None
                raise QueryError(f"query refused or failed: {message}") from None
            finally:
                if timeout_s:
                    self._conn.set_query_timeout(0)
        return frame

    def has_ontology(self) -> bool:
        return int(self.execute("MATCH (c:Concept) RETURN count(c) AS n")["n"].iloc[0]) > 0

    # --- writes ------------------------------------------------------------------------------------------
    def replace_study(self, study_id: str, rows: GraphRows, ontology: GraphRows | None = None,
                      progress: Progress | None = None) -> dict[str, int]:
        """Remove the study's previous version, COPY its rows and check counts, all in one transaction."""
        return self._replace(study_id, rows, ontology, progress)

    def delete_study(self, study_id: str) -> None:
        self._replace(study_id, None, None, None)

    def _replace(self, study_id: str, rows: GraphRows | None, ontology: GraphRows | None,
                 progress: Progress | None) -> dict[str, int]:
        if self.read_only:
            raise StoreError("the store is open read-only")
        with self._lock:
            rebuild = self._study_size(study_id) > REBUILD_THRESHOLD
            kept = self._read_all(except_study=study_id, with_ontology=ontology is None) if rebuild else None
            steps = sum(len(r.nodes) + len(r.rels) for r in (rows, ontology, kept) if r is not None) + 1
            tick = StepTicker(progress, steps)

            self._conn.execute("BEGIN TRANSACTION")
            try:
                if rebuild:
                    # LadybugDB deletes relationships one by one (~20k/s); for a large study it is far
                    # faster to drop every table and copy back what the other studies hold.
                    self._recreate_tables()
                    self._copy_all(kept, tick)
                else:
                    self._delete_study(study_id)
                    if ontology is not None:
                        self._delete_ontology()
                tick(f"removed previous version of {study_id}")
                if ontology is not None:
                    self._copy_all(ontology, tick)
                counts = {}
                if rows is not None:
                    self._copy_all(rows, tick)
                    counts = self._check_counts(study_id, rows, ontology)
                if kept is not None:
                    self._check_totals(kept, rows, ontology)
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return counts

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except RuntimeError as exc:  # a failed statement has already ended the transaction
            if "no active transaction" not in str(exc).lower():
                raise

    def _study_size(self, study_id: str) -> int:
        return self._count("MATCH (a:Segment)-[r:CODED_AS]->() WHERE a.study_id = $s RETURN count(r) AS n",
                           study_id) + self._count("MATCH (n:Segment) WHERE n.study_id = $s RETURN count(n) AS n",
                                                   study_id)

    def _recreate_tables(self) -> None:
        for rel in RELS:
            self._conn.execute(f"DROP TABLE {rel.type}")
        for node in NODES:
            self._conn.execute(f"DROP TABLE {node.label}")
        for statement in ladybug_ddl():
            self._conn.execute(statement)

    def _read_all(self, except_study: str, with_ontology: bool) -> GraphRows:
        """Every row the store holds outside one study (and the ontology's, when it is to be kept)."""
        kept = GraphRows()
        for node in NODES:
            if not node.study_scoped and not with_ontology:
                continue
            where = "WHERE n.study_id <> $s" if node.study_scoped else ""
            columns = ", ".join(f"n.{c} AS {c}" for c in node.columns)
            kept.nodes[node.label] = self._frame(f"MATCH (n:{node.label}) {where} RETURN {columns}",
                                                 except_study if node.study_scoped else None)
        for rel in RELS:
            source = NODE_BY_LABEL[rel.source]
            if not source.study_scoped and not with_ontology:
                continue
            where = "WHERE a.study_id <> $s" if source.study_scoped else ""
            columns = ", ".join(["a.uid AS `from`", "b.uid AS `to`"] + [f"r.{p} AS {p}" for p, _ in rel.properties])
            kept.rels[rel.type] = self._frame(
                f"MATCH (a:{rel.source})-[r:{rel.type}]->(b:{rel.target}) {where} RETURN {columns}",
                except_study if source.study_scoped else None)
        return kept

    def _frame(self, cypher: str, study_id: str | None) -> pd.DataFrame:
        return self._conn.execute(cypher, {"s": study_id} if study_id is not None else {}).get_as_df()

    def _check_totals(self, kept: GraphRows, rows: GraphRows | None, ontology: GraphRows | None) -> None:
        for node in NODES:
            expected = sum(len(r.nodes.get(node.label, ())) for r in (kept, rows, ontology) if r is not None)
            _expect(self._count(f"MATCH (n:{node.label}) RETURN count(n) AS n", None), expected, node.label)
        for rel in RELS:
            expected = sum(len(r.rels.get(rel.type, ())) for r in (kept, rows, ontology) if r is not None)
            _expect(self._count(f"MATCH ()-[r:{rel.type}]->() RETURN count(r) AS n", None), expected, rel.type)

    def _delete_study(self, study_id: str) -> None:
        for label in STUDY_NODE_LABELS:
            self._conn.execute(f"MATCH (n:{label}) WHERE n.study_id = $s DETACH DELETE n", {"s": study_id})

    def _delete_ontology(self) -> None:
        # Concept nodes carry MAPS_TO links from study codes; those are study data and reloaded with it,
        # so the ontology is only (re)loaded into a store that has none.
        for label in ("ExternalId", "Concept"):
            self._conn.execute(f"MATCH (n:{label}) DETACH DELETE n")

    def _copy_all(self, rows: GraphRows, tick) -> None:
        for label, frame in rows.nodes.items():
            self._copy(label, frame, NODE_BY_LABEL[label].properties)
            tick(f"{label}: {len(frame):,} nodes")
        for rel_type, frame in rows.rels.items():
            self._copy(rel_type, frame, REL_BY_TYPE[rel_type].properties)
            tick(f"{rel_type}: {len(frame):,} relationships")

    def _copy(self, table: str, frame: pd.DataFrame, properties) -> None:
        if len(frame) == 0:
            return
        frame = _arrow_table(frame, dict(properties))
        try:
            self._conn.execute(f"COPY {table} FROM $frame", {"frame": frame})
        except RuntimeError as exc:
            raise StoreError(f"writing {table} failed: {exc}; nothing was written") from None

    def _check_counts(self, study_id: str, rows: GraphRows, ontology: GraphRows | None) -> dict[str, int]:
        counts = {}
        for label, frame in rows.nodes.items():
            found = self._count(f"MATCH (n:{label}) WHERE n.study_id = $s RETURN count(n) AS n", study_id)
            counts[label] = _expect(found, len(frame), label)
        for rel in RELS:
            if rel.type not in rows.rels:
                continue
            found = self._count(f"MATCH (a:{rel.source})-[r:{rel.type}]->() WHERE a.study_id = $s "
                                "RETURN count(r) AS n", study_id)
            counts[rel.type] = _expect(found, len(rows.rels[rel.type]), rel.type)
        if ontology is not None:
            for label, frame in ontology.nodes.items():
                _expect(self._count(f"MATCH (n:{label}) RETURN count(n) AS n", None), len(frame), label)
            for rel_type, frame in ontology.rels.items():
                rel = REL_BY_TYPE[rel_type]
                _expect(self._count(f"MATCH (:{rel.source})-[r:{rel_type}]->(:{rel.target}) RETURN count(r) AS n",
                                    None), len(frame), rel_type)
        return counts

    def _count(self, cypher: str, study_id: str | None) -> int:
        params = {"s": study_id} if study_id is not None else {}
        return int(self._conn.execute(cypher, params).get_as_df()["n"].iloc[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._db.close()


def _expect(found: int, expected: int, what: str) -> int:
    if found != expected:
        raise StoreError(f"after writing, the store holds {found:,} {what} where {expected:,} were written; "
                         "the load was rolled back")
    return found


ARROW_TYPES = {"STRING": pa.string(), "INT64": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}


def _arrow_table(frame: pd.DataFrame, types: dict[str, str]) -> pa.Table:
    """The frame as an Arrow table typed like the store's properties; missing values become nulls.

    LadybugDB scans Arrow tables natively, which avoids converting string columns to Python objects.
    """
    columns = {}
    for column in frame.columns:
        arrow_type = ARROW_TYPES[types.get(column, "STRING")]
        series = frame[column]
        if arrow_type == pa.float64():
            series = pd.to_numeric(series)
        elif arrow_type == pa.int64() and series.dtype == object:
            series = pd.array(series, dtype="Int64")
        columns[column] = pa.Array.from_pandas(series, type=arrow_type)
    return pa.table(columns)


def _take(result, max_rows: int | None) -> pd.DataFrame:
    if max_rows is None:
        return result.get_as_df()
    columns = result.get_column_names()
    rows = []
    while result.has_next() and len(rows) < max_rows:
        rows.append(result.get_next())
    return pd.DataFrame(rows, columns=columns)

