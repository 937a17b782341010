"""The core's data models besides the tables: a validated study, the graph rows a store writes, and what the
analyses and the read-back need of the graph they read (`GraphReader`; `mmkg.api.Mmkg` is one)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from mmkg.tables import StudyMeta

EVERY_STUDY = "*"  # the study parameter that means every study in the store ('' = the only one)
# participant attributes that record how a study was made, not who took part: the REFI-QDA and Taguette readers'
# flag for participants they made up, the founding generator's list of uncertain Table 1 cells
BOOKKEEPING_ATTRIBUTES = frozenset({"synthetic_participant", "table1_uncertain_cells"})


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


class GraphReader(Protocol):
    """The graph as the analyses, the read-back of a study and the mapping read it (`mmkg.api.Mmkg`)."""

    def rows(self, name: str, **params: object) -> pd.DataFrame:
        """The rows of a named query's or an internal statement's Cypher."""
        ...

    def query(self, name: str, **params: object) -> pd.DataFrame:
        """A named query with its analysis step."""
        ...

    def cypher(self, text: str, params: dict | None = None) -> pd.DataFrame:
        """The rows of a statement the store package built (`mmkg.store.keys`)."""
        ...

    def require_study(self, study_id: str) -> None:
        """Raise `NotFoundError` when the study is not in the graph."""
        ...

    def study_ids(self) -> list[str]:
        ...
