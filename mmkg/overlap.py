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
transitively); a selection overlapping nothing is a passage of its own.  Passages are found by a sort and
sweep per source (ranges sorted by start; regions by x, then the y-ranges compared), which touches only the
candidate pairs whose first coordinates overlap — never every pair of a source.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from mmkg.errors import QueryError

SPAN, REGION, WHOLE = 0, 1, 2
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
    return Selections(of_row=of_row, source=source[first], kind=kind[first], geometry=geometry[first])


def overlapping_pairs(sel: Selections, proximity: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j), i < j, of distinct selections of one source that overlap (module docstring)."""
    if proximity < 0:
        raise QueryError(f"parameter 'proximity' must not be negative, got {proximity}")
    parts = [_span_pairs(sel, proximity), _region_pairs(sel)]
    first = np.concatenate([p[0] for p in parts])
    second = np.concatenate([p[1] for p in parts])
    return np.minimum(first, second), np.maximum(first, second)


def passages(sel: Selections, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Passage index of every selection: connected components of the overlap pairs."""
    n = len(sel)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
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


def _span_pairs(sel: Selections, proximity: float) -> tuple[np.ndarray, np.ndarray]:
    index = np.nonzero(sel.kind == SPAN)[0]
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
