"""Property tests on random studies loaded into a real store: co-occurrence metrics at every unit against a
plain set-arithmetic / scipy reference, every metric unchanged by filters that do not touch the pair, and the
agreement statistics against scikit-learn and krippendorff on passages built by tests/overlap_reference.py."""
from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from overlap_reference import passage_ids, reference
from scipy.stats import fisher_exact
from sklearn.metrics import cohen_kappa_score

import mmkg
from mmkg.analysis import presence_agreement

CODEBOOKS = {"interview": ["A.1", "A.2", "B.1", "B.2", "C.1"], "drawing": ["A.1", "D.1", "D.2"],
             "general": ["G.1", "G.2"]}
KINDS = {"interview": ("interview",), "drawing": ("drawing",), "general": ("interview", "drawing")}
CODERS = ["consensus", "coder1", "coder2", "coder3"]
UNITS = ("segment", "exact", "source", "participant")
METRIC_COLUMNS = ("n_units", "n_a", "n_b", "n_ab", "c_coefficient", "p_b_given_a", "p_a_given_b", "lift",
                  "fisher_p", "imbalanced")


@st.composite
def studies(draw):
    """1–4 participants with 1–2 sources; 1–4 places per source, ranges or regions that may overlap or touch;
    every coder codes a place on the consensus selection or on one of its own, shifted a little."""
    segments, codings = [], []
    for p in range(draw(st.integers(1, 4))):
        for s in range(draw(st.integers(1, 2))):
            kind = draw(st.sampled_from(["interview", "drawing"]))
            source = f"P{p}-S{s}"
            books = [b for b in CODEBOOKS if kind in KINDS[b]]
            for g in range(draw(st.integers(1, 4))):
                start, length = g * 10 + draw(st.integers(0, 4)), draw(st.integers(1, 14))
                for coder in CODERS:
                    codes = draw(st.sets(st.sampled_from([(b, c) for b in books for c in CODEBOOKS[b]]), max_size=3))
                    if coder == "consensus" and not codes:
                        codes = {(books[0], CODEBOOKS[books[0]][0])}
                    if not codes:
                        continue
                    shift = 0 if coder == "consensus" else draw(st.sampled_from([0, 0, 1, -1, 3]))
                    segment_id = f"{source}-G{g}" + ("" if shift == 0 else f"-{coder}")
                    if not any(r["segment_id"] == segment_id for r in segments):
                        a = max(0, start + shift)
                        geometry = ({"start": a, "end": a + length} if kind == "interview" else
                                    {"x": a, "y": draw(st.integers(0, 3)), "width": length, "height": 5})
                        segments.append({"segment_id": segment_id, "source_id": source, "kind": kind, **geometry})
                    codings += [{"segment_id": segment_id, "codebook": b, "code_id": c, "coder": coder}
                                for b, c in sorted(codes)]
    return pd.DataFrame(segments), pd.DataFrame(codings)


def write_folder(folder: Path, segments: pd.DataFrame, codings: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.json").write_text(json.dumps({"id": "rand", "title": "random", "provenance": "test data",
                                                   "codebooks": list(CODEBOOKS), "analysis_coder": "consensus"}))
    groups = sorted({(b, c.split(".")[0]) for b, cs in CODEBOOKS.items() for c in cs})
    pd.DataFrame([{"codebook": b, "group_id": g, "label": f"group {g}", "parent_group_id": ""} for b, g in groups]) \
        .to_csv(folder / "groups.csv", index=False)
    pd.DataFrame([{"codebook": b, "code_id": c, "label": f"{b} {c}", "group_id": c.split(".")[0],
                   "parent_code_id": "", "codable": "true", "preferred_label": "", "definition": ""}
                  for b, cs in CODEBOOKS.items() for c in cs]).to_csv(folder / "codes.csv", index=False)
    sources = segments.drop_duplicates("source_id")
    people = sorted({s.split("-")[0] for s in sources["source_id"]})
    pd.DataFrame({"participant_id": people, "label": people}).to_csv(folder / "participants.csv", index=False)
    pd.DataFrame({"source_id": sources["source_id"], "participant_id": sources["source_id"].str.split("-").str[0],
                  "kind": sources["kind"], "title": sources["source_id"]}).to_csv(folder / "sources.csv", index=False)
    out = segments.reindex(columns=["segment_id", "source_id", "start", "end", "x", "y", "width", "height"])
    for column in ("start", "end", "x", "y", "width", "height"):
        out[column] = out[column].astype("Int64")
    out.assign(synthetic="true", text="", text_section="").to_csv(folder / "segments.csv", index=False)
    codings.to_csv(folder / "codings.csv", index=False)


def selections_of(segments: pd.DataFrame, codings: pd.DataFrame, coders) -> list[dict]:
    """Reference selections: one per segment with the chosen coders' codes."""
    chosen = codings[codings["coder"].isin(coders)]
    codes = chosen.groupby("segment_id").apply(lambda f: set(zip(f["codebook"], f["code_id"])), include_groups=False)
    out = []
    for row in segments.itertuples():
        if row.segment_id not in codes.index:
            continue
        geometry = (int(row.start), int(row.end)) if row.kind == "interview" else \
            (int(row.x), int(row.y), int(row.width), int(row.height))
        out.append({"source": row.source_id, "kind": "span" if row.kind == "interview" else "region",
                    "geometry": geometry, "codes": codes[row.segment_id], "source_kind": row.kind,
                    "segment_id": row.segment_id})
    return out


def reference_pairs(segments: pd.DataFrame, codings: pd.DataFrame, unit: str) -> dict:
    """{(a, b): metrics} at one unit, for pairs with n_ab >= 1, by plain set arithmetic and scipy."""
    sels = selections_of(segments, codings, ["consensus"])
    if unit in ("segment", "exact"):
        n_ab, n_a, n_units = reference(sels, exact=(unit == "exact"))
        counts = {pair: (n_units[pair], *n_a[pair], n) for pair, n in n_ab.items()}
    else:
        kinds = defaultdict(set)  # codebook -> source kinds it is applied on
        units = defaultdict(set)  # unit -> codes; unit -> kinds of its coded material
        unit_kinds = defaultdict(set)
        for s in sels:
            key = s["source"] if unit == "source" else s["source"].split("-")[0]
            units[key] |= s["codes"]
            unit_kinds[key].add(s["source_kind"])
            for book, _ in s["codes"]:
                kinds[book].add(s["source_kind"])
        can = {u: {b for b in kinds if unit_kinds[u] & kinds[b]} for u in units}
        counts = {}
        for a, b in itertools.combinations(sorted({c for cs in units.values() for c in cs}), 2):
            universe = {u for u in units if a[0] in can[u] and b[0] in can[u]}
            with_a = {u for u in universe if a in units[u]}
            with_b = {u for u in universe if b in units[u]}
            counts[(a, b)] = (len(universe), len(with_a), len(with_b), len(with_a & with_b))
    out = {}
    for pair, (total, n_a, n_b, n_ab) in counts.items():
        if n_ab == 0:
            continue
        out[pair] = {"n_units": total, "n_a": n_a, "n_b": n_b, "n_ab": n_ab,
                     "c_coefficient": n_ab / (n_a + n_b - n_ab), "p_b_given_a": n_ab / n_a,
                     "p_a_given_b": n_ab / n_b, "lift": n_ab * total / (n_a * n_b),
                     "fisher_p": fisher_exact([[n_ab, n_a - n_ab], [n_b - n_ab, total - n_a - n_b + n_ab]])[1]
                     if total - n_a - n_b + n_ab >= 0 else math.nan,  # (passages with both, not meeting)
                     "imbalanced": max(n_a, n_b) > 5 * min(n_a, n_b)}
    return out


def by_pair(frame: pd.DataFrame) -> dict:
    """{(a, b) with a < b: metrics}, orienting rows that list the pair as (b, a)."""
    out = {}
    for row in frame.to_dict("records"):
        a, b = (row["codebook_a"], row["code_a"]), (row["codebook_b"], row["code_b"])
        if b < a:
            a, b = b, a
            row["n_a"], row["n_b"] = row["n_b"], row["n_a"]
            row["p_b_given_a"], row["p_a_given_b"] = row["p_a_given_b"], row["p_b_given_a"]
        out[(a, b)] = {k: row[k] for k in METRIC_COLUMNS}
    return out


def assert_same(got: dict, expected: dict, what) -> None:
    assert set(got) == set(expected), what
    for pair in expected:
        for column in METRIC_COLUMNS:
            x, y = got[pair][column], expected[pair][column]
            if isinstance(y, float) and math.isnan(y):
                assert math.isnan(x), (what, pair, column)
            elif isinstance(y, float):
                assert x == pytest.approx(y, rel=1e-9), (what, pair, column)
            else:
                assert x == y, (what, pair, column)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with mmkg.open_store(tmp_path_factory.mktemp("prop-store")) as kg:
        yield kg, tmp_path_factory.mktemp("prop-files")


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(study=studies())
def test_cooccurrence_at_every_unit_and_agreement_match_the_reference(store, study):
    kg, folder = store
    segments, codings = study
    write_folder(folder / "rand", segments, codings)
    kg.load(folder / "rand")  # one load per example (the slow part), both analyses checked on it
    _check_agreement(kg, segments, codings)
    for unit in UNITS:
        got = by_pair(kg.query("cooccurrence", study_id="rand", unit=unit))
        assert_same(got, reference_pairs(segments, codings, unit), unit)


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(study=studies(), data=st.data())
def test_every_metric_at_every_unit_is_unchanged_by_filters_that_do_not_touch_the_pair(store, study, data):
    kg, folder = store
    segments, codings = study
    write_folder(folder / "rand", segments, codings)
    kg.load(folder / "rand")
    codes = [(b, c) for b, cs in CODEBOOKS.items() for c in cs]
    for unit in UNITS:
        everything = by_pair(kg.query("cooccurrence", study_id="rand", unit=unit, min_count=0))
        book = data.draw(st.sampled_from(sorted(CODEBOOKS)))
        group = data.draw(st.sampled_from(sorted({c.split(".")[0] for c in CODEBOOKS[book]})))
        a, b = data.draw(st.sampled_from(codes)), data.draw(st.sampled_from(codes))
        filters = {
            "codebook": ({"codebook": book}, lambda x, y: x[0] == y[0] == book),
            "group": ({"group": group}, lambda x, y: {x[1][0], y[1][0]} == {group} and x[0] == y[0]),
            "code_a": ({"code_a": f"{a[0]}:{a[1]}"}, lambda x, y: a in (x, y)),
            "code_a+code_b": ({"code_a": f"{a[0]}:{a[1]}", "code_b": f"{b[0]}:{b[1]}"},
                              lambda x, y: {x, y} == {a, b} and a != b),
        }
        for name, (options, touches) in filters.items():
            if name == "group":  # a group id names groups of every codebook: restrict to one codebook too
                options = {**options, "codebook": book}
                touches = (lambda g: lambda x, y: x[0] == y[0] == book and x[1][0] == y[1][0] == g)(group)
            filtered = by_pair(kg.query("cooccurrence", study_id="rand", unit=unit, min_count=0, **options))
            expected = {pair: m for pair, m in everything.items() if touches(*pair)}
            assert_same(filtered, expected, (unit, name, options))
        # the neighbourhood view of a code gives the same metrics too
        focus = data.draw(st.sampled_from(codes))
        near = by_pair(kg.query("code_neighbourhood", study_id="rand", unit=unit, code=f"{focus[0]}:{focus[1]}",
                                limit=0, codebook=book))
        expected = {pair: m for pair, m in everything.items() if focus in pair and m["n_ab"] >= 1
                    and (pair[0] if pair[1] == focus else pair[1])[0] == book}
        assert_same(near, expected, (unit, "neighbourhood"))


def _check_agreement(kg, segments: pd.DataFrame, codings: pd.DataFrame) -> None:
    got = kg.query("agreement", study_id="rand", level="codebook").set_index("codebook")
    coders = sorted(set(codings["coder"]) - {"consensus"})  # coders known from their codings
    if len(coders) < 2:
        assert got.empty
        return
    for codebook in sorted(CODEBOOKS):
        mine = codings[(codings["codebook"] == codebook) & codings["coder"].isin(coders)]
        if mine.empty:
            assert codebook not in got.index or got.loc[codebook, "units"] == 0
            continue
        sels = selections_of(segments, mine, coders)
        roots = passage_ids(sels)
        passage_of = {s["segment_id"]: r for s, r in zip(sels, roots)}
        units = sorted(set(roots))
        present = {(passage_of[r.segment_id], r.code_id, r.coder) for r in mine.itertuples()}
        ratings = np.array([[int((u, k, coder) in present) for u in units for k in CODEBOOKS[codebook]]
                            for coder in coders])
        row = got.loc[codebook]
        assert row["units"] == ratings.shape[1]
        assert row["both"] == int((ratings[0] & ratings[1]).sum())
        assert row["percent_agreement"] == pytest.approx((ratings[0] == ratings[1]).mean())
        _close(row["cohen_kappa"], _sklearn_kappa(ratings[0], ratings[1]))
        _close(row["krippendorff_alpha"], _alpha(ratings))


@pytest.mark.slow
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


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.lists(tables(), min_size=1, max_size=20))
def test_vectorised_fisher_matches_scipy(batch):
    from mmkg.analysis import fisher_two_sided

    x, total, n_a, n_b = map(list, zip(*batch))
    expected = [fisher_exact([[k, a - k], [b - k, n - a - b + k]])[1] for k, n, a, b in batch]
    np.testing.assert_allclose(fisher_two_sided(x, total, n_a, n_b), expected, rtol=1e-8, atol=1e-300)


def test_a_pair_whose_passages_carry_both_without_meeting_has_no_fisher_p(store):
    """P1's drawing has one passage, regions G0–G1–G2 chained: it carries A.1 (G0) and D.1 (G2), which do not
    meet. With the other drawing's three passages, A.1 is in 4 of N = 4 passages, D.1 in 2, together in 1:
    the fourth cell of the 2×2 table would be 4 − 4 − 2 + 1 = −1, so there is no exact test (found by
    the property test above; before, mmkg reported p = 0 for it)."""
    kg, folder = store
    region = lambda g, source, x, width: {"segment_id": f"{source}-G{g}", "source_id": source,  # noqa: E731
                                          "kind": "drawing", "x": x, "y": 0, "width": width, "height": 5}
    segments = pd.DataFrame([region(0, "P0-S0", 0, 1), region(1, "P0-S0", 10, 1), region(2, "P0-S0", 20, 1),
                             region(0, "P1-S0", 0, 11), region(1, "P1-S0", 10, 11), region(2, "P1-S0", 20, 1)])
    coded = [("P0-S0-G0", "A.1"), ("P0-S0-G0", "D.1"), ("P0-S0-G1", "A.1"), ("P0-S0-G2", "A.1"),
             ("P1-S0-G0", "A.1"), ("P1-S0-G1", "D.2"), ("P1-S0-G2", "D.1")]
    codings = pd.DataFrame([{"segment_id": s, "codebook": "drawing", "code_id": c, "coder": "consensus"}
                            for s, c in coded])
    write_folder(folder / "chained", segments, codings)
    kg.load(folder / "chained")
    got = by_pair(kg.query("cooccurrence", study_id="rand", unit="segment"))
    pair = got[(("drawing", "A.1"), ("drawing", "D.1"))]
    assert (pair["n_units"], pair["n_a"], pair["n_b"], pair["n_ab"]) == (4, 4, 2, 1)
    assert math.isnan(pair["fisher_p"])
    assert_same(got, reference_pairs(segments, codings, "segment"), "segment")


@pytest.mark.parametrize("density", [0.01, 0.3, 0.9, 1.0])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (200, 120), (3000, 40)])
def test_the_gram_matrix_counts_the_units_two_codes_share(density, shape):
    """XᵀX of a units × codes incidence (sparse products for sparse matrices, dense BLAS for dense ones) against
    a count of the units each two codes share, code pair by code pair."""
    import scipy.sparse as sp

    from mmkg.analysis import _gram

    rng = np.random.default_rng(int(density * 100) + shape[0])
    present = rng.random(shape) < density
    got = _gram(sp.csr_matrix(present.astype(np.int64)))
    assert got.dtype == np.int64
    expected = np.array([[int(np.sum(present[:, a] & present[:, b])) for b in range(shape[1])]
                         for a in range(shape[1])])
    assert np.array_equal(got, expected)
