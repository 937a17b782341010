"""Reading one study back out of the graph as `StudyTables` — the inverse of `mmkg.graph.study_graph`.

Used to re-apply a changed concept map atomically (read → change → validate → replace the study) and
to export a study as REFI-QDA.  The tables come out in the same shape every reader produces (string
cells, None for missing), so they go through `mmkg.loader.validate` like any other input.
"""
from __future__ import annotations

import pandas as pd

from mmkg.models import GraphReader
from mmkg.tables import COLUMNS, StudyMeta, StudyTables


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


def read_study_tables(kg: GraphReader, study_id: str) -> StudyTables:
    """The study `study_id` as it is stored, as `StudyTables` (raises NotFoundError when absent)."""
    kg.require_study(study_id)
    study = kg.rows("study_meta", study_id=study_id).iloc[0]
    people = kg.rows("participant_attributes", study_id=study_id)
    attributes = people[people["name"].notna()]
    types = dict(zip(attributes["name"], attributes["type"]))
    participants = _cells(people[["participant_id", "label"]].drop_duplicates("participant_id"), "participants")
    if len(attributes):
        wide = attributes.pivot(index="participant_id", columns="name", values="value")
        participants = participants.merge(wide, how="left", left_on="participant_id", right_index=True)
        participants = participants.astype(object).where(participants.notna(), None)
    groups = _cells(kg.rows("study_groups", study_id=study_id), "groups")
    codes = _cells(kg.rows("study_codes", study_id=study_id), "codes")
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
        sources=_cells(kg.rows("study_sources", study_id=study_id), "sources"),
        segments=_cells(kg.rows("study_segments", study_id=study_id), "segments"),
        codings=_cells(kg.rows("study_codings", study_id=study_id), "codings"),
        concept_map=_cells(kg.rows("code_concepts", study_id=study_id), "concept_map"),
        files={name: f"{origin}: {name}" for name in COLUMNS}, allow_empty=True)
