"""Graph stores: the embedded LadybugDB store (default) and Neo4j, behind one small interface."""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pandas as pd

from mmkg.models import GraphRows

Progress = Callable[[str, int, int], None]  # (step, done, total)


class StepTicker:
    """Counts the finished steps of a write and reports each to an optional progress callback."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, step: str) -> None:
        self.done += 1
        if self.progress:
            self.progress(step, self.done, self.total)


class GraphStore(Protocol):
    """What the loader, the query library and the server need from a graph store."""

    name: str
    read_only: bool

    def execute(self, cypher: str, params: dict | None = None, *, read: bool = False) -> pd.DataFrame:
        """Run one Cypher statement and return its rows (`read`: in a read transaction, which refuses writes)."""

    def execute_read(self, cypher: str, params: dict | None = None, *, timeout_s: float | None = None,
                     max_rows: int | None = None) -> pd.DataFrame:
        """Run one statement in a context where the store itself refuses writes."""

    def replace_study(self, study_id: str, rows: GraphRows, ontology: GraphRows | None,
                      progress: Progress | None = None) -> dict[str, int]:
        """Atomically replace one study's subgraph (and load the ontology when given); return counts."""

    def delete_study(self, study_id: str) -> None:
        """Remove one study's subgraph atomically."""

    def has_ontology(self) -> bool:
        """True when concept nodes are present."""

    def close(self) -> None:
        """Release the store."""
