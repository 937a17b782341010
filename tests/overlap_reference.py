"""A plain-Python reference for segment co-occurrence and passages, shared by the tests.

It never sorts or sweeps: it compares every two selections of a source, joins the overlapping ones into
passages with a union-find, and counts per passage the code pairs whose selections are the same or overlap.
Selections are dicts: source, kind (span | region | whole), geometry (a tuple), codes ({(codebook, code)}),
source_kind.
"""
from __future__ import annotations

import itertools
from collections import defaultdict


def cooccur(s: dict, t: dict, proximity: int = 0) -> bool:
    """Same selection, or overlapping ranges / intersecting regions of one source."""
    if s is t:
        return True
    if s["source"] != t["source"] or s["kind"] != t["kind"] or s["kind"] == "whole":
        return False
    if s["geometry"] == t["geometry"]:
        return True
    if s["kind"] == "span":
        (a0, a1), (b0, b1) = s["geometry"], t["geometry"]
        return a0 < b1 + proximity and b0 < a1 + proximity
    (ax, ay, aw, ah), (bx, by, bw, bh) = s["geometry"], t["geometry"]
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def reference(selections: list[dict], proximity: int = 0, exact: bool = False):
    """{(a, b): n_ab}, {(a, b): n_a restricted}, {(a, b): N} over passages, for every pair of codes.

    Each selection: source, kind (span | region | whole), geometry, codes ({(codebook, code)}), source_kind.
    """
    parent = list(range(len(selections)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(selections)), 2):
        s, t = selections[i], selections[j]
        linked = (s["source"] == t["source"] and s["kind"] == t["kind"] != "whole"
                  and s["geometry"] == t["geometry"]) if exact else cooccur(s, t, proximity)
        if linked:
            parent[find(i)] = find(j)
    members = defaultdict(list)
    for i in range(len(selections)):
        members[find(i)].append(selections[i])
    # the source kinds each codebook is applied on
    kinds = defaultdict(set)
    for s in selections:
        for book, _ in s["codes"]:
            kinds[book].add(s["source_kind"])
    carried, together = defaultdict(set), defaultdict(set)
    passage_kind = {}
    for root, group in members.items():
        passage_kind[root] = group[0]["source_kind"]
        for s in group:
            for code in s["codes"]:
                carried[code].add(root)
        for s in group:
            for t in group:
                if s is t or (not exact and cooccur(s, t, proximity)) or (
                        exact and s["geometry"] == t["geometry"] and s["kind"] != "whole"):
                    for a in s["codes"]:
                        for b in t["codes"]:
                            together[frozenset((a, b))].add(root)
    n_ab, n_a, n_units = {}, {}, {}
    for a, b in itertools.combinations(sorted(carried), 2):
        both_kinds = kinds[a[0]] & kinds[b[0]]
        universe = {root for root, kind in passage_kind.items() if kind in both_kinds}
        n_ab[(a, b)] = len(together[frozenset((a, b))] & universe)
        n_a[(a, b)] = (len(carried[a] & universe), len(carried[b] & universe))
        n_units[(a, b)] = len(universe)
    return n_ab, n_a, n_units


def passage_ids(selections: list[dict]) -> list[int]:
    """The passage (a representative index) of every selection: union-find over every co-occurring pair."""
    parent = list(range(len(selections)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(selections)), 2):
        if cooccur(selections[i], selections[j]):
            parent[find(i)] = find(j)
    return [find(i) for i in range(len(selections))]
