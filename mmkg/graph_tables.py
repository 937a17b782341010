"""Reading one study back out of the graph as `StudyTables` — the inverse of `mmkg.graph.study_graph`.

Used to re-apply a changed concept map atomically (read → change → validate → replace the study) and
to export a study as REFI-QDA.  The tables come out in the same shape every reader produces (string
cells, None for missing), so they go through `mmkg.loader.validate` like any other input.
"""
from __future__ import annotations

import pandas as pd

from mmkg.tables import COLUMNS, StudyMeta, StudyTables

_STUDY = "MATCH (s:Study) WHERE s.id = $s RETURN s.title AS title, s.description AS description, " \
         "s.citation AS citation, s.provenance AS provenance, s.codebooks AS codebooks, " \
         "s.analysis_coder AS analysis_coder, s.origin AS origin"
_GROUPS = "MATCH (g:CodeGroup) WHERE g.study_id = $s OPTIONAL MATCH (g)-[:SUBGROUP_OF]->(parent:CodeGroup) " \
          "RETURN g.codebook AS codebook, g.id AS group_id, g.label AS label, parent.id AS parent_group_id"
_CODES = "MATCH (k:Code)-[:IN_GROUP]->(g:CodeGroup) WHERE k.study_id = $s " \
         "OPTIONAL MATCH (k)-[:SUBCODE_OF]->(parent:Code) " \
         "RETURN k.codebook AS codebook, k.id AS code_id, k.label AS label, g.id AS group_id, " \
         "parent.id AS parent_code_id, k.codable AS codable, k.preferred_label AS preferred_label, " \
         "k.definition AS definition"
_PARTICIPANTS = "MATCH (p:Participant) WHERE p.study_id = $s RETURN p.id AS participant_id, p.label AS label"
_ATTRIBUTES = "MATCH (p:Participant)-[:HAS_ATTRIBUTE]->(a:Attribute) WHERE p.study_id = $s " \
              "RETURN p.id AS participant_id, a.name AS name, a.value AS value, a.type AS type"
_SOURCES = "MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source) WHERE src.study_id = $s " \
           "RETURN src.id AS source_id, p.id AS participant_id, src.kind AS kind, src.title AS title"
_SEGMENTS = "MATCH (src:Source)-[:HAS_SEGMENT]->(seg:Segment) WHERE seg.study_id = $s " \
            "RETURN seg.id AS segment_id, src.id AS source_id, seg.start_pos AS start, seg.end_pos AS `end`, " \
            "seg.x AS x, seg.y AS y, seg.width AS width, seg.height AS height, seg.synthetic AS synthetic, " \
            "seg.text AS text, seg.text_section AS text_section"
_CODINGS = "MATCH (seg:Segment)-[r:CODED_AS]->(k:Code) WHERE seg.study_id = $s " \
           "RETURN seg.id AS segment_id, k.codebook AS codebook, k.id AS code_id, r.coder AS coder"
_CONCEPT_MAP = "MATCH (k:Code)-[m:MAPS_TO]->(c:Concept) WHERE k.study_id = $s " \
               "RETURN k.codebook AS codebook, k.id AS code_id, c.uid AS concept, m.match AS match, m.note AS note"


def _cells(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Cells as strings (numbers without a trailing `.0` where whole), missing as None, rows sorted."""
    frame = frame.reindex(columns=COLUMNS[table]).astype(object)

    def text(value):
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    frame = pd.DataFrame({c: pd.Series([text(v) for v in frame[c]], index=frame.index, dtype=object)
                          for c in frame.columns})
    return frame.sort_values(COLUMNS[table][:2]).reset_index(drop=True)


def read_study_tables(kg, study_id: str) -> StudyTables:
    """The study `study_id` as it is stored, as `StudyTables` (raises NotFoundError when absent)."""
    kg.require_study(study_id)
    params = {"s": study_id}
    study = kg.cypher(_STUDY, params).iloc[0]
    attributes = kg.cypher(_ATTRIBUTES, params)
    types = dict(zip(attributes["name"], attributes["type"]))
    participants = _cells(kg.cypher(_PARTICIPANTS, params), "participants")
    if len(attributes):
        wide = attributes.pivot(index="participant_id", columns="name", values="value")
        participants = participants.merge(wide, how="left", left_on="participant_id", right_index=True)
        participants = participants.astype(object).where(participants.notna(), None)
    groups = _cells(kg.cypher(_GROUPS, params), "groups")
    codes = _cells(kg.cypher(_CODES, params), "codes")
    # the graph fills a missing preferred label with the label; undo that so a round trip is the identity
    codes.loc[codes["preferred_label"] == codes["label"], "preferred_label"] = None
    meta = StudyMeta(id=study_id, title=study["title"] or "", description=study["description"] or "",
                     citation=study["citation"] or "", provenance=study["provenance"] or "",
                     codebooks=[c for c in (study["codebooks"] or "").split(";") if c],
                     analysis_coder=study["analysis_coder"] or "", participant_attributes=types,
                     origin=f"study '{study_id}' in the graph")
    origin = meta.origin
    return StudyTables(
        meta=meta, groups=groups, codes=codes, participants=participants,
        sources=_cells(kg.cypher(_SOURCES, params), "sources"),
        segments=_cells(kg.cypher(_SEGMENTS, params), "segments"),
        codings=_cells(kg.cypher(_CODINGS, params), "codings"),
        concept_map=_cells(kg.cypher(_CONCEPT_MAP, params), "concept_map"),
        files={name: f"{origin}: {name}" for name in COLUMNS}, allow_empty=True)
