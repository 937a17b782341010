"""Property tests: co-occurrence metrics at every unit and the agreement statistics, on random studies loaded
into a real store, against a plain pandas/scipy/scikit-learn/krippendorff reference computed here."""
from __future__ import annotations

import io
import itertools
import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact
from sklearn.metrics import cohen_kappa_score

import mmkg
from mmkg.analysis import presence_agreement

CODEBOOKS = {"interview": ["A.1", "A.2", "B.1", "B.2", "C.1"], "drawing": ["A.1", "D.1", "D.2"]}
ALL_CODES = [(book, code) for book, codes in CODEBOOKS.items() for code in codes]
CODERS = ["consensus", "coder1", "coder2", "coder3"]


@st.composite
def studies(draw):
    """A codings table: 1–4 participants with 1–2 sources, 1–4 segments each, random codes by each coder."""
    rows = []
    n_participants = draw(st.integers(1, 4))
    for p in range(n_participants):
        for s in range(draw(st.integers(1, 2))):
            book = draw(st.sampled_from(sorted(CODEBOOKS)))
            for g in range(draw(st.integers(1, 4))):
                for coder in CODERS:
                    codes = draw(st.sets(st.sampled_from(CODEBOOKS[book]), max_size=3))
                    if coder == "consensus" and not codes:
                        codes = {CODEBOOKS[book][0]}
                    for code in sorted(codes):
                        rows.append({"study_id": "rand", "participant_id": f"P{p}", "source_id": f"P{p}-S{s}",
                                     "source_kind": book, "segment_id": f"P{p}-S{s}-G{g}", "start": g * 10,
                                     "end": g * 10 + 5, "code_id": code, "codebook": book, "coder": coder})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with mmkg.open_store(tmp_path_factory.mktemp("prop-store")) as kg:
        yield kg, tmp_path_factory.mktemp("prop-files")


def _load(kg, folder, table: pd.DataFrame) -> None:
    path = folder / "codings.csv"
    table.to_csv(path, index=False)
    kg.load(path)


def _reference_pairs(table: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Every pair's metrics by plain set arithmetic and scipy's Fisher test."""
    column = {"segment": "segment_id", "source": "source_id", "participant": "participant_id"}[unit]
    c = table[table["coder"] == "consensus"].assign(key=lambda f: f["codebook"] + ":" + f["code_id"])
    sets = c.groupby("key")[column].agg(set)
    total = c[column].nunique()
    rows = []
    for a, b in itertools.combinations(sorted(sets.index), 2):
        n_a, n_b, n_ab = len(sets[a]), len(sets[b]), len(sets[a] & sets[b])
        if n_ab == 0:
            continue
        rows.append({"a": a, "b": b, "n_units": total, "n_a": n_a, "n_b": n_b, "n_ab": n_ab,
                     "c_coefficient": n_ab / (n_a + n_b - n_ab), "p_b_given_a": n_ab / n_a,
                     "p_a_given_b": n_ab / n_b, "lift": n_ab * total / (n_a * n_b),
                     "fisher_p": fisher_exact([[n_ab, n_a - n_ab], [n_b - n_ab, total - n_a - n_b + n_ab]])[1],
                     "imbalanced": max(n_a, n_b) >= 5 * min(n_a, n_b)})
    return pd.DataFrame(rows)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=studies())
def test_cooccurrence_at_every_unit_and_agreement_match_the_reference(store, table):
    kg, folder = store
    _load(kg, folder, table)  # one load per example (the slow part), both analyses checked on it
    _check_agreement(kg, table)
    for unit in ("segment", "source", "participant"):
        got = kg.query("cooccurrence", study_id="rand", unit=unit)
        expected = _reference_pairs(table, unit)
        assert len(got) == len(expected), unit
        if expected.empty:
            continue
        keys = got["codebook_a"] + ":" + got["code_a"], got["codebook_b"] + ":" + got["code_b"]
        got = got.assign(a=[min(x, y) for x, y in zip(*keys)], b=[max(x, y) for x, y in zip(*keys)])
        swapped = keys[0] != got["a"]  # a reported pair (b, a) carries n_b as n_a
        for one, other in (("n_a", "n_b"), ("p_b_given_a", "p_a_given_b")):
            got.loc[swapped, [one, other]] = got.loc[swapped, [other, one]].to_numpy()
        merged = expected.merge(got, on=["a", "b"], suffixes=("", "_got"), how="left")
        for column in ("n_units", "n_a", "n_b", "n_ab", "imbalanced"):
            assert (merged[column] == merged[f"{column}_got"]).all(), (unit, column)
        for column in ("c_coefficient", "p_b_given_a", "p_a_given_b", "lift", "fisher_p"):
            np.testing.assert_allclose(merged[f"{column}_got"].astype(float), merged[column].astype(float),
                                       rtol=1e-9, err_msg=f"{unit} {column}")


def _reference_agreement(table: pd.DataFrame, codebook: str, coders: list[str]):
    mine = table[table["codebook"] == codebook]
    segments = sorted(mine["segment_id"].unique())
    codes = sorted(mine["code_id"].unique())
    present = set(zip(mine["segment_id"], mine["code_id"], mine["coder"]))
    ratings = np.array([[int((s, k, coder) in present) for s in segments for k in codes] for coder in coders])
    return ratings


def _check_agreement(kg, table: pd.DataFrame) -> None:
    got = kg.query("agreement", study_id="rand", level="codebook").set_index("codebook")
    coders = sorted(set(table["coder"]) - {"consensus"})  # coders known from their codings
    if len(coders) < 2:
        assert got.empty
        return
    for codebook in sorted(table["codebook"].unique()):
        ratings = _reference_agreement(table, codebook, coders)
        row = got.loc[codebook]
        assert row["units"] == ratings.shape[1]
        assert row["both"] == int((ratings[0] & ratings[1]).sum())
        assert row["percent_agreement"] == pytest.approx((ratings[0] == ratings[1]).mean())
        _close(row["cohen_kappa"], _sklearn_kappa(ratings[0], ratings[1]))
        _close(row["krippendorff_alpha"], _alpha(ratings))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 4).flatmap(lambda m: st.lists(st.lists(st.integers(0, 1), min_size=m, max_size=m),
                                                     min_size=1, max_size=40)))
def test_presence_agreement_formulas(units):
    ratings = np.array(units).T
    got = presence_agreement(ratings)
    _close(got["cohen_kappa"], _sklearn_kappa(ratings[0], ratings[1]))
    _close(got["krippendorff_alpha"], _alpha(ratings))
    assert got["percent_agreement"] == pytest.approx((ratings[0] == ratings[1]).mean())


def _sklearn_kappa(x, y) -> float:
    if len(set(x) | set(y)) < 2:
        return math.nan  # one category only: κ is undefined
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(cohen_kappa_score(x, y))


def _alpha(ratings) -> float:
    if len(np.unique(ratings)) < 2:
        return math.nan  # one value only: α is undefined
    return float(krippendorff.alpha(reliability_data=ratings, level_of_measurement="nominal"))


def _close(got, expected) -> None:
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-9)


@st.composite
def tables(draw):
    total = draw(st.integers(1, 3000))
    n_a, n_b = draw(st.integers(0, total)), draw(st.integers(0, total))
    return draw(st.integers(max(0, n_a + n_b - total), min(n_a, n_b))), total, n_a, n_b


@settings(max_examples=150, deadline=None)
@given(st.lists(tables(), min_size=1, max_size=20))
def test_vectorised_fisher_matches_scipy(batch):
    from mmkg.analysis import fisher_two_sided

    x, total, n_a, n_b = map(list, zip(*batch))
    expected = [fisher_exact([[k, a - k], [b - k, n - a - b + k]])[1] for k, n, a, b in batch]
    np.testing.assert_allclose(fisher_two_sided(x, total, n_a, n_b), expected, rtol=1e-8, atol=1e-300)
