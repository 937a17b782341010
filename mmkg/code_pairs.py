"""The codes units carry and the code pairs they share, from integer arrays (numpy only: a load counts them too,
and a load imports no scipy).

A unit's codes are given row by row (`unit_of_row`, `code_of_row`: integers, a code repeated in a unit counts
once); `code_rows` keeps each unit's distinct codes, ascending, as the two arrays of a CSR matrix.  The pairs a
unit carries are those of its codes (`unit_pairs`); a passage whose selections do not all overlap carries only
the pairs of codes on overlapping selections (`loose_pairs`).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PAIR_CHUNK = 1 << 22  # code pairs enumerated at once: bounds the memory of `unit_pairs`
TABLE_SLACK = 1 << 20  # keys below `size` go through a table of `size` entries up to 8 per key plus this many


def _in_table(keys: np.ndarray, size: int) -> bool:
    return size <= 8 * len(keys) + TABLE_SLACK


def distinct_keys(keys: np.ndarray, size: int) -> np.ndarray:
    """The distinct values of non-negative integer `keys` below `size`, ascending: through a table of flags
    when `size` is not much larger than the keys, else by sorting (stable: keys fetched or built unit by unit
    come in runs, which timsort takes in about half the time of quicksort)."""
    if _in_table(keys, size):
        present = np.zeros(size, dtype=bool)
        present[keys] = True
        return np.flatnonzero(present)
    keys = np.sort(keys, kind="stable")
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def counted_keys(keys: np.ndarray, size: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values of non-negative integer `keys` below `size`, ascending; how often each occurs, or
    the sum of its `weights`), as `distinct_keys` finds them: a table of counts, else a sort."""
    if _in_table(keys, size):
        counts = np.bincount(keys, weights=weights, minlength=size)
        found = np.flatnonzero(counts)
        return found, counts[found].astype(np.int64)
    if weights is None:
        return np.unique(keys, return_counts=True)
    found, inverse = np.unique(keys, return_inverse=True)
    return found, np.bincount(inverse, weights=weights, minlength=len(found)).astype(np.int64)


def code_rows(unit_of_row: np.ndarray, code_of_row: np.ndarray, n_units: int, n_codes: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(pointer, codes): each unit's distinct codes, ascending, are codes[pointer[u]:pointer[u + 1]]."""
    key = unit_of_row.astype(np.int64)  # (built in place: a study's codings are millions)
    key *= n_codes
    key += code_of_row
    key = distinct_keys(key, n_units * n_codes)
    units, codes = np.divmod(key, max(n_codes, 1))
    pointer = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(np.bincount(units, minlength=n_units), out=pointer[1:])
    return pointer, codes


def _crossed(pointer: np.ndarray, codes: np.ndarray, left: np.ndarray, right: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, a, b) for every code a of unit left[i] and code b of unit right[i]."""
    n_left, n_right = np.diff(pointer)[left], np.diff(pointer)[right]
    counts = n_left * n_right
    which = np.repeat(np.arange(len(left)), counts)
    k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return which, codes[pointer[left][which] + k // n_right[which]], codes[pointer[right][which] + k % n_right[which]]


def unit_pairs(pointer: np.ndarray, codes: np.ndarray, chunk: int = PAIR_CHUNK
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs (a, b), a < b, of codes one unit carries, one entry per unit and pair (`code_rows`'s arrays),
    a few million at a time."""
    per_unit = np.diff(pointer)
    units = np.flatnonzero(per_unit > 1)
    cost = np.cumsum(per_unit[units] ** 2)
    start = 0
    while start < len(units):
        stop = max(start + 1, int(np.searchsorted(cost, cost[start] - per_unit[units[start]] ** 2 + chunk, "right")))
        part = units[start:stop]
        _, a, b = _crossed(pointer, codes, part, part)
        yield a[a < b], b[a < b]
        start = stop


def loose_pairs(selection_of_row: np.ndarray, code_of_row: np.ndarray, passage: np.ndarray,
                clique: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], n_codes: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The code pairs (a, b), a <= b, the passages that are not cliques carry, one entry per passage and pair:
    the codes of every two overlapping selections (`pairs`) and of each selection with itself (a == b: the
    passage carries a).  `selection_of_row`, `code_of_row`: each coding's selection and code; `passage`: each
    selection's passage; `clique`: per passage, whether every two of its selections overlap."""
    first, second = pairs
    rows = ~clique[passage[selection_of_row]]
    pointer, codes = code_rows(selection_of_row[rows], code_of_row[rows], len(passage), n_codes)
    inside = ~clique[passage[first]]
    loose = distinct_keys(selection_of_row[rows], len(passage))
    left = np.concatenate([first[inside], loose])
    right = np.concatenate([second[inside], loose])
    which, a, b = _crossed(pointer, codes, left, right)
    low, high = np.minimum(a, b), np.maximum(a, b)
    # each (passage, a, b) once: passages renumbered among the loose ones keep the keys small
    _, loose_passage = np.unique(passage[left], return_inverse=True)
    n_loose = int(loose_passage.max()) + 1 if len(loose_passage) else 0
    key = distinct_keys((loose_passage[which].astype(np.int64) * n_codes + low) * n_codes + high,
                        n_loose * n_codes * n_codes)
    return (key // n_codes) % n_codes, key % n_codes
