"""The one registry of co-occurrence units: the analysis' check of `unit`, the views' unit control and its
OpenAPI enum, the `unit` options of the named queries (`{units}` in a query header) and the units table of
docs/analysis.md all come from `UNIT_REGISTRY`.  How each unit is counted lives in `mmkg.analysis.unit_table`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    """One unit of co-occurrence: its name (`unit=NAME`), what one unit is and when two codes co-occur in it."""

    name: str
    gloss: str  # a few words for option lists, e.g. "overlapping selections"
    one_unit: str  # what one unit is, e.g. "one interview, drawing or other source"
    cooccur: str  # when two codes co-occur in it, for the docs table
    rule: str  # the rule in one line, for view captions


UNIT_REGISTRY: dict[str, Unit] = {unit.name: unit for unit in (
    Unit("segment", "overlapping selections", "a passage",
         "a selection carrying one and a selection carrying the other are the same or overlap — directly, not only "
         "through a third selection (as ATLAS.ti's co-occurrence table, MAXQDA's Code Relations Browser "
         "\"intersection\" and NVivo's matrix coding \"overlapping\" count)",
         "passage of overlapping selections in one source (codes co-occur when their selections are the same or "
         "overlap; touching ranges do not)"),
    Unit("exact", "same selection", "one selection", "one selection carries both (same position)",
         "one selection (same position in one source)"),
    Unit("source", "one source", "one interview, drawing or other source", "the source carries both",
         "one interview, drawing or other source"),
    Unit("participant", "one participant", "all of one participant's material",
         "the participant's material carries both", "all of one participant's material"),
)}
UNITS = tuple(UNIT_REGISTRY)
UNIT_RULES = {unit.name: f"{unit.name} = {unit.rule}" for unit in UNIT_REGISTRY.values()}


def units_help() -> str:
    """The units with their gloss, for a query's `unit` option: `segment (overlapping selections), …`."""
    return ", ".join(f"{u.name} ({u.gloss})" for u in UNIT_REGISTRY.values())


def docs_table() -> str:
    """The Markdown table of units in docs/analysis.md (`python -m mmkg.docs` writes it)."""
    rows = ["| unit | a unit is | two codes co-occur in it when |", "|---|---|---|"]
    rows += [f"| `{u.name}` | {u.one_unit} | {u.cooccur} |" for u in UNIT_REGISTRY.values()]
    return "\n".join(rows)
