"""Paper versus graph: every figure of the founding paper that the graph can answer, side by side.

The paper's figures come from `studies/founding_spec/paper-facts.json` (a transcription of the paper,
shipped with the package).  Graph values come from the named queries — `codings`, `code_frequencies`,
`cooccurrence`, `agreement`, `codes`, `participants` — never from the generator's own bookkeeping.

Units (DESIGN.md): "codings" counts the study's analysis (consensus) codings; a coding co-occurrence
("occur together N times") counts segments carrying all the codes; "participants" counts participants
with at least one analysis coding of the code(s) anywhere in their material.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

from mmkg.api import Mmkg

CODEBOOK_PREFIX = {"I": "interview", "D": "drawing"}
COMPARATORS = {"==": lambda x, v: x == v, ">=": lambda x, v: x >= v, ">": lambda x, v: x > v,
               "<": lambda x, v: x < v, "<=": lambda x, v: x <= v, "approx": lambda x, v: abs(x - v) < 0.5}
ALL_LOGIC = ("single", "all", "each")
KAPPA_NOTE = ("mmkg's κ counts every segment × code of the codebook (code present or not); the paper does not "
              "publish its unit, and the published agreement counts force a higher κ under this one "
              "(studies/founding/PROVENANCE.md).")


def paper_facts() -> list[dict]:
    """The shipped transcription of the paper's figures."""
    from mmkg import studies

    path = Path(studies.__file__).parent / "founding_spec" / "paper-facts.json"
    return json.loads(path.read_text(encoding="utf-8"))


def fact_notes() -> dict[str, str]:
    """Why a figure is not reproduced, or how it is read (from the study's PROVENANCE notes)."""
    from mmkg import studies

    path = Path(studies.__file__).parent / "founding_spec" / "fact_notes.json"
    return json.loads(path.read_text(encoding="utf-8")).get("notes", {})


def _code_key(code: str) -> tuple[str, str]:
    prefix, _, code_id = code.partition(":")
    return CODEBOOK_PREFIX[prefix], code_id


class _GraphFigures:
    """Graph-side sets and counts of one study, fetched once through named queries."""

    def __init__(self, kg: Mmkg, study_id: str):
        self.kg, self.study_id = kg, study_id
        studies = kg.query("studies")
        coder = studies.loc[studies["study_id"] == study_id, "analysis_coder"].iloc[0]
        codings = kg.query("codings", study_id=study_id)
        if coder:
            codings = codings[codings["coder"] == coder]
        keys = list(zip(codings["codebook"], codings["code_id"]))
        codings = codings.assign(key=keys)
        self.segment_sets = codings.groupby("segment_id")["key"].agg(frozenset)
        self.participant_sets = codings.groupby("participant_id")["key"].agg(frozenset)
        frequencies = kg.query("code_frequencies", study_id=study_id)
        self.codings_per_code = dict(zip(zip(frequencies["codebook"], frequencies["code_id"]),
                                         frequencies["codings"]))

    @lru_cache(maxsize=None)
    def agreement(self) -> pd.DataFrame:
        return self.kg.query("agreement", study_id=self.study_id, level="codebook").set_index("codebook")

    @lru_cache(maxsize=None)
    def codes(self) -> pd.DataFrame:
        return self.kg.query("codes", study_id=self.study_id)

    @lru_cache(maxsize=None)
    def segment_pairs(self) -> dict[frozenset, int]:
        """n_ab of every co-occurring pair of codes at segment level, from one `cooccurrence` query."""
        rows = self.kg.query("cooccurrence", study_id=self.study_id, unit="segment")
        return {frozenset({(r.codebook_a, r.code_a), (r.codebook_b, r.code_b)}): int(r.n_ab)
                for r in rows.itertuples()}

    def pair_count(self, a: tuple[str, str], b: tuple[str, str]) -> int:
        return self.segment_pairs().get(frozenset({a, b}), 0)


def _holds(logic: str, positive: set, negative: set, carried: frozenset) -> bool:
    if negative & carried:
        return False
    return positive <= carried if logic in ALL_LOGIC else bool(positive & carried)


def _answer(fact: dict, g: _GraphFigures) -> tuple[object, bool, str] | None:
    """(graph value, match, query used) for one fact, or None when the graph cannot answer it."""
    kind, value, comparator = fact["kind"], fact["value"], fact["comparator"]
    if comparator not in COMPARATORS or value is None:
        return None
    compare = COMPARATORS[comparator]
    codes = [_code_key(c) for c in fact["codes"]]
    negative = {_code_key(c) for c in fact["negated_codes"]}
    positive = set(codes) - negative
    logic = fact["code_logic"]
    listed = {f"P{p}" for p in fact["participants"]}

    if kind == "code_count_codings" and codes:
        counts = [int(g.codings_per_code.get(c, 0)) for c in codes]
        shown = counts[0] if len(counts) == 1 else counts
        return shown, all(compare(n, value) for n in counts), "code_frequencies"
    if kind == "cooccurrence" and fact["unit"] == "codings" and codes:
        if len(codes) == 2 and not negative:
            n = g.pair_count(*codes)
            return n, compare(n, value), "cooccurrence"
        n = int(sum(_holds("all", positive, negative, s) for s in g.segment_sets))
        return n, compare(n, value), "codings"
    if kind in ("code_count_participants", "participants_list", "cooccurrence") and codes and logic:
        holders = {p for p, s in g.participant_sets.items() if _holds(logic, positive, negative, s)}
        if kind == "participants_list":
            n = len(listed & holders)
            ok = compare(n, value)
        else:
            n = len(holders)
            ok = compare(n, value) and listed <= holders
        if fact["participants_complete"]:
            ok = ok and holders == listed
        return n, ok, "codings"
    if kind == "agreement":
        return _agreement(fact, g)
    if kind == "codebook":
        return _codebook(fact, g)
    return None


def _agreement(fact: dict, g: _GraphFigures) -> tuple[object, bool, str] | None:
    table = g.agreement()
    compare = COMPARATORS[fact["comparator"]]
    ident = fact["id"]
    if ident == "coding-two-coders":
        n = len(str(table["coders"].iloc[0]).split(","))
        return n, compare(n, fact["value"]), "agreement"
    codebook = "interview" if "interview" in ident else "drawing" if "drawing" in ident else None
    if codebook is None or codebook not in table.index:
        return None
    row = table.loc[codebook]
    if ident.endswith("-agreed"):
        n = int(row["both"])
    elif ident.endswith("-disagreed"):
        n = int(row["only_a"] + row["only_b"])
    elif ident.endswith("-total"):
        n = int(row["both"] + row["only_a"] + row["only_b"])
    elif "kappa" in ident:
        kappa = round(float(row["cohen_kappa"]), 3)
        return kappa, compare(kappa, fact["value"]), "agreement"
    else:
        return None
    return n, compare(n, fact["value"]), "agreement"


def _codebook(fact: dict, g: _GraphFigures) -> tuple[object, bool, str] | None:
    codes = g.codes()
    compare = COMPARATORS[fact["comparator"]]
    ident = fact["id"]
    codebook = "interview" if ("interview" in ident or "table2" in ident) else "drawing"
    mine = codes[codes["codebook"] == codebook]
    if fact["unit"] == "groups":
        n = int(mine["group_id"].nunique())
    elif "leaf" in ident:
        parents = set(mine["parent_code_id"].dropna())
        n = int((~mine["code_id"].isin(parents)).sum())
    else:
        n = len(mine)
    return n, compare(n, fact["value"]), "codes"


def paper_vs_graph(kg: Mmkg, study_id: str = "founding") -> pd.DataFrame:
    """One row per paper figure the graph can answer: id, section, kind, confidence, paper value,
    comparator, graph value, match, the named query the graph value came from, and for a mismatch the
    recorded reason (studies/founding/PROVENANCE.md explains each)."""
    kg.require_study(study_id)
    figures = _GraphFigures(kg, study_id)
    notes = fact_notes()
    rows = []
    for fact in paper_facts():
        answer = _answer(fact, figures)
        if answer is None:
            continue
        graph_value, match, query = answer
        rows.append({"id": fact["id"], "section": fact["section"], "kind": fact["kind"],
                     "confidence": fact["confidence"], "paper_value": fact["value"],
                     "comparator": fact["comparator"], "graph_value": graph_value, "match": bool(match),
                     "unit": fact["unit"], "query": query,
                     "note": "" if match else notes.get(fact["id"], KAPPA_NOTE if "kappa" in fact["id"] else "")})
    frame = pd.DataFrame(rows)
    for column in ("paper_value", "graph_value"):  # keep 6 as 6 beside 0.71: no common float column
        frame[column] = pd.Series([row[column] for row in rows], dtype=object)
    return frame
