"""The core's data models besides the tables: a validated study and the graph rows a store writes."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mmkg.tables import StudyMeta


@dataclass
class ValidStudy:
    """A study that passed validation, with typed columns, ready for `mmkg.graph.study_graph`."""

    meta: StudyMeta
    groups: pd.DataFrame
    codes: pd.DataFrame
    participants: pd.DataFrame  # participant_id, label, synthetic
    attributes: pd.DataFrame  # participant_id, name, value, value_num, type (long form; missing cells absent)
    sources: pd.DataFrame
    segments: pd.DataFrame
    codings: pd.DataFrame
    concept_map: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


@dataclass
class GraphRows:
    """Deduplicated rows per node label and relationship type, columns in schema order."""

    nodes: dict[str, pd.DataFrame] = field(default_factory=dict)
    rels: dict[str, pd.DataFrame] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {**{k: len(v) for k, v in self.nodes.items()}, **{k: len(v) for k, v in self.rels.items()}}
