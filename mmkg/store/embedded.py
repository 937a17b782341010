"""The embedded store: LadybugDB in a folder, written through `COPY`, all or nothing per load: in one
transaction, or (for large loads) into a new database file that replaces the old one by a rename."""
from __future__ import annotations

import glob
import os
import re
import shutil
import threading
from contextlib import closing
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mmkg.errors import QueryError, StoreError
from mmkg.graph import GraphRows
from mmkg.schema import NODE_BY_LABEL, NODES, REL_BY_TYPE, RELS, STUDY_NODE_LABELS, ladybug_ddl
from mmkg.store import Progress, StepTicker

DATABASE_FILE = "graph.lbug"
REBUILD_THRESHOLD = 10_000  # segments; see EmbeddedStore._should_rebuild
LARGE_COPY_ROWS = 50_000  # see _copy_all
REBUILD_FOLDER = "rebuild"  # a load that rebuilds the graph writes its new database file here first


class EmbeddedStore:
    """A LadybugDB database in folder `path` (created on first use)."""

    name = "ladybug"

    def __init__(self, path: str | Path, *, read_only: bool = False):
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._lock = threading.RLock()
        if read_only and not self._file.exists():
            raise StoreError(f"{self.path}: no mmkg store here yet (run `mmkg load --store {self.path}` first)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store folder ({exc.strerror})") from None
        self._open()
        if not read_only:
            for statement in ladybug_ddl():
                self._conn.execute(statement)
            shutil.rmtree(self._rebuild_file.parent, ignore_errors=True)  # left by a load killed before its swap
        elif not self._tables_exist():
            raise StoreError(f"{self.path}: store has no mmkg schema")

    @property
    def _file(self) -> Path:
        return self.path / DATABASE_FILE

    @property
    def _rebuild_file(self) -> Path:
        return self.path / REBUILD_FOLDER / DATABASE_FILE

    def _open(self) -> None:
        import ladybug

        try:
            self._db = ladybug.Database(str(self._file), read_only=self.read_only)
            self._conn = ladybug.Connection(self._db)
        except RuntimeError as exc:
            raise StoreError(f"{self.path}: cannot open the graph store ({exc})") from None

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
        """Remove the study's previous version, COPY its rows and check counts, atomically: in one transaction,
        or for large studies in a new database file that replaces the old one when complete."""
        return self._replace(study_id, rows, ontology, progress)

    def delete_study(self, study_id: str) -> None:
        self._replace(study_id, None, None, None)

    def _replace(self, study_id: str, rows: GraphRows | None, ontology: GraphRows | None,
                 progress: Progress | None) -> dict[str, int]:
        if self.read_only:
            raise StoreError("the store is open read-only")
        with self._lock:
            if self._should_rebuild(study_id, rows):
                return self._rebuild(study_id, rows, ontology, progress)
            writes = [r for r in (ontology, rows) if r is not None]
            tick = StepTicker(progress, len(list(_tables_to_write(writes))) + 1)
            self._conn.execute("BEGIN TRANSACTION")
            try:
                self._delete_study(study_id)
                if ontology is not None:
                    self._delete_ontology()
                tick(f"removed previous version of {study_id}")
                _copy_all(self._conn, writes, tick)
                counts = _check_counts(self._conn, study_id, rows, kept=None, ontology=ontology)
                self._conn.execute("COMMIT")
            except BaseException:
                _rollback(self._conn)
                raise
        return counts

    def _should_rebuild(self, study_id: str, rows: GraphRows | None) -> bool:
        """Rebuild the database file when the study replaced or the study written outweighs what the store
        keeps: LadybugDB deletes relationships one by one (~20k/s), and appending to tables is far slower
        than filling empty ones. Sizes are in segments, which scale with codings."""
        total = _count(self._conn, "MATCH (n:Segment) RETURN count(n) AS n", None)
        replaced = _count(self._conn, "MATCH (n:Segment) WHERE n.study_id = $s RETURN count(n) AS n", study_id)
        written = len(rows.nodes.get("Segment", ())) if rows is not None else 0
        kept = total - replaced
        return replaced > REBUILD_THRESHOLD or (written > REBUILD_THRESHOLD and written > kept)

    def _rebuild(self, study_id: str, rows: GraphRows | None, ontology: GraphRows | None,
                 progress: Progress | None) -> dict[str, int]:
        """Write what the store keeps and the new rows into a new database file, check it, then swap it in
        with one rename: a crash at any point leaves either the old file or the new one.

        (Dropping and recreating the tables inside one transaction is not safe: LadybugDB 0.22 reopens
        with every table empty when it is killed while checkpointing such a transaction.)"""
        import ladybug

        kept = self._read_all(except_study=study_id, with_ontology=ontology is None)
        writes = [r for r in (kept, ontology, rows) if r is not None]
        tick = StepTicker(progress, len(list(_tables_to_write(writes))) + 1)
        folder = self._rebuild_file.parent
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        try:
            with closing(ladybug.Database(str(self._rebuild_file))) as db, closing(ladybug.Connection(db)) as conn:
                for statement in ladybug_ddl():
                    conn.execute(statement)
                tick(f"new database file without the previous version of {study_id}")
                _copy_all(conn, writes, tick, own_transactions=True)
                counts = _check_counts(conn, study_id, rows, kept=kept, ontology=ontology)
            self._swap_in(self._rebuild_file)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return counts

    def _swap_in(self, new_file: Path) -> None:
        """Replace the live database file with `new_file` (closed and checkpointed) and reopen."""
        self._conn.close()
        self._db.close()
        try:
            leftovers = [p.name for p in _database_files(self._file) if p != self._file]
            leftovers += [p.name for p in _database_files(new_file) if p != new_file]
            if leftovers:
                raise StoreError(f"{self.path}: cannot swap in the rebuilt graph while {', '.join(leftovers)} "
                                 "exist; the store was left as it was")
            _fsync(new_file)
            os.replace(new_file, self._file)
        except OSError as exc:
            raise StoreError(f"{self._file}: cannot replace it with the rebuilt graph ({exc.strerror}); "
                             "the store was left as it was") from None
        finally:
            self._open()
        try:
            _fsync(self.path)  # makes the rename itself durable; directories cannot be opened on Windows
        except OSError:
            pass

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

    def _delete_study(self, study_id: str) -> None:
        for label in STUDY_NODE_LABELS:
            self._conn.execute(f"MATCH (n:{label}) WHERE n.study_id = $s DETACH DELETE n", {"s": study_id})

    def _delete_ontology(self) -> None:
        # Concept nodes carry MAPS_TO links from study codes; those are study data and reloaded with it,
        # so the ontology is only (re)loaded into a store that has none.
        for label in ("ExternalId", "Concept"):
            self._conn.execute(f"MATCH (n:{label}) DETACH DELETE n")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._db.close()


def _tables_to_write(parts: list[GraphRows]):
    """(table name, its properties, the parts' non-empty frames, 'nodes' or 'relationships') in schema order,
    nodes first, for every table that has rows."""
    for tables, schema, kind in ((lambda r: r.nodes, NODE_BY_LABEL, "nodes"),
                                 (lambda r: r.rels, REL_BY_TYPE, "relationships")):
        for name, table in schema.items():
            frames = [tables(part)[name] for part in parts if len(tables(part).get(name, ())) > 0]
            if frames:
                yield name, dict(table.properties), frames, kind


def _copy_all(conn, parts: list[GraphRows], tick, *, own_transactions: bool = False) -> None:
    """COPY every table of `parts`, one COPY per table (nodes first), and check the row count COPY reports.

    With `own_transactions` (a database file that is not live yet) consecutive small tables share a
    transaction and each large table commits by itself: LadybugDB checkpoints after every COPY that commits
    on its own (~60 ms even for a few rows), and a large COPY into an empty table is fastest that way."""
    in_transaction = False
    for name, properties, frames, kind in _tables_to_write(parts):
        rows = sum(map(len, frames))
        if own_transactions and in_transaction == (rows > LARGE_COPY_ROWS):
            conn.execute("COMMIT" if in_transaction else "BEGIN TRANSACTION")
            in_transaction = not in_transaction
        arrow = [_arrow_table(frame, properties) for frame in frames]
        _expect(_copy(conn, name, pa.concat_tables([a.select(arrow[0].column_names) for a in arrow])), rows, name)
        tick(f"{name}: {rows:,} {kind}")
    if in_transaction:
        conn.execute("COMMIT")


def _copy(conn, table: str, rows: pa.Table) -> int:
    try:
        report = conn.execute(f"COPY {table} FROM $rows", {"rows": rows}).get_as_df()
    except RuntimeError as exc:
        raise StoreError(f"writing {table} failed: {exc}; nothing was written") from None
    return _copied_count(report, table)


def _check_counts(conn, study_id: str, rows: GraphRows | None, *, kept: GraphRows | None,
                  ontology: GraphRows | None) -> dict[str, int]:
    """Check the nodes the store holds against what was written, before the commit; returns the study's counts.

    Relationships were checked against the counts COPY reported (`_copy_all`): counting relationships that
    are not committed yet scans them all (~0.4 s per million).
    """
    counts = {}
    if rows is not None:
        for label, frame in rows.nodes.items():
            found = _count(conn, f"MATCH (n:{label}) WHERE n.study_id = $s RETURN count(n) AS n", study_id)
            counts[label] = _expect(found, len(frame), label)
        counts.update({rel_type: len(frame) for rel_type, frame in rows.rels.items()})
    written = [r for r in (kept, ontology, rows) if r is not None]
    for node in NODES:
        if kept is not None or (ontology is not None and not node.study_scoped):
            expected = sum(len(r.nodes.get(node.label, ())) for r in written)
            _expect(_count(conn, f"MATCH (n:{node.label}) RETURN count(n) AS n", None), expected, node.label)
    return counts


def _database_files(database_file: Path) -> list[Path]:
    """The database file and the files LadybugDB keeps beside it (WAL, shadow pages, locks)."""
    return sorted(database_file.parent.glob(glob.escape(database_file.name) + "*"))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _count(conn, cypher: str, study_id: str | None) -> int:
    params = {"s": study_id} if study_id is not None else {}
    return int(conn.execute(cypher, params).get_as_df()["n"].iloc[0])


def _rollback(conn) -> None:
    try:
        conn.execute("ROLLBACK")
    except RuntimeError as exc:  # a failed statement has already ended the transaction
        if "no active transaction" not in str(exc).lower():
            raise


def _expect(found: int, expected: int, what: str) -> int:
    if found != expected:
        raise StoreError(f"after writing, the store holds {found:,} {what} where {expected:,} were written; "
                         "the load was rolled back")
    return found


ARROW_TYPES = {"STRING": pa.string(), "INT64": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}


def _copied_count(report: pd.DataFrame, table: str) -> int:
    """The row count in COPY's report, e.g. '1000 tuples have been copied to the Segment table.'."""
    match = re.match(r"\s*(\d+) tuples", str(report.iloc[0, 0]))
    if match is None:
        raise StoreError(f"writing {table}: unexpected COPY report {report.iloc[0, 0]!r}; the load was rolled back")
    return int(match.group(1))


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

