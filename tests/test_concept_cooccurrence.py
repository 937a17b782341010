"""Concept co-occurrence is counted the one way code co-occurrence is (`mmkg.analysis`: codes mapped to
concepts, then the one counter): its numbers on the founding study equal an independent count made here from
the study's CSV files and its concept map — plain pandas sets at the source, participant and exact units, the
union-find passages of tests/overlap_reference.py at the segment unit."""
from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from overlap_reference import reference

import mmkg

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "founding"
MATCHES = ("exact", "close", "broad")  # the query's default `matches`


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(STUDY / name, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def mapped_codings() -> pd.DataFrame:
    """The analysis (consensus) codings, one row per concept their code maps to, with source and position."""
    concept_map = read("concept_map.csv")
    concept_map = concept_map[concept_map["match"].isin(MATCHES)]
    codings = read("codings.csv")
    codings = codings[codings["coder"] == "consensus"]
    rows = codings.merge(concept_map[["codebook", "code_id", "concept"]], on=["codebook", "code_id"])
    rows = rows.merge(read("segments.csv"), on="segment_id").merge(read("sources.csv"), on="source_id")
    assert len(rows) > 900
    return rows


def set_counts(units: pd.Series) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """{(a, b): (N, n_a, n_b, n_ab)} from one set of concepts per unit (every unit carries a mapped concept)."""
    units = [set(concepts) for concepts in units]
    carried = Counter(c for concepts in units for c in concepts)
    together = Counter(pair for concepts in units for pair in itertools.combinations(sorted(concepts), 2))
    return {(a, b): (len(units), carried[a], carried[b], n) for (a, b), n in together.items()}


def passage_counts(rows: pd.DataFrame) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    selections = []
    for segment, group in rows.groupby("segment_id"):
        first = group.iloc[0]
        if first["start"] != "":
            kind, geometry = "span", (int(first["start"]), int(first["end"]))
        elif first["x"] != "":
            kind, geometry = "region", tuple(int(first[k]) for k in ("x", "y", "width", "height"))
        else:
            kind, geometry = "whole", (segment,)
        selections.append({"source": first["source_id"], "kind": kind, "geometry": geometry,
                           "codes": {("", c) for c in group["concept"]}, "source_kind": first["kind"]})
    n_ab, n_a, n_units = reference(selections)
    return {(a[1], b[1]): (n_units[(a, b)], *n_a[(a, b)], n) for (a, b), n in n_ab.items() if n}


def independent(rows: pd.DataFrame, unit: str) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    if unit == "segment":
        return passage_counts(rows)
    if unit == "exact":
        position = rows["source_id"] + "@" + rows[["start", "end", "x", "y", "width", "height"]].agg("|".join, axis=1)
        whole = (rows["start"] == "") & (rows["x"] == "")
        rows = rows.assign(selection=position.where(~whole, rows["segment_id"]))
        return set_counts(rows.groupby("selection")["concept"].agg(set))
    column = {"source": "source_id", "participant": "participant_id"}[unit]
    return set_counts(rows.groupby(column)["concept"].agg(set))


@pytest.mark.parametrize("unit", ["segment", "exact", "source", "participant"])
def test_concept_pairs_equal_an_independent_count(founding_template, mapped_codings, unit):
    with mmkg.open_store(founding_template, read_only=True) as kg:
        found = kg.query("concept_cooccurrence", study_id="founding", unit=unit)
    expected = independent(mapped_codings, unit)
    got = {(r.concept_a, r.concept_b): (r.n_units, r.n_a, r.n_b, r.n_ab) for r in found.itertuples()}
    assert len(got) > 100 and got == expected
    jaccard = found["n_ab"] / (found["n_a"] + found["n_b"] - found["n_ab"])
    assert found["c_coefficient"].tolist() == pytest.approx(jaccard.tolist())
    assert found["lift"].tolist() == pytest.approx((found["n_ab"] * found["n_units"] /
                                                     (found["n_a"] * found["n_b"])).tolist())


def test_pooled_counts_every_studys_units_together(tmp_path):
    """Two copies of one study pooled: every count doubles, N too, so the coefficients stay."""
    with mmkg.open_store(tmp_path / "store") as kg:
        kg.load()
        kg.load(STUDY, study_id="copy")
        per_study = kg.query("concept_cooccurrence", unit="source")
        pooled = kg.query("concept_cooccurrence", unit="source", pooled=True)
    founding = per_study[per_study["study_id"] == "founding"].set_index(["concept_a", "concept_b"])
    copy = per_study[per_study["study_id"] == "copy"].set_index(["concept_a", "concept_b"])
    assert set(pooled["study_id"]) == {"*"}
    pooled = pooled.set_index(["concept_a", "concept_b"])
    counts = ["n_units", "n_a", "n_b", "n_ab"]
    pd.testing.assert_frame_equal(pooled.loc[founding.index, counts],
                                  founding[counts] + copy.loc[founding.index, counts])
