"""Selections and the passages they form: the segment unit of co-occurrence and agreement.

A *selection* is where a coding sits in its source: a text or media range (`start`, `end`: character offsets
of a text, milliseconds of audio/video), a picture or PDF region (`x`, `y`, `width`, `height`), or nothing
(a coding of a whole source, a transcript selection without position: the segment itself).  Segments of one
source with the same range or region are one selection (NVivo writes one selection per code per passage).

Two selections of one source **overlap** when they share a part of positive size:

- ranges [s1, e1) and [s2, e2): s1 < e2 and s2 < e1 — touching ranges (e1 == s2) do not overlap;
- regions: their x-ranges and their y-ranges both overlap in that sense (touching edges do not);
- a selection without position overlaps no other selection; ranges never overlap regions;
- with `proximity` N > 0, ranges closer than N positions also count (s1 < e2 + N and s2 < e1 + N): MAXQDA's
  "near" in characters (text) or milliseconds (media); regions are unaffected.

A **passage** is a connected group of overlapping selections within one source (overlap taken
transitively); a selection overlapping nothing is a passage of its own.  `find_passages` finds the ranges'
passages by one sort and sweep (sorted by source and start, a passage ends where a range starts at or after the
furthest end before it), tells which passages are *cliques* (every two of their selections overlap: for ranges,
the latest start lies before the earliest end) and lists overlapping pairs only inside the passages that are
not; regions are paired by a sort and sweep on x (the y-ranges compared), which touches only the candidate
pairs whose first coordinates overlap — never every pair of a source.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmkg.errors import QueryError

SPAN, REGION, WHOLE = 0, 1, 2
GEOMETRY = ("start", "end", "x", "y", "width", "height")  # a selection's columns, in the order `selections` reads
MAX_PAIRS = 50_000_000  # candidate pairs of overlapping selections; beyond this the data is pathological


@dataclass(frozen=True)
class Selections:
    """Distinct selections (exact geometry per source) and, per input row, its selection."""

    of_row: np.ndarray  # selection index of every input row
    source: np.ndarray  # per selection: source index
    kind: np.ndarray  # SPAN, REGION or WHOLE
    geometry: np.ndarray  # per selection: (start, end, x, y, width, height) as float64, NaN where absent

    def __len__(self) -> int:
        return len(self.source)


def selections(source: np.ndarray, segment: np.ndarray, geometry: np.ndarray, *, merge: bool = True) -> Selections:
    """Group segment rows into selections.

    `source`, `segment`: integer codes per row (rows of one segment share them); `geometry`: float64 rows ×
    (start, end, x, y, width, height) with NaN for missing values.  Rows of one source with the same range
    (or the same region) get one selection; a row without position is a selection per segment.  With
    `merge=False`, ranges of positive length are left one selection per row: identical ones overlap anyway,
    so passages and overlap do not change, and the sort is saved (zero-length ranges are still merged).
    """
    source = np.asarray(source, dtype=np.int64)
    segment = np.asarray(segment, dtype=np.int64)
    geometry = np.asarray(geometry, dtype=np.float64).reshape(len(source), 6)
    span = ~np.isnan(geometry[:, 0]) & ~np.isnan(geometry[:, 1])
    if not merge and (span & (geometry[:, 1] > geometry[:, 0])).all():  # every row a positive range: its own
        return Selections(of_row=np.arange(len(source), dtype=np.int64), source=source,
                          kind=np.full(len(source), SPAN, dtype=np.int64), geometry=geometry)
    region = ~span & ~np.isnan(geometry[:, 2:6]).any(axis=1)
    kind = np.where(span, SPAN, np.where(region, REGION, WHOLE)).astype(np.int64)
    of_row = np.empty(len(source), dtype=np.int64)
    firsts, offset = [], 0
    if not merge:  # positive-length ranges: a selection each
        alone = np.flatnonzero(span & (geometry[:, 1] > geometry[:, 0]))
        of_row[alone] = np.arange(len(alone))
        firsts.append(alone)
        offset = len(alone)
        span = span & ~(geometry[:, 1] > geometry[:, 0])
    for rows, columns in ((np.flatnonzero(span), [geometry[:, 1], geometry[:, 0]]),
                          (np.flatnonzero(region), [geometry[:, 5], geometry[:, 4], geometry[:, 3], geometry[:, 2]]),
                          (np.flatnonzero(kind == WHOLE), [segment.astype(np.float64)])):
        if not len(rows):
            continue
        keys = [c[rows] for c in columns] + [source[rows]]
        order = np.lexsort(keys)
        new = np.zeros(len(rows), dtype=bool)
        for key in keys:
            ordered = key[order]
            new[1:] |= ordered[1:] != ordered[:-1]
        new[0] = True
        ids = np.cumsum(new) - 1
        of_row[rows[order]] = ids + offset
        firsts.append(rows[order[new]])
        offset += int(new.sum())
    first = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
    return Selections(of_row=of_row, source=source[first], kind=kind[first], geometry=take_rows(geometry, first))


def take_rows(geometry: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`geometry[rows]`, column by column when the columns are contiguous (`mmkg.analysis` builds them so:
    the sweeps read whole columns), where numpy's row gather of a column-major array is slow (0.1 s at 10^6)."""
    if geometry.flags.f_contiguous and not geometry.flags.c_contiguous:
        return np.take(geometry.T, rows, axis=1).T
    return geometry[rows]


def overlapping_pairs(sel: Selections, proximity: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j), i < j, of distinct selections of one source that overlap (module docstring)."""
    if proximity < 0:
        raise QueryError(f"parameter 'proximity' must not be negative, got {proximity}")
    parts = [_span_pairs(sel, proximity), _region_pairs(sel)]
    first = np.concatenate([p[0] for p in parts])
    second = np.concatenate([p[1] for p in parts])
    return np.minimum(first, second), np.maximum(first, second)


@dataclass(frozen=True)
class Passages:
    """The passages of some selections."""

    of_selection: np.ndarray  # passage index of every selection
    clique: np.ndarray  # per passage: every two of its selections overlap
    pairs: tuple[np.ndarray, np.ndarray]  # the overlapping pairs (i < j) of selections in passages that are not cliques

    def __len__(self) -> int:
        return len(self.clique)


def find_passages(sel: Selections, proximity: float = 0.0) -> Passages:
    """The passages of `sel` (module docstring): ranges first, then regions, then selections without position
    (a passage each)."""
    if proximity < 0:
        raise QueryError(f"parameter 'proximity' must not be negative, got {proximity}")
    of_selection = np.empty(len(sel), dtype=np.int64)
    cliques, firsts, seconds = [], [], []
    offset = 0
    span = np.flatnonzero(sel.kind == SPAN)
    region = np.flatnonzero(sel.kind == REGION)
    start, end, _ = _range_columns(sel, span)
    if len(span) and (end + proximity < start).any():
        parts = [(span, _span_pairs(sel, proximity)), (region, _region_pairs(sel))]  # reversed ranges: no sweep
    else:
        label, clique, pairs = _span_sweep(sel, span, proximity)
        of_selection[span] = label
        cliques.append(clique)
        firsts.append(pairs[0])
        seconds.append(pairs[1])
        offset = len(clique)
        parts = [(region, _region_pairs(sel))]
    for index, pairs in parts:
        label, clique, pairs = _components(len(sel), index, pairs)
        of_selection[index] = label + offset
        cliques.append(clique)
        firsts.append(pairs[0])
        seconds.append(pairs[1])
        offset += len(clique)
    alone = np.flatnonzero(sel.kind == WHOLE)
    of_selection[alone] = offset + np.arange(len(alone))
    cliques.append(np.ones(len(alone), dtype=bool))
    empty = [np.zeros(0, np.int64)]
    first, second = np.concatenate(empty + firsts), np.concatenate(empty + seconds)
    return Passages(of_selection=of_selection, clique=np.concatenate(cliques),
                    pairs=(np.minimum(first, second), np.maximum(first, second)))


def _span_sweep(sel: Selections, index: np.ndarray, proximity: float
                ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Passages of the ranges `index` (no range reversed): (passage of each, clique per passage, overlapping
    pairs in the passages that are not cliques).  Sorted by source and start (a zero-length range before the
    others starting where it starts), a range joins the passage before it when it starts before the furthest
    end so far (the range ending there starts no later, so they overlap); otherwise nothing before it reaches
    it, nor can anything after it reach back."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if not len(index):
        return np.zeros(0, np.int64), np.zeros(0, dtype=bool), empty
    start, end, source = _range_columns(sel, index)
    end = end + proximity
    # one sorted key over every source, each source shifted above the ends of the ones before it
    low = float(start.min())
    width = float(end.max()) - low + 1
    if (float(source.max()) + 1) * width >= 2 ** 53:
        raise QueryError("selection offsets are too large to compare exactly")
    shift = source * width - low
    key = start + shift
    pointless = end <= start  # zero length: overlaps no range starting where it starts, so it sorts first
    # stable sorts: the ranges come from the store mostly in order already, which a stable sort uses
    if pointless.any():
        first = np.argsort(~pointless, kind="stable")
        order = first[np.argsort(key[first], kind="stable")]
    else:
        order = np.argsort(key, kind="stable")
    key, shifted_end, pointless = key[order], (end + shift)[order], pointless[order]
    reach = np.maximum.accumulate(shifted_end)
    new = np.r_[True, key[1:] >= reach[:-1]]
    bounds = np.flatnonzero(new)
    passage = np.cumsum(new) - 1
    size = np.diff(np.r_[bounds, len(key)])
    # ranges [s, e) all overlap one another when the latest start (the last, sorted) lies before the earliest
    # end; a passage with a range that does not overlap itself (zero length) is decided by its pairs
    latest = key[np.r_[bounds[1:], len(key)] - 1]
    clique = (size == 1) | (latest < np.minimum.reduceat(shifted_end, bounds))
    undecided = np.zeros(len(bounds), dtype=bool)
    undecided[passage[pointless]] = True
    undecided &= ~clique
    label = np.empty(len(index), dtype=np.int64)
    label[order] = passage
    needed = ~clique[label]
    if not needed.any():
        return label, clique, empty
    first, second = _span_pairs(sel, proximity, index[needed])
    if undecided.any():
        where = np.empty(len(sel), dtype=np.int64)
        where[index] = label
        edges = np.bincount(where[first], minlength=len(clique))
        clique = clique | (undecided & (edges == size * (size - 1) // 2))
        loose = ~clique[where[first]]
        first, second = first[loose], second[loose]
    return label, clique, (first, second)


def _range_columns(sel: Selections, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """start, end and source of the selections `index` (ascending, distinct): views of the selections' own
    columns when `index` is all of them (the common case at the segment unit), else copies."""
    if len(index) == len(sel):
        return sel.geometry[:, 0], sel.geometry[:, 1], sel.source
    return sel.geometry[index, 0], sel.geometry[index, 1], sel.source[index]


def _components(n: int, index: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Passages of the selections `index` (of `n`) from their overlapping pairs: (passage of each, clique per
    passage, the pairs in passages that are not cliques)."""
    if not len(index):
        return np.zeros(0, np.int64), np.zeros(0, dtype=bool), (np.zeros(0, np.int64), np.zeros(0, np.int64))
    import scipy.sparse as sp  # (here: a load computes passages, and most studies have no regions)
    from scipy.sparse.csgraph import connected_components

    first, second = pairs
    where = np.full(n, -1, dtype=np.int64)
    where[index] = np.arange(len(index))
    graph = sp.csr_matrix((np.ones(len(first), dtype=np.int8), (where[first], where[second])),
                          shape=(len(index), len(index)))
    count, label = connected_components(graph, directed=False)
    label = label.astype(np.int64)
    size = np.bincount(label, minlength=count)
    edges = np.bincount(label[where[first]], minlength=count)
    clique = edges == size * (size - 1) // 2
    loose = ~clique[label[where[first]]]
    return label, clique, (first[loose], second[loose])


def passages(sel: Selections, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Passage index of every selection: connected components of the overlap pairs."""
    n = len(sel)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    first, second = pairs
    graph = sp.csr_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def _candidates(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For positions p with counts[p] candidates p+1 … p+counts[p]: the (p, q) pairs."""
    total = int(counts.sum())
    if total > MAX_PAIRS:
        raise QueryError(f"more than {MAX_PAIRS:,} pairs of overlapping selections: the selections of this study "
                         "overlap too densely for segment co-occurrence (use unit=exact, source or participant)")
    left = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return left, left + 1 + offsets


def _span_pairs(sel: Selections, proximity: float, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping pairs among the ranges `index` (default: every range)."""
    index = np.nonzero(sel.kind == SPAN)[0] if index is None else index
    if len(index) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    start, end, source = sel.geometry[index, 0], sel.geometry[index, 1], sel.source[index].astype(np.float64)
    # one sorted key over every source: source, then start, far enough apart never to mix sources
    width = float(np.max(np.abs(np.concatenate([start, end])))) * 2 + proximity + 1
    key = source * width + start
    if key.max() >= 2 ** 53:
        raise QueryError("selection offsets are too large to compare exactly")
    order = np.argsort(key, kind="stable")
    index, start, end, key = index[order], start[order], end[order], key[order]
    rank = source[order]
    # candidates of p: later selections (same source) that start before p's end (+ proximity)
    reach = np.searchsorted(key, rank * width + end + proximity, side="left")
    counts = np.maximum(reach - np.arange(len(key)) - 1, 0)
    left, right = _candidates(counts)
    keep = end[right] + proximity > start[left]  # zero-length ranges starting where p starts do not overlap it
    return index[left[keep]], index[right[keep]]


def _region_pairs(sel: Selections) -> tuple[np.ndarray, np.ndarray]:
    index = np.nonzero(sel.kind == REGION)[0]
    firsts, seconds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    if len(index) < 2:
        return firsts[0], seconds[0]
    order = np.lexsort((sel.geometry[index, 2], sel.source[index]))
    index = index[order]
    bounds = np.flatnonzero(np.diff(sel.source[index])) + 1
    for block in np.split(index, bounds):
        if len(block) < 2:
            continue
        x, y, w, h = (sel.geometry[block, k] for k in (2, 3, 4, 5))
        reach = np.searchsorted(x, x + w, side="left")
        counts = np.maximum(reach - np.arange(len(block)) - 1, 0)
        left, right = _candidates(counts)
        keep = (x[right] + w[right] > x[left]) & (y[left] < y[right] + h[right]) & (y[right] < y[left] + h[left])
        firsts.append(block[left[keep]])
        seconds.append(block[right[keep]])
    return np.concatenate(firsts), np.concatenate(seconds)
