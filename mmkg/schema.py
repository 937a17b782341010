"""The one schema definition of the property graph.

LadybugDB's DDL and Neo4j's constraints and indexes are both generated from `NODES` and `RELS`
(`mmkg.store.ddl`), so the two stores cannot drift apart.  Every node table is keyed by `uid`; study-scoped nodes carry
`study_id` so that one study can be replaced without touching the others.
"""
from __future__ import annotations

from dataclasses import dataclass

# The version of NODES and RELS: raise it when a table or property changes. A store records the version its
# graph was written with; opening a store whose graph lacks what this schema has is refused with a message.
# 2: the stored passages of the analysis codings (PASSAGE_COLUMNS); 3: the codes each source carries (CARRIES);
# 4: the code pairs of the passages (COOCCURS_WITH, PAIR_COLUMNS)
SCHEMA_VERSION = 4

# Property types, in LadybugDB's spelling; Neo4j is schema-free for properties.
STRING, INT, FLOAT, BOOL = "STRING", "INT64", "DOUBLE", "BOOLEAN"
INT32 = "INT32"  # a number below 2^31 within one study (passages): half an INT64's memory per row in LadybugDB
INTEGERS = (INT, INT32)


@dataclass(frozen=True)
class NodeTable:
    label: str
    properties: tuple[tuple[str, str], ...]
    study_scoped: bool = True
    indexed: tuple[str, ...] = ()  # properties Neo4j should index besides the uid key
    # Neo4j: a label too numerous to relabel when a load switches versions (one node per coded segment).
    # Loads write it under its parent (`RelTable` into it) and readers reach it through that parent, so
    # Neo4j keeps no uniqueness constraint or index on it; see mmkg/store/neo4j_store.py.
    bulk: bool = False

    @property
    def columns(self) -> list[str]:
        return ["uid"] + [name for name, _ in self.properties]


@dataclass(frozen=True)
class RelTable:
    type: str
    source: str
    target: str
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> list[str]:
        return ["from", "to"] + [name for name, _ in self.properties]


NODES: tuple[NodeTable, ...] = (
    NodeTable("Study", (("id", STRING), ("title", STRING), ("description", STRING),
                        ("citation", STRING), ("provenance", STRING), ("codebooks", STRING),
                        ("analysis_coder", STRING), ("origin", STRING), ("study_id", STRING),
                        # written at load (STUDY_COUNTS), so listing studies never counts their rows
                        ("participants", INT), ("sources", INT), ("codes", INT), ("codings", INT)),
              indexed=("id",)),
    NodeTable("Participant", (("study_id", STRING), ("id", STRING), ("label", STRING),
                              ("synthetic", BOOL)), indexed=("study_id", "id")),
    NodeTable("Attribute", (("study_id", STRING), ("participant_id", STRING), ("name", STRING),
                            ("value", STRING), ("value_num", FLOAT), ("type", STRING)),
              indexed=("study_id", "name")),
    NodeTable("Source", (("study_id", STRING), ("id", STRING), ("kind", STRING), ("title", STRING),
                         ("first_passage", INT32), ("analysis_codings", INT), ("passages", INT32)),
              indexed=("study_id",)),
    NodeTable("Segment", (("study_id", STRING), ("id", STRING), ("start_pos", INT), ("end_pos", INT),
                          ("x", FLOAT), ("y", FLOAT), ("width", FLOAT), ("height", FLOAT),
                          ("synthetic", BOOL), ("text", STRING), ("text_section", STRING),
                          ("loose_passage", INT32)),
              bulk=True),
    NodeTable("Code", (("study_id", STRING), ("codebook", STRING), ("id", STRING), ("label", STRING),
                       ("preferred_label", STRING), ("definition", STRING), ("codable", BOOL)),
              indexed=("study_id", "id")),
    NodeTable("CodeGroup", (("study_id", STRING), ("codebook", STRING), ("id", STRING), ("label", STRING)),
              indexed=("study_id",)),
    NodeTable("Coder", (("study_id", STRING), ("id", STRING)), indexed=("study_id",)),
    NodeTable("Concept", (("iri", STRING), ("label", STRING), ("kind", STRING), ("definition", STRING),
                          ("alt_labels", STRING)), study_scoped=False, indexed=("kind",)),
    NodeTable("ExternalId", (("scheme", STRING), ("external_id", STRING), ("name", STRING), ("url", STRING)),
              study_scoped=False),
)

RELS: tuple[RelTable, ...] = (
    RelTable("HAS_PARTICIPANT", "Study", "Participant"),
    RelTable("HAS_ATTRIBUTE", "Participant", "Attribute"),
    RelTable("HAS_SOURCE", "Participant", "Source"),
    RelTable("HAS_SEGMENT", "Source", "Segment"),
    RelTable("CODED_AS", "Segment", "Code", (("coder", STRING), ("analysis", BOOL), ("passage", INT32))),
    RelTable("CARRIES", "Source", "Code", (("codings", INT), ("passages", INT32))),
    RelTable("COOCCURS_WITH", "Code", "Code", (("passages", INT),)),
    RelTable("IN_GROUP", "Code", "CodeGroup"),
    RelTable("SUBCODE_OF", "Code", "Code"),
    RelTable("SUBGROUP_OF", "CodeGroup", "CodeGroup"),
    RelTable("HAS_CODER", "Study", "Coder"),
    RelTable("MAPS_TO", "Code", "Concept", (("match", STRING), ("note", STRING))),
    RelTable("BROADER", "Concept", "Concept"),
    RelTable("CONTROLS", "Concept", "Concept"),
    RelTable("AFFECTS", "Concept", "Concept"),
    RelTable("SHARES_GOAL_WITH", "Concept", "Concept", (("goal", STRING),)),
    RelTable("MITIGATES", "Concept", "Concept"),
    RelTable("EXTERNAL_MATCH", "Concept", "ExternalId", (("match", STRING),)),
)

NODE_BY_LABEL = {n.label: n for n in NODES}
# Study property -> the rows of a study's graph it counts (nodes or relationships); see mmkg.graph.study_graph
STUDY_COUNTS = {"participants": "Participant", "sources": "HAS_SOURCE", "codes": "Code", "codings": "CODED_AS"}
REL_BY_TYPE = {r.type: r for r in RELS}
# The passages of a study's analysis codings (the segment unit of co-occurrence at proximity 0, `mmkg.overlap`),
# written at load so that its co-occurrence reads few positions (`mmkg.graph.analysis_passages`).  Passages are
# numbered from 0 within the study, each source's after the one before it: Source.first_passage — the number of
# its first (-1: none); CODED_AS.passage — an analysis coding's passage when every two of the passage's
# selections overlap, -1 when not, null for the other coders' codings; Segment.loose_passage — the passage of a
# segment in one of the second kind (null otherwise).  A study loaded before them has them all null.
PASSAGE_COLUMNS = (("CODED_AS", "passage", INT32), ("Segment", "loose_passage", INT32),
                   ("Source", "first_passage", INT32))
# The codes each source carries among the study's analysis codings, written at load so that co-occurrence by
# source or participant reads one row per source and code instead of one per coding (`mmkg.graph.carried_codes`):
# CARRIES — from a source to each code it has analysis codings of, `codings` their number;
# Source.analysis_codings — the number of the source's analysis codings (0: none; null: the study was loaded
# before CARRIES, so it has none).
CARRIED_COLUMN = ("Source", "analysis_codings", INT)
# The code pairs of the passages of a study's analysis codings (the segment unit at proximity 0), written at load
# so that its co-occurrence reads one row per pair of codes that co-occur instead of one per coding
# (`mmkg.graph.passage_pairs`): COOCCURS_WITH — between two codes of the study that co-occur directly in a
# passage, once per pair (in either direction), `passages` their number; CARRIES.passages — the number of the
# source's passages that carry the code; Source.passages — the number of its passages.  A study loaded
# before them has the two columns null and no COOCCURS_WITH.
PAIR_COLUMNS = (("CARRIES", "passages", INT32), ("Source", "passages", INT32))
STUDY_NODE_LABELS = [n.label for n in NODES if n.study_scoped]
ONTOLOGY_NODE_LABELS = [n.label for n in NODES if not n.study_scoped]
ONTOLOGY_REL_TYPES = [r.type for r in RELS
                      if not NODE_BY_LABEL[r.source].study_scoped and not NODE_BY_LABEL[r.target].study_scoped]
