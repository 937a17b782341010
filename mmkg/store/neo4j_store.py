"""The Neo4j 5 store: the same graph and queries on a Neo4j server, through the official `neo4j` driver.

- One driver per store, created in `Neo4jStore.connect` and injected; every session names its database.
- Constraints and indexes come from `mmkg.store.ddl.neo4j_schema()` (the schema LadybugDB's tables come
  from) plus the staging schema below, created idempotently when a store is opened read-write.
- Reads that must not write (`execute_read`, behind `/api/cypher`) run in a read transaction with a
  server-side timeout: Neo4j itself refuses writes there.

A load is staged, so that no transaction grows with the study and readers see the old version until the
new one is complete:

1. *Begin*: a `MmkgLoad` marker (load id, study, state 'staging') and a `MmkgLease` node; a lease
   transaction holds the lease node's write lock for as long as the load runs, so another writer can tell
   a running load (lock held) from one whose process died (Neo4j rolls its transaction back and frees it).
2. *Sweep*: staging of loads whose lease is free, staging without a marker and retired versions are
   deleted in bounded transactions (this is how the next write cleans up after a failed or killed load).
3. *Stage*: the new version is written in batches bounded by rows and by parameter bytes, one transaction
   each.  Small labels (study, participants, attributes, sources, codes, groups, coders) get a staging
   label (`StagedParticipant`, … plus `MmkgStaging` and `mmkg_load`) instead of their own; the bulk label
   (`Segment`, see `mmkg.schema.NodeTable.bulk`) is written with its own label but only under staged
   sources, with its codings, so no reader's pattern reaches it: named queries reach segments through
   sources or codes.
4. *Switch*: one transaction checks the staged counts (and, for `write_new_study`, that the study is not
   in the store: the check and the write are one transaction, and the uniqueness constraint on `Study.uid`
   makes the later of two concurrent switches of one id fail), merges the ontology (when the store has none, decided
   in this transaction), links the codes to concepts, relabels the current version's small nodes
   `MmkgRetired` and the staged ones to their labels.  Its size grows with codes and participants, never
   with segments or codings.  A lost connection during its COMMIT (`IncompleteCommit`) is resolved by
   reading the marker's state afterwards.
5. *Retire*: the old version (retired small nodes and the segments under them) is deleted in bounded
   transactions; if that is interrupted, the next write finishes it.

Every statement this module sends on its own behalf is built by the `*_statement` functions below and
listed by `statements()`, which the Cypher linter test checks with Neo4j's own linter.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mmkg.errors import ConfigError, MmkgError, QueryError, QueryLimitError, StoreError, StudyExistsError
from mmkg.models import GraphRows
from mmkg.schema import BOOL, FLOAT, INTEGERS, NODE_BY_LABEL, NODES, RELS, SCHEMA_VERSION, NodeTable, RelTable
from mmkg.store import Progress, StepTicker
from mmkg.store.ddl import neo4j_schema
from mmkg.store.dialect import to_neo4j
from mmkg.store.keys import neo4j_form as neo4j_key_form

log = logging.getLogger(__name__)

# A staged batch holds at most this many rows (for the bulk label: nodes, each with its codings) and this
# many bytes of parameters; the test server allows 256 MiB of transaction memory, which a batch of this
# size stays far below (Neo4j needs a few hundred bytes of transaction state per node or relationship).
BATCH_ROWS = 10_000
BATCH_BYTES = 4 * 1024 * 1024
SWEEP_ROWS = 10_000  # nodes deleted per transaction when retired versions or abandoned staging are removed
LEASE_PROBE_S = 1.0  # how long a writer waits for another load's lease lock before calling that load alive
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")

STAGING = "MmkgStaging"  # every staged node of a small label; its `mmkg_load` names the load
RETIRED = "MmkgRetired"  # the small nodes of a replaced or deleted version, until they are deleted
LOAD = "MmkgLoad"  # one per load in progress: load_id, study_id, state ('staging' | 'switched'), started_at
LEASE = "MmkgLease"  # one per load in progress; its lock is held by the load's lease transaction
SCHEMA_STAMP = "MmkgSchema"  # one node: the schema version the graph was written with (see `check_schema_stamp`)
INTERNAL_LABELS = (STAGING, RETIRED, LOAD, LEASE, SCHEMA_STAMP)
INTERNAL_PROPERTIES = ("mmkg_load", "load_id", "state", "started_at", "held", "version", "written_at")

BULK = next(n for n in NODES if n.bulk)
STUDY = "Study"  # the node that says a study is in the store (its uid is the study id)
BULK_PARENT = next(r for r in RELS if r.target == BULK.label)  # HAS_SEGMENT: each segment has one source
BULK_CHILD = next(r for r in RELS if r.source == BULK.label)  # CODED_AS: written with the segment
SMALL_NODES = [n for n in NODES if n.study_scoped and not n.bulk]
ONTOLOGY_NODES = [n for n in NODES if not n.study_scoped]
CONCEPT_LINKS = [r for r in RELS if NODE_BY_LABEL[r.source].study_scoped and not NODE_BY_LABEL[r.target].study_scoped]
ONTOLOGY_RELS = [r for r in RELS if not NODE_BY_LABEL[r.source].study_scoped]
SMALL_RELS = [r for r in RELS if r not in (BULK_PARENT, BULK_CHILD, *CONCEPT_LINKS, *ONTOLOGY_RELS)]
# Schema objects of earlier mmkg versions that a staged load cannot live with (two versions of a segment
# coexist for a moment): dropped when a store opens read-write.
OBSOLETE_SCHEMA = ("DROP CONSTRAINT segment_uid IF EXISTS", "DROP INDEX segment_study_id IF EXISTS")


def staged(label: str) -> str:
    """The label a small node carries while it is staged (`StagedParticipant`)."""
    return f"Staged{label}"


# ------------------------------------------------------------------------------------------ statements
PING = "RETURN 1 AS n"
HAS_ONTOLOGY = "MATCH (c:Concept) RETURN count(c) AS n"
CLEAR_RELS = "MATCH ()-[r]->() WITH r LIMIT $limit DELETE r RETURN count(*) AS n"
CLEAR_NODES = "MATCH (n) WITH n LIMIT $limit DELETE n RETURN count(*) AS n"
AWAIT_INDEXES = "CALL db.awaitIndexes(300)"
BEGIN_LOAD = (f"CREATE (:{LOAD} {{load_id: $load, study_id: $study_id, state: 'staging', started_at: datetime()}}) "
              f"CREATE (:{LEASE} {{load_id: $load}})")
TAKE_LEASE = f"MATCH (l:{LEASE} {{load_id: $load}}) SET l.held = true RETURN count(l) AS n"
END_LOAD = f"OPTIONAL MATCH (l:{LEASE} {{load_id: $load}}) OPTIONAL MATCH (m:{LOAD} {{load_id: $load}}) DELETE l, m"
LOAD_STATE = f"MATCH (m:{LOAD} {{load_id: $load}}) RETURN m.state AS state"
LOADS = f"MATCH (m:{LOAD}) RETURN m.load_id AS load_id, m.state AS state"
TAKE_ABANDONED_LEASE = f"OPTIONAL MATCH (l:{LEASE} {{load_id: $load}}) SET l.held = true DELETE l RETURN 1 AS n"
STAGED_LOADS = (f"MATCH (n:{STAGING}) WITH DISTINCT n.mmkg_load AS load "
                f"WHERE NOT EXISTS {{ MATCH (m:{LOAD}) WHERE m.load_id = load }} RETURN collect(load) AS loads")
SWEEP_STAGED_BULK = (f"MATCH (p:{staged(BULK_PARENT.source)})-[:{BULK_PARENT.type}]->(n:{BULK.label}) "
                     "WHERE p.mmkg_load = $load WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS n")
SWEEP_STAGED = f"MATCH (n:{STAGING}) WHERE n.mmkg_load = $load WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS n"
SWEEP_RETIRED_BULK = (f"MATCH (:{RETIRED})-[:{BULK_PARENT.type}]->(n:{BULK.label}) "
                      "WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS n")
SWEEP_RETIRED = f"MATCH (n:{RETIRED}) WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS n"
SWITCHED = (f"MATCH (m:{LOAD} {{load_id: $load}}) WHERE m.state = 'staging' SET m.state = 'switched' "
            "RETURN count(m) AS n")


def staging_schema() -> list[str]:
    """Indexes and constraints of the staging protocol (idempotent)."""
    return [f"CREATE CONSTRAINT mmkgload_load_id IF NOT EXISTS FOR (n:{LOAD}) REQUIRE n.load_id IS UNIQUE",
            f"CREATE CONSTRAINT mmkglease_load_id IF NOT EXISTS FOR (n:{LEASE}) REQUIRE n.load_id IS UNIQUE",
            f"CREATE INDEX mmkgstaging_mmkg_load IF NOT EXISTS FOR (n:{STAGING}) ON (n.mmkg_load)",
            *(f"CREATE INDEX {staged(n.label).lower()}_uid IF NOT EXISTS FOR (n:{staged(n.label)}) ON (n.uid)"
              for n in SMALL_NODES)]


def _map(names, row: str = "i") -> str:
    return ", ".join(f"{name}: ${name}[{row}]" for name in names)


def stage_nodes_statement(node: NodeTable) -> str:
    """CREATE one batch of a small label's nodes under its staging labels (columns as parameter lists)."""
    return (f"UNWIND range(0, size($uid) - 1) AS i "
            f"CREATE (n:{staged(node.label)}:{STAGING} {{mmkg_load: $load, {_map(node.columns)}}}) "
            "RETURN count(n) AS n")


def stage_rels_statement(rel: RelTable) -> str:
    """CREATE one batch of relationships between two staged nodes found by `uid`."""
    props = f" {{{_map(name for name, _ in rel.properties)}}}" if rel.properties else ""
    return (f"UNWIND range(0, size($source_uid) - 1) AS i "
            f"MATCH (a:{staged(rel.source)} {{uid: $source_uid[i]}}) WHERE a.mmkg_load = $load "
            f"MATCH (b:{staged(rel.target)} {{uid: $target_uid[i]}}) WHERE b.mmkg_load = $load "
            f"CREATE (a)-[r:{rel.type}{props}]->(b) RETURN count(r) AS n")


def stage_bulk_statement() -> str:
    """CREATE one batch of segments, each under its staged source and with its codings.

    The codings of segment i are rows child_start[i] … child_start[i + 1] - 1; each names its code by its
    position in `$targets` (the batch's codes by uid; a batch with a code missing writes nothing)."""
    child_props = _map((name for name, _ in BULK_CHILD.properties), "j")
    return (f"UNWIND range(0, size($targets) - 1) AS ti "
            f"MATCH (t:{staged(BULK_CHILD.target)} {{uid: $targets[ti]}}) WHERE t.mmkg_load = $load "
            "WITH ti, t ORDER BY ti WITH collect(t) AS targets WHERE size(targets) = size($targets) "
            f"UNWIND range(0, size($uid) - 1) AS i "
            f"MATCH (p:{staged(BULK_PARENT.source)} {{uid: $parent_uid[i]}}) WHERE p.mmkg_load = $load "
            f"CREATE (p)-[:{BULK_PARENT.type}]->(n:{BULK.label} {{{_map(BULK.columns)}}}) "
            "WITH targets, n, i "
            "CALL (targets, n, i) { "
            "UNWIND range($child_start[i], $child_start[i + 1] - 1) AS j "
            "WITH targets[$child_target[j]] AS t, j "
            f"CREATE (n)-[r:{BULK_CHILD.type} {{{child_props}}}]->(t) RETURN count(r) AS children }} "
            "RETURN count(n) AS n, sum(children) AS children")


def count_staged_statement(label: str) -> str:
    return f"MATCH (n:{staged(label)}) WHERE n.mmkg_load = $load RETURN count(n) AS n"


def count_staged_bulk_statement() -> str:
    """Segments under the staged sources and codings into the staged codes, from the nodes' degrees."""
    return (f"MATCH (p:{staged(BULK_PARENT.source)}) WHERE p.mmkg_load = $load "
            f"WITH sum(COUNT {{ (p)-[:{BULK_PARENT.type}]->() }}) AS nodes "
            f"OPTIONAL MATCH (t:{staged(BULK_CHILD.target)}) WHERE t.mmkg_load = $load "
            f"RETURN nodes, sum(COUNT {{ (t)<-[:{BULK_CHILD.type}]-() }}) AS children")


def merge_nodes_statement(node: NodeTable) -> str:
    """MERGE one batch of ontology nodes on `uid` and set every schema property (a null removes it)."""
    assignments = ", ".join(f"n.{name} = ${name}[i]" for name, _ in node.properties)
    return (f"UNWIND range(0, size($uid) - 1) AS i MERGE (n:{node.label} {{uid: $uid[i]}}) SET {assignments} "
            "RETURN count(n) AS n")


def merge_rels_statement(rel: RelTable) -> str:
    """MERGE one batch of ontology relationships between nodes found by `uid`."""
    assignments = " SET " + ", ".join(f"r.{name} = ${name}[i]" for name, _ in rel.properties) if rel.properties else ""
    return (f"UNWIND range(0, size($source_uid) - 1) AS i MATCH (a:{rel.source} {{uid: $source_uid[i]}}) "
            f"MATCH (b:{rel.target} {{uid: $target_uid[i]}}) MERGE (a)-[r:{rel.type}]->(b){assignments} "
            "RETURN count(r) AS n")


def link_concepts_statement(rel: RelTable) -> str:
    """CREATE one batch of links from staged codes to ontology concepts (MAPS_TO)."""
    props = f" {{{_map(name for name, _ in rel.properties)}}}" if rel.properties else ""
    return (f"UNWIND range(0, size($source_uid) - 1) AS i "
            f"MATCH (a:{staged(rel.source)} {{uid: $source_uid[i]}}) WHERE a.mmkg_load = $load "
            f"MATCH (b:{rel.target} {{uid: $target_uid[i]}}) "
            f"CREATE (a)-[r:{rel.type}{props}]->(b) RETURN count(r) AS n")


def retire_statement(label: str) -> str:
    """Take the study's current small nodes of `label` out of every reader's view."""
    return f"MATCH (n:{label}) WHERE n.study_id = $study_id REMOVE n:{label} SET n:{RETIRED} RETURN count(n) AS n"


def publish_statement(label: str) -> str:
    """Give the load's staged nodes of `label` their label."""
    return (f"MATCH (n:{staged(label)}) WHERE n.mmkg_load = $load "
            f"REMOVE n:{staged(label)}:{STAGING}, n.mmkg_load SET n:{label} RETURN count(n) AS n")


def count_ontology_statement(label: str) -> str:
    return f"MATCH (n:{label}) WHERE n.uid IN $uids RETURN count(n) AS n"


def statements() -> list[str]:
    """Every statement the store sends on its own behalf (schema, load, sweep, delete, clear)."""
    return [*OBSOLETE_SCHEMA, *neo4j_schema(), *staging_schema(), AWAIT_INDEXES, PING, HAS_ONTOLOGY,
            CLEAR_RELS, CLEAR_NODES,
            BEGIN_LOAD, TAKE_LEASE, END_LOAD, LOAD_STATE, LOADS, TAKE_ABANDONED_LEASE, STAGED_LOADS,
            SWEEP_STAGED_BULK, SWEEP_STAGED, SWEEP_RETIRED_BULK, SWEEP_RETIRED, SWITCHED,
            *(stage_nodes_statement(n) for n in SMALL_NODES),
            *(stage_rels_statement(r) for r in SMALL_RELS),
            stage_bulk_statement(), count_staged_bulk_statement(),
            *(count_staged_statement(n.label) for n in SMALL_NODES),
            *(merge_nodes_statement(n) for n in ONTOLOGY_NODES),
            *(merge_rels_statement(r) for r in ONTOLOGY_RELS),
            *(count_ontology_statement(n.label) for n in ONTOLOGY_NODES),
            *(link_concepts_statement(r) for r in CONCEPT_LINKS),
            *(retire_statement(n.label) for n in SMALL_NODES),
            *(publish_statement(n.label) for n in SMALL_NODES), *SCHEMA_STAMP_STATEMENTS]


# ------------------------------------------------------------------------------------- schema stamp
# The database records the schema version (`mmkg.schema.SCHEMA_VERSION`) its graph was written with in one
# `MmkgSchema` node, as the embedded store does in its SCHEMA file; it is checked whenever a store opens.
READ_SCHEMA_STAMP = (f"MATCH (s:{SCHEMA_STAMP}) WITH max(s.version) AS version, count(s) AS n "
                     "OPTIONAL MATCH (d:Study) RETURN version, n, count(d) AS studies")
WRITE_SCHEMA_STAMP = (f"MERGE (s:{SCHEMA_STAMP}) SET s.version = $version, s.written_at = datetime() "
                      "RETURN count(s) AS n")
SCHEMA_STAMP_STATEMENTS = (READ_SCHEMA_STAMP, WRITE_SCHEMA_STAMP)
# Upgrades of a database in place: version v → v + 1, each a function of the (read-write) store.  Opening a
# database of an older version runs them in order; without a path to this version it is refused.
def _stored_passages_are_optional(store: Neo4jStore) -> None:
    """1 → 2: the stored passages (`mmkg.schema.PASSAGE_COLUMNS`) are properties a study loaded before them
    lacks, which makes its segment co-occurrence read positions until it is loaded again: nothing to change."""


def _carried_codes_are_optional(store: Neo4jStore) -> None:
    """2 → 3: a study loaded before the carried codes (CARRIES, `mmkg.schema.CARRIED_COLUMN`) has none and no
    `Source.analysis_codings`, which makes its co-occurrence by source read its stored passages (or codings)
    until it is loaded again: nothing to change."""


def _code_pairs_are_optional(store: Neo4jStore) -> None:
    """3 → 4: a study loaded before the code pairs (COOCCURS_WITH, `mmkg.schema.PAIR_COLUMNS`) has none and no
    `Source.passages`, which makes its segment co-occurrence read its stored passages (or positions) until it
    is loaded again: nothing to change."""


MIGRATIONS: dict[int, Callable[[Neo4jStore], None]] = {1: _stored_passages_are_optional,
                                                       2: _carried_codes_are_optional,
                                                       3: _code_pairs_are_optional}


def read_schema_stamp(store: Neo4jStore) -> tuple[int | None, int]:
    """(the database's schema version or None when it has no stamp, its number of studies)."""
    record = store._read(lambda tx: store._record_of(tx, READ_SCHEMA_STAMP))
    version = record["version"]
    if version is not None and not isinstance(version, int):
        raise StoreError(f"the {SCHEMA_STAMP} node of Neo4j holds no schema version ({str(version)[:40]!r}): "
                         f"delete it (MATCH (s:{SCHEMA_STAMP}) DELETE s) and open the database read-write")
    return version, int(record["studies"])


def check_schema_stamp(store: Neo4jStore, uri: str) -> None:
    """Refuse a database written by another version of mmkg's schema with a message naming both versions and
    what to do; migrate an older one (read-write, `MIGRATIONS`).  A database without a stamp (empty, or from
    before the stamp) is stamped when it opens read-write."""
    version, studies = read_schema_stamp(store)
    where = f"the Neo4j database '{store.database}' at {uri}"
    if version is None or version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where} was written by a newer mmkg (schema version {version}; this mmkg knows "
                         f"version {SCHEMA_VERSION}). Nothing was changed: upgrade mmkg to open it")
    path = list(range(version, SCHEMA_VERSION))
    if any(step not in MIGRATIONS for step in path):
        raise StoreError(f"{where} was written by an older mmkg (schema version {version}; this mmkg has version "
                         f"{SCHEMA_VERSION}) and cannot be upgraded in place. Nothing was changed: load your "
                         f"{studies} stud{'y' if studies == 1 else 'ies'} into an empty database (another "
                         "NEO4J_DATABASE, or this one emptied) with `mmkg load SOURCE --neo4j URI`")
    if store.read_only:
        raise StoreError(f"{where} was written by an older mmkg (schema version {version}; this mmkg has version "
                         f"{SCHEMA_VERSION}). Nothing was changed: open it read-write once to upgrade it in place "
                         "(e.g. `mmkg load SOURCE --neo4j URI`)")
    for step in path:
        MIGRATIONS[step](store)
        store._write(lambda tx, to=step + 1: store._single(tx, WRITE_SCHEMA_STAMP, version=to))
        log.info("upgraded %s from schema version %d to %d", where, step, step + 1)


def write_schema_stamp(store: Neo4jStore) -> None:
    """Record `SCHEMA_VERSION` in the database (read-write opens)."""
    store._write(lambda tx: store._single(tx, WRITE_SCHEMA_STAMP, version=SCHEMA_VERSION))


# ------------------------------------------------------------------------------------------ batches
@dataclass
class Batch:
    """One staged write: a statement, its parameter lists and the count it must report."""

    statement: str
    params: dict
    rows: int
    what: str
    children: int | None = None  # for the bulk label: codings the batch must create


def _column(series: pd.Series, kind: str) -> pa.Array:
    """A column as an Arrow array of the property's type, missing values null."""
    if kind == FLOAT:
        return pa.array(pd.to_numeric(series), type=pa.float64(), from_pandas=True)
    if kind in INTEGERS:
        return pa.array(pd.array(pd.to_numeric(series), dtype="Int64"), type=pa.int64(), from_pandas=True)
    if kind == BOOL:
        if series.dtype == bool:
            return pa.array(series.to_numpy(), type=pa.bool_())
        return pa.array(series.astype(object).where(series.notna(), None).map(
            lambda v: None if v is None else bool(v)), type=pa.bool_(), from_pandas=True)
    values = pa.array(series, from_pandas=True)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pa.array(series.astype(object).where(series.notna(), None).map(
            lambda v: None if v is None else str(v)), type=pa.string(), from_pandas=True)
    return values


def _columns(frame: pd.DataFrame, kinds: dict[str, str]) -> tuple[dict[str, list], np.ndarray]:
    """Every column as a Python list (what the driver packs) and each row's size in parameter bytes."""
    lists, sizes = {}, np.zeros(len(frame), dtype=np.int64)
    for name in frame.columns:
        values = _column(frame[name], kinds.get(name, "STRING"))
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            sizes += pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False) + 5
        else:
            sizes += 9
        lists[name] = values.to_pylist()
    return lists, sizes


def _cuts(sizes: np.ndarray, max_rows: int, max_bytes: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive batches of at most `max_rows` rows and `max_bytes` bytes (at least one row)."""
    total = np.concatenate([[0], np.cumsum(sizes)])
    start = 0
    while start < len(sizes):
        end = int(np.searchsorted(total, total[start] + max_bytes, side="right")) - 1
        end = max(start + 1, min(end, start + max_rows, len(sizes)))
        yield start, end
        start = end


def _slice(lists: dict[str, list], start: int, end: int) -> dict[str, list]:
    return {name: values[start:end] for name, values in lists.items()}


def node_batches(node: NodeTable, frame: pd.DataFrame, statement: str, load: str | None) -> Iterator[Batch]:
    lists, sizes = _columns(frame[node.columns], dict(node.properties))
    for start, end in _cuts(sizes, BATCH_ROWS, BATCH_BYTES):
        params = _slice(lists, start, end)
        if load is not None:
            params["load"] = load
        yield Batch(statement, params, end - start, f"{node.label} nodes")


def rel_batches(rel: RelTable, frame: pd.DataFrame, statement: str, load: str | None) -> Iterator[Batch]:
    renamed = frame.rename(columns={"from": "source_uid", "to": "target_uid"})
    lists, sizes = _columns(renamed[["source_uid", "target_uid", *(n for n, _ in rel.properties)]],
                            dict(rel.properties))
    for start, end in _cuts(sizes, BATCH_ROWS, BATCH_BYTES):
        params = _slice(lists, start, end)
        if load is not None:
            params["load"] = load
        yield Batch(statement, params, end - start, f"{rel.type} relationships")


def bulk_batches(rows: GraphRows, load: str) -> Iterator[Batch]:
    """Batches of segments, each with its source and its codings; a batch's size counts both."""
    nodes = rows.nodes.get(BULK.label)
    if nodes is None or not len(nodes):
        return
    parents = rows.rels.get(BULK_PARENT.type, pd.DataFrame(columns=BULK_PARENT.columns))
    children = rows.rels.get(BULK_CHILD.type, pd.DataFrame(columns=BULK_CHILD.columns))
    node_uids = pd.Index(nodes["uid"])
    parent_of = pd.Series(parents["from"].to_numpy(), index=pd.Index(parents["to"]))
    parent_uid = parent_of.reindex(node_uids) if parent_of.index.is_unique else None
    if parent_uid is None or len(parent_of) != len(nodes) or parent_uid.isna().any():
        raise StoreError(f"every {BULK.label} needs exactly one {BULK_PARENT.type} relationship; the rows to "
                         "write do not have that (nothing was written)")
    position = node_uids.get_indexer(children["from"])
    target_uids = pd.Index(rows.nodes[BULK_CHILD.target]["uid"] if BULK_CHILD.target in rows.nodes else [])
    target = target_uids.get_indexer(children["to"])
    unknown = np.flatnonzero((position < 0) | (target < 0))
    if len(unknown):
        row = children.iloc[int(unknown[0])]
        raise StoreError(f"{len(unknown):,} {BULK_CHILD.type} relationships join nodes the study does not have, "
                         f"e.g. {row['from']} -> {row['to']} (nothing was written)")
    order = np.argsort(position, kind="stable")
    target = target[order]
    starts = np.searchsorted(position[order], np.arange(len(nodes) + 1), side="left")
    node_lists, node_sizes = _columns(nodes[BULK.columns].assign(parent_uid=parent_uid.to_numpy()),
                                      dict(BULK.properties))
    child_frame = children.iloc[order][[name for name, _ in BULK_CHILD.properties]].reset_index(drop=True)
    child_lists, child_sizes = _columns(child_frame, dict(BULK_CHILD.properties))
    child_total = np.concatenate([[0], np.cumsum(child_sizes + 9)])
    per_node = node_sizes + child_total[starts[1:]] - child_total[starts[:-1]]
    statement = stage_bulk_statement()
    for start, end in _cuts(per_node, BATCH_ROWS, BATCH_BYTES):
        first, last = int(starts[start]), int(starts[end])
        used, local = np.unique(target[first:last], return_inverse=True)
        params = {**_slice(node_lists, start, end), **_slice(child_lists, first, last),
                  "child_start": (starts[start:end + 1] - first).tolist(), "child_target": local.tolist(),
                  "targets": target_uids[used].tolist(), "load": load}
        yield Batch(statement, params, end - start, f"{BULK.label} nodes", children=last - first)


# ------------------------------------------------------------------------------------------ the store
class Neo4jStore:
    """A Neo4j 5 database behind the `GraphStore` interface."""

    name = "neo4j"

    def __init__(self, driver, database: str, *, read_only: bool = False,
                 shipped_ontology: Callable[[], GraphRows] | None = None):
        self._driver = driver
        self.database = database
        self.read_only = read_only
        # builds the shipped ontology's rows when a switch finds none (another writer removed it meanwhile);
        # injected by `mmkg.api.open_store`, because the store does not depend on the graph builder
        self._shipped_ontology = shipped_ontology
        self.sent: set[str] = set()  # the store's own statements (checked against `statements()`)

    @classmethod
    def connect(cls, uri: str, user: str, password: str, database: str = "neo4j", *,
                read_only: bool = False, shipped_ontology: Callable[[], GraphRows] | None = None) -> Neo4jStore:
        """Create the one driver, check that the server answers, and (read-write) create the schema."""
        import neo4j
        from neo4j.exceptions import AuthError, ConfigurationError, Neo4jError, ServiceUnavailable

        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in BOLT_SCHEMES:
            raise ConfigError(f"NEO4J_URI '{uri}' is not a Bolt URI: use bolt://host:7687 or neo4j://host:7687 "
                              f"(schemes: {', '.join(BOLT_SCHEMES)}; mmkg needs Bolt for read transactions "
                              "and time limits)")
        try:
            # Notifications (e.g. "label does not exist" for a study without subgroups) are not for users.
            driver = neo4j.GraphDatabase.driver(uri, auth=(user, password), notifications_min_severity="OFF")
        except (ValueError, ConfigurationError) as exc:
            raise ConfigError(f"NEO4J_URI '{uri}' is not a Neo4j URI ({exc}); use bolt://host:7687 or "
                              "neo4j://host:7687") from None
        store = cls(driver, database, read_only=read_only, shipped_ontology=shipped_ontology)
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
        try:
            check_schema_stamp(store, uri)
            if not read_only:
                store.create_schema()
                write_schema_stamp(store)
        except BaseException:
            driver.close()
            raise
        return store

    def _session(self, read: bool = False):
        import neo4j

        mode = neo4j.READ_ACCESS if read or self.read_only else neo4j.WRITE_ACCESS
        return self._driver.session(database=self.database, default_access_mode=mode)

    def create_schema(self) -> None:
        """Uniqueness constraints on every `uid`, the indexes the schema names and the staging schema
        (idempotent); waits until the indexes are online."""
        with self._call(self._session) as session:
            for statement in (*OBSOLETE_SCHEMA, *neo4j_schema(), *staging_schema(), AWAIT_INDEXES):
                try:
                    self._call(self._consume, session, statement)
                except QueryError as exc:
                    raise StoreError(f"cannot create mmkg's schema in Neo4j ({exc.message}); statement: "
                                     f"{statement}") from None

    # --- reads -------------------------------------------------------------------------------------------
    def execute(self, cypher: str, params: dict | None = None, *, read: bool = False) -> pd.DataFrame:
        """Run one statement (in a read transaction when `read` or the store is read-only).  A key fetch of
        `mmkg.store.keys` runs in its Neo4j form (columns as lists), always in a read transaction."""
        columnar = neo4j_key_form(cypher)
        text = to_neo4j(cypher) if columnar is None else columnar[0]
        read = read or self.read_only or columnar is not None

        def work(tx) -> pd.DataFrame:
            if columnar is not None:
                return _columns_frame(tx.run(text, params or {}), columnar[1])
            return _frame(tx.run(text, params or {}), None)

        def run() -> pd.DataFrame:
            with self._session(read=read) as session:
                return (session.execute_read if read else session.execute_write)(work)

        return self._call(run)

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
        return self._read(lambda tx: self._single(tx, HAS_ONTOLOGY)) > 0

    # --- writes ------------------------------------------------------------------------------------------
    def replace_study(self, study_id: str, rows: GraphRows, ontology: GraphRows | None = None,
                      progress: Progress | None = None) -> dict[str, int]:
        """Stage the study's new version in bounded transactions, then switch it in with one transaction
        (merging `ontology`, or the shipped one when the store has none); the old version stays visible
        until that switch and is deleted after it.  A failure before the switch leaves Neo4j as it was."""
        return self._load(study_id, rows, ontology, progress, new=False)

    def write_new_study(self, study_id: str, rows: GraphRows, ontology: GraphRows | None = None,
                        progress: Progress | None = None) -> dict[str, int]:
        """`replace_study` for a study id the store must not hold: the switch transaction itself refuses
        an existing study (`StudyExistsError`, nothing written), so two concurrent loads of one id cannot
        both write it (Neo4j has no writer lock that would cover a check made before the load)."""
        return self._load(study_id, rows, ontology, progress, new=True)

    def _load(self, study_id: str, rows: GraphRows, ontology: GraphRows | None, progress: Progress | None,
              *, new: bool) -> dict[str, int]:
        self._require_writable()
        load = uuid.uuid4().hex
        plan = self._plan(load, rows)
        tick = StepTicker(progress, len(plan) + 3)  # sweep, batches, switch, removal of the old version
        with self._lease(load, study_id):
            self._sweep(own_load=load)
            tick("removed what earlier loads left behind")
            try:
                for batch in plan:
                    self._write_batch(batch)
                    tick(f"staged {batch.what}")
                counts = self._switch(load, study_id, rows, ontology, new=new)
            except BaseException:
                self._abandon(load)
                raise
            tick(f"switched to the new version of {study_id}")
        self._delete_retired(study_id)
        tick(f"removed the previous version of {study_id}")
        return counts

    def delete_study(self, study_id: str) -> None:
        """Take the study out of the graph in one transaction, then delete its nodes in bounded ones."""
        self._require_writable()
        self._sweep(own_load=None)

        def retire(tx) -> None:
            for node in SMALL_NODES:
                self._single(tx, retire_statement(node.label), study_id=study_id)

        self._write(retire)
        self._delete_retired(study_id)

    def clear(self) -> None:
        """Delete every node and relationship of the database (the Neo4j test tier starts from empty), in
        bounded transactions: relationships first, so that no node's relationships burden one transaction."""
        self._require_writable()
        for statement in (CLEAR_RELS, CLEAR_NODES):
            self._repeat(statement)

    def close(self) -> None:
        self._driver.close()

    # --- the staged load ---------------------------------------------------------------------------------
    def _plan(self, load: str, rows: GraphRows) -> list[Batch]:
        """Every staging batch of the study, small labels first (the bulk batches find their sources and
        codes by uid), built before anything is written."""
        plan: list[Batch] = []
        for node in SMALL_NODES:
            if node.label in rows.nodes:
                plan += node_batches(node, rows.nodes[node.label], stage_nodes_statement(node), load)
        for rel in SMALL_RELS:
            if len(rows.rels.get(rel.type, ())):
                plan += rel_batches(rel, rows.rels[rel.type], stage_rels_statement(rel), load)
        plan += bulk_batches(rows, load)
        return plan

    @contextmanager
    def _lease(self, load: str, study_id: str):
        """Register the load and hold its lease lock while the body runs; then remove the lease and marker."""
        self._write(lambda tx: self._run(tx, BEGIN_LOAD, load=load, study_id=study_id))
        session = self._call(self._session)
        try:
            transaction = self._call(session.begin_transaction)
            if self._call(lambda: self._single(transaction, TAKE_LEASE, load=load)) != 1:
                raise StoreError("another writer removed this load's lease before the load began; load again")
        except BaseException:
            session.close()
            self._forget(load)
            raise
        try:
            yield
        except BaseException:
            try:
                transaction.rollback()
            except Exception:  # noqa: BLE001 - a broken connection has rolled it back already
                pass
            session.close()
            self._forget(load)
            raise
        try:
            self._run(transaction, END_LOAD, load=load)
            transaction.commit()
        except Exception as error:  # noqa: BLE001 - the next write removes a marker left behind
            log.warning("could not remove the marker of load %s (%s); the next write will", load, error)
        finally:
            session.close()

    def _write_batch(self, batch: Batch) -> None:
        def work(tx) -> None:
            self.sent.add(batch.statement)
            record = self._record(tx.run(batch.statement, batch.params))
            if record["n"] != batch.rows or (batch.children is not None and record["children"] != batch.children):
                with_children = batch.children is not None
                found = f"{record['n']:,}" + (f" with {record['children']:,} codings" if with_children else "")
                wanted = f"{batch.rows:,}" + (f" with {batch.children:,} codings" if with_children else "")
                raise StoreError(f"staging {batch.what}: Neo4j wrote {found} where {wanted} were sent (an endpoint "
                                 "was missing); the load was abandoned and the graph is as it was")

        self._write(work)

    def _switch(self, load: str, study_id: str, rows: GraphRows, ontology: GraphRows | None, *,
                new: bool) -> dict[str, int]:
        """One transaction: check the staging, merge the ontology, link codes to concepts, retire the current
        version (`new`: refuse when there is one) and publish the staged one."""
        from neo4j.exceptions import IncompleteCommit, Neo4jError

        def work(tx) -> dict[str, int]:
            if self._single(tx, SWITCHED, load=load) != 1:
                raise StoreError(f"the staged version of {study_id} was removed by another writer (it found this "
                                 "load abandoned); nothing was changed: load again")
            counts = {}
            for node in SMALL_NODES:
                expected = len(rows.nodes.get(node.label, ()))
                counts[node.label] = _expect(self._single(tx, count_staged_statement(node.label), load=load),
                                             expected, f"staged {node.label} nodes")
            bulk = self._record_of(tx, count_staged_bulk_statement(), load=load)
            counts[BULK.label] = _expect(bulk["nodes"], len(rows.nodes.get(BULK.label, ())),
                                         f"staged {BULK.label} nodes")
            children = len(rows.rels.get(BULK_CHILD.type, ()))
            _expect(bulk["children"] or 0, children, f"staged {BULK_CHILD.type} relationships")
            merged = ontology
            if merged is None and self._shipped_ontology is not None and self._single(tx, HAS_ONTOLOGY) == 0:
                merged = self._shipped_ontology()
            if merged is not None:
                self._merge_ontology(tx, merged)
            for rel in CONCEPT_LINKS:
                frame = rows.rels.get(rel.type)
                if frame is not None and len(frame):
                    for batch in rel_batches(rel, frame, link_concepts_statement(rel), load):
                        _expect(self._single(tx, batch.statement, **batch.params), batch.rows,
                                f"{rel.type} relationships (a concept is missing from the ontology)")
            retired = {node.label: self._single(tx, retire_statement(node.label), study_id=study_id)
                       for node in SMALL_NODES}
            if new and retired[STUDY]:
                raise _study_exists(study_id)
            for node in SMALL_NODES:
                self._single(tx, publish_statement(node.label), load=load)
            counts.update({rel_type: len(frame) for rel_type, frame in rows.rels.items()})
            return counts

        try:
            return self._write(work, mapped=False)
        except IncompleteCommit:
            return self._after_incomplete_commit(load, study_id, rows)
        except MmkgError:
            raise
        except Neo4jError as exc:
            if exc.code != "Neo.ClientError.Schema.ConstraintValidationFailed":
                raise _translated(exc, None) from None
            # the uniqueness of uids: another load of this study switched in its version meanwhile
            if new:
                raise _study_exists(study_id) from None
            raise StoreError(f"another load of study {study_id} switched in its version while this one was "
                             "staged; this load wrote nothing (the graph holds the other load's version): "
                             "load again to replace it") from None
        except Exception as exc:  # noqa: BLE001 - translated below
            raise _translated(exc, None) from None

    def _after_incomplete_commit(self, load: str, study_id: str, rows: GraphRows) -> dict[str, int]:
        """The connection broke during the switch's COMMIT: read the marker to learn whether it committed."""
        try:
            state = self._read(lambda tx: [r["state"] for r in tx.run(LOAD_STATE, load=load)])
        except Exception:  # noqa: BLE001 - the outcome stays unknown
            state = None
        if state == ["switched"]:
            return {**{label: len(frame) for label, frame in rows.nodes.items()},
                    **{rel_type: len(frame) for rel_type, frame in rows.rels.items()}}
        if state == ["staging"]:
            raise StoreError(f"lost the connection to Neo4j while switching to the new version of {study_id}; "
                             "Neo4j did not commit it, so the graph is as it was: load again")
        raise StoreError(f"lost the connection to Neo4j while committing the new version of {study_id}: the "
                         "outcome is unknown (Neo4j could not be asked afterwards); check with `mmkg studies` "
                         "and load again if it is missing")

    def _merge_ontology(self, tx, ontology: GraphRows) -> None:
        for node in ONTOLOGY_NODES:
            frame = ontology.nodes.get(node.label)
            if frame is None or not len(frame):
                continue
            for batch in node_batches(node, frame, merge_nodes_statement(node), None):
                _expect(self._single(tx, batch.statement, **batch.params), batch.rows, f"{node.label} nodes")
            _expect(self._single(tx, count_ontology_statement(node.label), uids=frame["uid"].tolist()),
                    len(frame), f"{node.label} nodes")
        for rel in ONTOLOGY_RELS:
            frame = ontology.rels.get(rel.type)
            if frame is None or not len(frame):
                continue
            for batch in rel_batches(rel, frame, merge_rels_statement(rel), None):
                _expect(self._single(tx, batch.statement, **batch.params), batch.rows, f"{rel.type} relationships")

    def _abandon(self, load: str) -> None:
        """After a failure before the switch committed: delete this load's staging (best effort)."""
        try:
            self._sweep_staged(load)
        except Exception as error:  # noqa: BLE001 - the next write removes it
            log.warning("could not remove the staging of load %s (%s); the next write will", load, error)

    def _forget(self, load: str) -> None:
        """Delete the load's lease and marker (best effort)."""
        try:
            self._write(lambda tx: self._run(tx, END_LOAD, load=load))
        except Exception as error:  # noqa: BLE001 - the next write removes it
            log.warning("could not remove the marker of load %s (%s); the next write will", load, error)

    # --- sweeping ----------------------------------------------------------------------------------------
    def _sweep(self, own_load: str | None) -> None:
        """Delete what failed or killed loads left: the staging of every load whose lease is free (its
        process is gone), staging that no marker claims, and retired versions.  Readers never see any of
        it, so a sweep that fails (e.g. racing another writer's) is logged and left to the next write."""
        try:
            loads = self._read(lambda tx: [r["load_id"] for r in tx.run(LOADS)])
            for load in loads:
                if load != own_load and self._lease_is_free(load):
                    self._sweep_staged(load)
                    self._forget(load)
            unclaimed = self._read(lambda tx: self._record(tx.run(STAGED_LOADS))["loads"])
            for load in unclaimed:
                self._sweep_staged(load)
            self._sweep_retired()
        except (StoreError, QueryError) as error:
            log.warning("could not remove what an earlier load left (%s); the next write will try again", error)

    def _lease_is_free(self, load: str) -> bool:
        """Try to take another load's lease lock for LEASE_PROBE_S: True (and the lease deleted) when its
        lease transaction is gone."""
        from neo4j.exceptions import Neo4jError

        def probe() -> bool:
            with self._session() as session:
                try:
                    with session.begin_transaction(timeout=LEASE_PROBE_S) as tx:
                        self._run(tx, TAKE_ABANDONED_LEASE, load=load)
                        tx.commit()
                    return True
                except Neo4jError:
                    return False  # timed out waiting for the lock: the load is alive

        return self._call(probe)

    def _sweep_staged(self, load: str) -> None:
        for statement in (SWEEP_STAGED_BULK, SWEEP_STAGED):
            self._repeat(statement, load=load)

    def _sweep_retired(self) -> None:
        for statement in (SWEEP_RETIRED_BULK, SWEEP_RETIRED):
            self._repeat(statement)

    def _delete_retired(self, study_id: str) -> None:
        """Delete the retired version right after a switch or a delete (the next write finishes it if this fails)."""
        try:
            self._sweep_retired()
        except (StoreError, QueryError) as error:
            log.warning("could not delete the previous version of %s yet (%s); the next write will", study_id, error)

    def _repeat(self, statement: str, **params) -> None:
        """Run a `… LIMIT $limit DETACH DELETE …` statement in its own transactions until it deletes nothing."""
        while self._write(lambda tx: self._single(tx, statement, limit=SWEEP_ROWS, **params)):
            pass

    # --- internals ---------------------------------------------------------------------------------------
    def _write(self, work, *, mapped: bool = True):
        """`work(tx)` as a transaction function in a write session (retried by the driver on transient
        errors); errors become mmkg errors unless `mapped` is False."""
        def run():
            with self._session() as session:
                return session.execute_write(work)
        return self._call(run) if mapped else run()

    def _read(self, work):
        def run():
            with self._session(read=True) as session:
                return session.execute_read(work)
        return self._call(run)

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError("the store is open read-only")

    def _run(self, tx, statement: str, **params) -> None:
        self.sent.add(statement)
        tx.run(statement, params).consume()

    def _single(self, tx, statement: str, **params) -> int:
        return int(self._record_of(tx, statement, **params)["n"])

    def _record_of(self, tx, statement: str, **params):
        self.sent.add(statement)
        return self._record(tx.run(statement, params))

    @staticmethod
    def _record(result):
        """The one record of a result; a transaction-memory error becomes a StoreError the driver does not
        retry (a retry of the same batch needs the same memory)."""
        from neo4j.exceptions import TransientError

        try:
            return result.single(strict=True)
        except TransientError as exc:
            if "MemoryPoolOutOfMemoryError" in (exc.code or ""):
                raise StoreError(f"Neo4j refused the transaction: {exc.message}; raise db.memory.transaction.max "
                                 "or lower mmkg's batch size") from None
            raise

    def _consume(self, session, statement: str) -> None:
        self.sent.add(statement)
        session.run(statement).consume()

    def _call(self, run, *args, timeout_s: float | None = None):
        """`run(*args)` (e.g. a session's execute_write with a transaction function); driver and server
        errors become mmkg errors."""
        try:
            return run(*args)
        except (StoreError, QueryError):
            raise
        except Exception as exc:  # noqa: BLE001 - translated below
            raise _translated(exc, timeout_s) from None


# ------------------------------------------------------------------------------------------ helpers
def _translated(exc: Exception, timeout_s: float | None) -> Exception:
    """The mmkg error for a driver or server error; any other exception is returned unchanged."""
    translated = _translate(exc, timeout_s)
    return exc if translated is None else translated


def _translate(exc: Exception, timeout_s: float | None) -> StoreError | QueryError | None:
    """The mmkg error for a driver or server error (None: not a Neo4j error)."""
    from neo4j.exceptions import (
        DriverError,
        IncompleteCommit,
        Neo4jError,
        ServiceUnavailable,
        SessionExpired,
        TransientError,
    )

    if isinstance(exc, IncompleteCommit):
        return StoreError(f"lost the connection to Neo4j while it committed ({exc}): the outcome is unknown; "
                          "check the graph before repeating the call")
    if isinstance(exc, (ServiceUnavailable, SessionExpired)):
        return StoreError(f"lost the connection to Neo4j ({exc}); the transaction of this call was not committed")
    if isinstance(exc, Neo4jError):
        code = exc.code or ""
        if "TimedOut" in code or (timeout_s and "Terminated" in code):
            return QueryLimitError(f"query stopped after the time limit of {timeout_s} s")
        if code.endswith("AccessMode") or "ForbiddenOnReadOnlyDatabase" in code:
            return QueryError(f"query refused: writes are not allowed here ({exc.message})")
        if "MemoryPoolOutOfMemoryError" in code:
            return StoreError(f"Neo4j refused the transaction: {exc.message}")
        if isinstance(exc, TransientError):
            return StoreError(f"Neo4j could not complete the call for now ({exc.message}); try again")
        if code.startswith("Neo.ClientError"):
            return QueryError(f"query failed: {exc.message}")
        return StoreError(f"Neo4j failed: {exc.message} ({code})")
    if isinstance(exc, DriverError):
        return StoreError(f"Neo4j driver error: {exc}")
    return None


_PLAIN = (str, int, float, bool, type(None))


def _graph_value(value):
    """Nodes, relationships and paths as dicts shaped like LadybugDB's (`_ID`, `_LABEL`, properties)."""
    if isinstance(value, _PLAIN):  # most values: returned before any other test (lists of 10^6 numbers)
        return value
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"_ID": value.element_id, "_LABEL": next(iter(value.labels), None), **dict(value)}
    if isinstance(value, Relationship):
        return {"_SRC": value.start_node.element_id if value.start_node else None,
                "_DST": value.end_node.element_id if value.end_node else None,
                "_LABEL": value.type, "_ID": value.element_id, **dict(value)}
    if isinstance(value, Path):
        return {"_NODES": [_graph_value(n) for n in value.nodes],
                "_RELS": [_graph_value(r) for r in value.relationships]}
    if isinstance(value, list):
        return value if all(isinstance(v, _PLAIN) for v in value) else [_graph_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _graph_value(v) for k, v in value.items()}
    if hasattr(value, "iso_format"):  # neo4j.time types
        return value.iso_format()
    return value


def _frame(result, max_rows: int | None) -> pd.DataFrame:
    keys = list(result.keys())
    records = result.fetch(max_rows) if max_rows is not None else list(result)
    return pd.DataFrame([[_graph_value(v) for v in record.values()] for record in records], columns=keys)


def _columns_frame(result, names: list[str]) -> pd.DataFrame:
    """The frame of a key fetch's Neo4j form: one record holding one list per column."""
    record = result.single(strict=True)
    return pd.DataFrame({name: pd.Series(record[name]) for name in names}, columns=names)


def _study_exists(study_id: str) -> StudyExistsError:
    return StudyExistsError(f"a study '{study_id}' is in the store already (written by another load while this "
                            "one was staged): load under another id (--study-id, study_id) or replace it "
                            "(--replace, replace=true); nothing was written")


def _expect(found: int, expected: int, what: str) -> int:
    if found != expected:
        raise StoreError(f"Neo4j holds {found:,} {what} where {expected:,} were written; the load was abandoned "
                         "and the graph is as it was")
    return found
