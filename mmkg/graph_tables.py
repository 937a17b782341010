"""Reading one study back out of the graph as `StudyTables` — the inverse of `mmkg.graph.study_graph`.

Used to re-apply a changed concept map atomically (read → change → validate → replace the study) and to export a
study (study folder, REFI-QDA, RDF).  The read-back is generated from the schema: every property of every
study-scoped node and relationship is read (`mmkg.store.study_reads`) and lands in the table column of the same
name (`RENAMED` lists the few whose names differ), so a property added to `mmkg.schema` and to the table's
columns (`mmkg.tables.COLUMNS`) is carried by `map apply`, `export study` and `export qdpx` with no other change.
A schema property with no column and no entry in `COMPUTED` is refused (`SchemaMismatch`), never dropped.
The tables come out in the same shape every reader produces (string cells, None for missing), so they go through
`mmkg.loader.validate` like any other input.
"""
from __future__ import annotations

from dataclasses import fields

import pandas as pd

from mmkg.errors import MmkgError
from mmkg.models import GraphReader
from mmkg.tables import COLUMNS, StudyMeta, StudyTables

# study table -> the node label its rows are
TABLE_OF_NODE = {"CodeGroup": "groups", "Code": "codes", "Participant": "participants", "Source": "sources",
                 "Segment": "segments"}
# study table -> the relationship type its rows are (the table also gets the keys of both ends)
TABLE_OF_REL = {"CODED_AS": "codings", "MAPS_TO": "concept_map"}
# node property -> table column, where the names differ
RENAMED = {"Code": {"id": "code_id"}, "CodeGroup": {"id": "group_id"}, "Participant": {"id": "participant_id"},
           "Source": {"id": "source_id"}, "Segment": {"id": "segment_id", "start_pos": "start", "end_pos": "end"}}
# a table column that is the key of the node at the other end of a relationship: (table, column) ->
# (relationship type, True when the table's node is the relationship's source)
LINKS = {("groups", "parent_group_id"): ("SUBGROUP_OF", True), ("codes", "group_id"): ("IN_GROUP", True),
         ("codes", "parent_code_id"): ("SUBCODE_OF", True), ("sources", "participant_id"): ("HAS_SOURCE", False),
         ("segments", "source_id"): ("HAS_SEGMENT", False)}
# Properties the loader computes from the tables (keys, the owning study, counts, flags, typed copies), which
# the read-back therefore does not return: `Label.property`, or `*.property` for every label.
COMPUTED = frozenset({
    "*.uid", "*.study_id", "Study.id", "Study.origin", "Study.participants", "Study.sources", "Study.codes",
    "Study.codings",  # STUDY_COUNTS, written at load
    "Participant.synthetic",  # from the bookkeeping attribute `synthetic_participant`
    "Attribute.value_num",  # the number in `value`
    "Coder.id",  # the coders of the codings
    "CODED_AS.analysis",  # coder == the study's analysis_coder
    "CODED_AS.passage", "Segment.loose_passage", "Source.first_passage",  # PASSAGE_COLUMNS, from the positions
    "CARRIES.codings", "Source.analysis_codings",  # the carried codes (CARRIED_COLUMN), from the codings
    "CARRIES.passages", "Source.passages", "COOCCURS_WITH.passages",  # the code pairs (PAIR_COLUMNS), from both
})
# Attribute nodes become the participants table's extra columns (one per name) and `participant_attributes`
ATTRIBUTE_READ = ("participant_id", "name", "value", "type")
STUDY_META_FIELDS = {f.name for f in fields(StudyMeta)} - {"id", "origin", "participant_attributes"}


class SchemaMismatch(MmkgError):
    """The schema has a property the study tables have no column for: a programming error, refused so that no
    export or `map apply` drops data silently."""


def _computed(label: str, prop: str) -> bool:
    return f"*.{prop}" in COMPUTED or f"{label}.{prop}" in COMPUTED


def unplaced_properties() -> list[str]:
    """`Label.property` of every study-scoped schema property the read-back has no place for (should be [])."""
    from mmkg.store.study_reads import study_tables

    nodes, rels = study_tables()
    unplaced = []
    for node in nodes:
        for prop, _ in node.properties:
            if _computed(node.label, prop):
                continue
            if node.label in TABLE_OF_NODE:
                placed = RENAMED.get(node.label, {}).get(prop, prop) in COLUMNS[TABLE_OF_NODE[node.label]]
            elif node.label == "Study":
                placed = prop in STUDY_META_FIELDS
            elif node.label == "Attribute":
                placed = prop in ATTRIBUTE_READ
            else:
                placed = False
            if not placed:
                unplaced.append(f"{node.label}.{prop}")
    for rel in rels:
        for prop, _ in rel.properties:
            if not _computed(rel.type, prop) and prop not in COLUMNS.get(TABLE_OF_REL.get(rel.type, ""), ()):
                unplaced.append(f"{rel.type}.{prop}")
    return unplaced


def _text(value) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cells(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The table's columns as strings (numbers without a trailing `.0` where whole), missing as None, rows sorted."""
    frame = frame.reindex(columns=COLUMNS[table]).astype(object)
    frame = pd.DataFrame({c: pd.Series([_text(v) for v in frame[c]], index=frame.index, dtype=object)
                          for c in frame.columns})
    return frame.sort_values(COLUMNS[table][:2]).reset_index(drop=True)


def read_study_graph(kg: GraphReader, study_id: str) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Every node and relationship of one study, per label and type, with every schema property."""
    from mmkg.store.study_reads import study_node_statement, study_rel_statement, study_tables

    nodes, rels = study_tables()
    params = {"study_id": study_id}
    node_rows = {n.label: kg.cypher(study_node_statement(n), params).reindex(columns=n.columns) for n in nodes}
    rel_rows = {r.type: kg.cypher(study_rel_statement(r), params).reindex(columns=r.columns) for r in rels}
    return node_rows, rel_rows


def read_study_tables(kg: GraphReader, study_id: str) -> StudyTables:
    """The study `study_id` as it is stored, as `StudyTables` (raises NotFoundError when absent)."""
    kg.require_study(study_id)
    unplaced = unplaced_properties()
    if unplaced:
        raise SchemaMismatch(f"the schema has properties the study tables have no column for: {', '.join(unplaced)}"
                             " (add them to mmkg.tables.COLUMNS or mmkg.graph_tables.COMPUTED)")
    nodes, rels = read_study_graph(kg, study_id)
    frames: dict[str, pd.DataFrame] = {}
    keys: dict[str, pd.DataFrame] = {}  # label -> uid and the table's key columns, to resolve relationships
    for label, table in TABLE_OF_NODE.items():
        frame = nodes[label].rename(columns=RENAMED.get(label, {}))
        frames[table] = frame
        keys[label] = frame[["uid", *(["codebook"] if "codebook" in frame else []), RENAMED[label]["id"]]]
    for (table, column), (rel_type, outgoing) in LINKS.items():
        rel = rels[rel_type]
        own, other = ("from", "to") if outgoing else ("to", "from")
        target_label = _other_end(rel_type, outgoing)
        ends = keys[target_label].rename(columns={"uid": other})
        ends = ends[[other, RENAMED[target_label]["id"]]].rename(columns={RENAMED[target_label]["id"]: column})
        linked = rel[[own, other]].merge(ends, on=other)[[own, column]].rename(columns={own: "uid"})
        frames[table] = frames[table].drop(columns=[column], errors="ignore").merge(linked, on="uid", how="left")
    codes = keys["Code"].rename(columns={"uid": "to"})
    coded = rels["CODED_AS"].merge(keys["Segment"][["uid", "segment_id"]].rename(columns={"uid": "from"}), on="from")
    frames["codings"] = coded.merge(codes, on="to")
    frames["concept_map"] = rels["MAPS_TO"].merge(codes.rename(columns={"to": "from"}), on="from") \
        .rename(columns={"to": "concept"})

    people = nodes["Attribute"]
    types = dict(zip(people["name"], people["type"]))
    participants = _cells(frames["participants"], "participants")
    if len(people):
        wide = people.pivot(index="participant_id", columns="name", values="value")
        participants = participants.merge(wide, how="left", left_on="participant_id", right_index=True)
        participants = participants.astype(object).where(participants.notna(), None)
    tables = {name: _cells(frame, name) for name, frame in frames.items() if name != "participants"}
    # the graph fills a missing preferred label with the label; undo that so a round trip is the identity
    codes_table = tables["codes"]
    codes_table.loc[codes_table["preferred_label"] == codes_table["label"], "preferred_label"] = None

    study = nodes["Study"].iloc[0]
    values: dict[str, object] = {name: _text(study.get(name)) or "" for name in STUDY_META_FIELDS}
    values["codebooks"] = [c for c in str(values["codebooks"]).split(";") if c]
    meta = StudyMeta(id=study_id, participant_attributes=types, origin=f"study '{study_id}' in the graph",
                     **values)  # type: ignore[arg-type]  # every field of StudyMeta by name
    return StudyTables(meta=meta, participants=participants, **tables,
                       files={name: f"{meta.origin}: {name}" for name in COLUMNS}, allow_empty=True)


def _other_end(rel_type: str, outgoing: bool) -> str:
    from mmkg.schema import REL_BY_TYPE

    rel = REL_BY_TYPE[rel_type]
    return rel.target if outgoing else rel.source
