"""The one registry of co-occurrence metrics: a pair's columns, `code_neighbourhood`'s `rank_by`, the views'
edge-width control, the API's enum of it and the metric table of docs/analysis.md all come from `METRICS`.

A metric is a function of a pair's four counts — N (`n_units`), n_a, n_b, n_ab — as numpy arrays; adding one
is one `register_metric(Metric(...))` call.  Two built-ins are not formulas of the counts alone and are
computed by `mmkg.analysis.pair_metrics` itself: `n_ab` (the count) and `fisher_p` (exact test, small counts).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Formula = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (n_units, n_a, n_b, n_ab)


@dataclass(frozen=True)
class Metric:
    """One co-occurrence metric: its column, how people call it, how it is computed and shown."""

    column: str  # the column of a pair's row, e.g. c_coefficient
    title: str  # shown in views, legends and docs, e.g. "c-coefficient (Jaccard)"
    definition: str  # the formula in words, for the docs table
    formula: Formula | None = None  # None: computed by `mmkg.analysis.pair_metrics` (n_ab, fisher_p)
    aliases: tuple[str, ...] = ()  # other names `rank_by` accepts, e.g. jaccard
    view_name: str = ""  # its name in the views' edge-width control ('' = not offered there)
    ascending: bool = False  # True: a smaller value is a stronger pair (ranks first)


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add a metric to every place metrics are offered; refuses a column or name already taken."""
    taken = {n for m in METRICS.values() for n in (m.column, *m.aliases, m.view_name) if n}
    clash = sorted(({metric.column, *metric.aliases, metric.view_name} - {""}) & taken)
    if clash:
        raise ValueError(f"metric name(s) {', '.join(clash)} are taken already")
    METRICS[metric.column] = metric
    return metric


def unregister_metric(column: str) -> None:
    """Remove a registered metric (a test's or a plugin's)."""
    METRICS.pop(column, None)


def resolve_metric(name: str) -> Metric | None:
    """The metric called `name` (its column, an alias or its view name), else None."""
    for metric in METRICS.values():
        if name in (metric.column, *metric.aliases, metric.view_name):
            return metric
    return None


def metric_names() -> list[str]:
    """Every name `rank_by` accepts: the columns, then the aliases."""
    return [m.column for m in METRICS.values()] + [a for m in METRICS.values() for a in m.aliases]


def view_metrics() -> dict[str, Metric]:
    """The metrics the views offer as edge width, by their view name."""
    return {m.view_name: m for m in METRICS.values() if m.view_name}


def docs_table() -> str:
    """The Markdown table of docs/analysis.md (a test keeps the page equal to it)."""
    rows = ["| column | also called | definition |", "|---|---|---|"]
    for m in METRICS.values():
        also = ", ".join(f"`{n}`" for n in dict.fromkeys((*m.aliases, m.view_name)) if n and n != m.column)
        rows.append(f"| `{m.column}` | {also} | {m.definition} |")
    return "\n".join(rows)


def _divide(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return top / bottom


for _metric in (
        Metric("n_ab", "n_ab (count)", "units where both codes occur", aliases=("count",), view_name="count"),
        Metric("c_coefficient", "c-coefficient (Jaccard)", "n_ab / (n_a + n_b − n_ab), ATLAS.ti's c-coefficient",
               lambda n, a, b, ab: _divide(ab, a + b - ab), aliases=("jaccard", "c"), view_name="jaccard"),
        Metric("p_b_given_a", "P(b|a)", "n_ab / n_a", lambda n, a, b, ab: _divide(ab, a), view_name="p_b_given_a"),
        Metric("p_a_given_b", "P(a|b)", "n_ab / n_b", lambda n, a, b, ab: _divide(ab, b)),
        Metric("lift", "lift", "n_ab · N / (n_a · n_b)", lambda n, a, b, ab: _divide(ab * n, a * b),
               view_name="lift"),
        Metric("fisher_p", "Fisher's p", "two-sided Fisher exact p of the 2×2 table, for n_ab ≤ fisher_max_count "
               "(NaN when passages that carry both codes without their selections meeting leave the table a "
               "negative cell)",
               ascending=True),
):
    register_metric(_metric)
