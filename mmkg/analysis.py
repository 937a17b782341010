"""Post-processing steps of named queries: co-occurrence metrics and intercoder agreement.

A named query whose header says `// analysis: NAME` fetches rows with its Cypher statement; the step
`ANALYSES[NAME]` turns them into the result, with the query's `// option:` values.  The arithmetic lives
in pure functions (`incidence`, `cooccurrence_table`, `agreement_table`) that the property tests check
against plain pandas/scipy/scikit-learn.

**Co-occurrence** (DESIGN.md).  A *unit* is a `segment` (one coded segment: segments are the unit, two
codes co-occur when one segment carries both — overlapping segments are *not* merged), a `source` (one
interview or drawing) or a `participant` (all of one participant's material).  The incidence table —
one row per (unit, code) — is fetched from the store in one query and becomes a sparse 0/1 matrix X
(units × codes); XᵀX gives every n_ab at once and its diagonal n_a.  For a pair of codes of one study:

- `n_units` N: units of that study carrying at least one of the selected codes (after the codebook/group
  restriction), `n_a`, `n_b`, `n_ab`: units carrying a, b, both (`n_ab` is the *count*);
- `c_coefficient` = Jaccard = n_ab / (n_a + n_b − n_ab) (ATLAS.ti's c-coefficient);
- `p_b_given_a` = n_ab / n_a, `p_a_given_b` = n_ab / n_b, `lift` = n_ab·N / (n_a·n_b);
- `fisher_p`: two-sided Fisher's exact test (`scipy.stats.fisher_exact`, vectorised here: equal to ~1e-8 relative) on the 2×2 table
  [[n_ab, n_a−n_ab], [n_b−n_ab, N−n_a−n_b+n_ab]] when n_ab ≤ `fisher_max_count` (small counts), else NaN;
- `imbalanced`: one code is at least `imbalance_ratio` (default 5) times more frequent than the other.

**Agreement** (unit: segment × code presence).  For a codebook, the units are every segment carrying at
least one coding of that codebook (by any coder) crossed with every code of the codebook; a unit is 1 for
a coder who applied the code to the segment, else 0.  Reported: `both`, `only_a`, `only_b`, `neither`
(coders a and b), `percent_agreement` = (both + neither) / units, `agreement_on_coded` = both /
(both + only_a + only_b) (the paper's "agreed on 989 codes while disagreeing on 136"), Cohen's κ for
coders a and b, and Krippendorff's α (nominal) over every compared coder.  The study's analysis coder
(`consensus`) is not compared unless named.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import gammaln

from mmkg.errors import NotFoundError, QueryError

UNITS = ("segment", "source", "participant")
METRICS = ("n_ab", "c_coefficient", "p_b_given_a", "p_a_given_b", "lift", "fisher_p")
METRIC_ALIASES = {"count": "n_ab", "jaccard": "c_coefficient", "c": "c_coefficient"}
PAIR_COLUMNS = ["study_id", "unit", "codebook_a", "code_a", "label_a", "codebook_b", "code_b", "label_b",
                "n_units", "n_a", "n_b", "n_ab", "c_coefficient", "p_b_given_a", "p_a_given_b", "lift",
                "fisher_p", "imbalanced"]
AGREEMENT_COLUMNS = ["level", "study_id", "codebook", "code_id", "label", "coder_a", "coder_b", "coders",
                     "units", "both", "only_a", "only_b", "neither", "percent_agreement", "agreement_on_coded",
                     "cohen_kappa", "krippendorff_alpha"]


# ------------------------------------------------------------------------------------------ pure functions
def incidence(units, codes, code_order=None) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
    """A 0/1 units × codes matrix from paired arrays (repeated pairs count once)."""
    # factorizing the (Arrow-backed) columns themselves: no Python string per row
    unit_idx, unit_labels = pd.factorize(pd.Series(units))
    code_idx, code_labels = pd.factorize(pd.Series(codes))
    if code_order is not None:
        position = pd.Index(code_order).get_indexer(code_labels)  # few distinct codes: cheap
        code_idx = np.where(code_idx >= 0, position[code_idx], -1)
        code_labels = pd.Index(code_order)
    keep = (unit_idx >= 0) & (code_idx >= 0)
    unit_idx, code_idx = unit_idx[keep], code_idx[keep]
    matrix = sp.csr_matrix((np.ones(len(unit_idx), dtype=np.int64), (unit_idx, code_idx)),
                           shape=(len(unit_labels), len(code_labels)))
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix, pd.Index(unit_labels), pd.Index(code_labels)


def cooccurrence_table(matrix: sp.csr_matrix, code_study: np.ndarray, *, focus: np.ndarray | None = None,
                       partner: np.ndarray | None = None, min_count: int = 1, fisher_max_count: int = 20,
                       imbalance_ratio: float = 5.0) -> pd.DataFrame:
    """Pair metrics (module docstring) for every pair of columns of one study.

    Returns columns `a`, `b` (column positions) and the metrics.  Without `focus` each unordered pair
    appears once (a < b); with `focus` (boolean mask of columns) a is a focus column and b any other
    column (or a `partner` column when that mask is given).
    """
    n_codes = matrix.shape[1]
    code_study = np.asarray(code_study, dtype=object)
    joint = (matrix.T @ matrix).toarray() if n_codes else np.zeros((0, 0), dtype=np.int64)
    n = np.diag(joint).astype(np.int64)
    study_codes, study_of_code = np.unique(code_study, return_inverse=True) if n_codes else ([], np.array([], int))
    # units per study: rows carrying any column of that study
    per_study = sp.csr_matrix((np.ones(n_codes), (np.arange(n_codes), study_of_code)),
                              shape=(n_codes, len(study_codes)))
    n_units_study = np.asarray(((matrix @ per_study) > 0).sum(axis=0)).ravel().astype(np.int64)
    if focus is None:
        a, b = np.triu_indices(n_codes, k=1)
    else:
        focus = np.asarray(focus, dtype=bool)
        others = np.ones(n_codes, dtype=bool) if partner is None else np.asarray(partner, dtype=bool)
        a, b = np.nonzero(focus[:, None] & others[None, :])
        keep = a != b
        a, b = a[keep], b[keep]
    same = study_of_code[a] == study_of_code[b]
    a, b = a[same], b[same]
    n_ab = joint[a, b].astype(np.int64)
    keep = n_ab >= min_count
    if min_count <= 0:
        keep &= (n[a] > 0) & (n[b] > 0)
    a, b, n_ab = a[keep], b[keep], n_ab[keep]
    n_a, n_b = n[a], n[b]
    total = n_units_study[study_of_code[a]]
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = n_ab / (n_a + n_b - n_ab)
        p_b_given_a = n_ab / n_a
        p_a_given_b = n_ab / n_b
        lift = n_ab * total / (n_a * n_b)
    fisher = np.full(len(a), np.nan)
    small = n_ab <= fisher_max_count
    fisher[small] = fisher_two_sided(n_ab[small], total[small], n_a[small], n_b[small])
    low, high = np.minimum(n_a, n_b), np.maximum(n_a, n_b)
    return pd.DataFrame({"a": a, "b": b, "n_units": total, "n_a": n_a, "n_b": n_b, "n_ab": n_ab,
                         "c_coefficient": jaccard, "p_b_given_a": p_b_given_a, "p_a_given_b": p_a_given_b,
                         "lift": lift, "fisher_p": fisher, "imbalanced": high >= imbalance_ratio * low})


def fisher_two_sided(x, total, n_a, n_b) -> np.ndarray:
    """Two-sided Fisher's exact p of many 2×2 tables at once, as `scipy.stats.fisher_exact` computes it:
    the probability, under the hypergeometric null, of every table no more likely than the observed one.

    x = n_ab, total = N, n_a and n_b the margins.  Each tail is one cdf/sf call; the far tail's edge is
    found by a vectorised bisection on the (unimodal) probability mass function.
    """
    x, total, n_a, n_b = (np.asarray(v, dtype=np.int64) for v in (x, total, n_a, n_b))
    if x.size == 0:
        return np.zeros(0)
    log_gamma = np.log1p(1e-7)  # scipy's relative tolerance for "no more likely"
    threshold = _log_pmf(x, total, n_a, n_b) + log_gamma
    lowest, highest = np.maximum(0, n_b - (total - n_a)), np.minimum(n_a, n_b)
    mode = ((n_a + 1) * (n_b + 1)) // (total + 2)
    below = x < mode
    # x below the mode: the far tail is [y, highest] where y is the first value above the mode as unlikely
    # as x (pmf falls after the mode); above the mode: [lowest, y] mirrored.
    lo = np.where(below, mode, lowest)
    hi = np.where(below, highest + 1, mode + 1)  # search in [lo, hi); hi = "none found"
    for _ in range(64):
        active = lo < hi
        if not active.any():
            break
        middle = (lo + hi) // 2
        unlikely = _log_pmf(middle, total, n_a, n_b) <= threshold
        # below: find the first unlikely value; above: find the first likely value (tail ends just before)
        go_left = np.where(below, unlikely, ~unlikely)
        hi = np.where(active & go_left, middle, hi)
        lo = np.where(active & ~go_left, middle + 1, lo)
    # tails run away from the mode, where the mass function falls monotonically
    near = np.where(below, _tail(x, lowest, -1, total, n_a, n_b), _tail(x, highest, 1, total, n_a, n_b))
    far = np.where(below, _tail(lo, highest, 1, total, n_a, n_b), _tail(lo - 1, lowest, -1, total, n_a, n_b))
    return np.where(x == mode, 1.0, np.minimum(1.0, near + far))


def _log_pmf(k, total, n_a, n_b):
    """log P(X = k) for X ~ hypergeometric(total, n_a successes, n_b draws), through log-gamma (scipy's own
    pmf computes exactly, and is orders of magnitude slower for large studies)."""
    def log_choose(n, r):
        return gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1)
    k = np.asarray(k, dtype=float)
    return log_choose(n_a, k) + log_choose(total - n_a, n_b - k) - log_choose(total, n_b)


def _tail(start, end, step: int, total, n_a, n_b, chunk: int = 32) -> np.ndarray:
    """Sum of the hypergeometric pmf from `start` to `end` (inclusive, walking by `step` away from the mode),
    stopping once the terms no longer change the sum in double precision."""
    start, end = np.asarray(start), np.asarray(end)
    sums = np.zeros(start.shape)
    position = start.copy()
    active = (position - end) * step <= 0
    offsets = np.arange(chunk) * step
    while active.any():
        idx = np.nonzero(active)[0]
        ks = position[idx, None] + offsets[None, :]
        inside = (ks - end[idx, None]) * step <= 0
        pmf = np.exp(_log_pmf(np.where(inside, ks, end[idx, None]), total[idx, None], n_a[idx, None], n_b[idx, None]))
        terms = np.where(inside, pmf, 0.0)
        sums[idx] += terms.sum(axis=1)
        position[idx] += chunk * step
        last = terms[:, -1]
        active[idx] = ((position[idx] - end[idx]) * step <= 0) & (last > sums[idx] * 1e-17)
    return sums


def presence_agreement(ratings: np.ndarray) -> dict:
    """Agreement of 0/1 ratings (coders × units, complete): counts for the first two coders, percent
    agreement, Cohen's κ (first two coders) and Krippendorff's α (nominal, every coder)."""
    ratings = np.asarray(ratings, dtype=np.int64)
    m, units = ratings.shape
    x, y = ratings[0], ratings[1]
    both, only_a, only_b = int((x & y).sum()), int((x & ~y & 1).sum()), int((~x & 1 & y).sum())
    neither = units - both - only_a - only_b
    out = {"units": units, "both": both, "only_a": only_a, "only_b": only_b, "neither": neither,
           "percent_agreement": (both + neither) / units if units else math.nan,
           "agreement_on_coded": both / (both + only_a + only_b) if both + only_a + only_b else math.nan}
    if units:
        p_o = (both + neither) / units
        p_e = ((both + only_a) * (both + only_b) + (only_b + neither) * (only_a + neither)) / units ** 2
        out["cohen_kappa"] = (p_o - p_e) / (1 - p_e) if p_e < 1 else math.nan
    else:
        out["cohen_kappa"] = math.nan
    ones = ratings.sum(axis=0)  # per unit: coders who applied the code
    n_values = m * units
    n1, n0 = int(ones.sum()), n_values - int(ones.sum())
    disagreeing = float((ones * (m - ones)).sum()) / (m - 1)  # o_01 of the coincidence matrix
    out["krippendorff_alpha"] = (1 - (n_values - 1) * disagreeing / (n0 * n1)) if n0 and n1 else math.nan
    return out


def agreement_table(codings: pd.DataFrame, codes: pd.DataFrame, coders: list[str]) -> pd.DataFrame:
    """Per codebook and per code agreement (module docstring).

    `codings`: columns study_id, segment, codebook, code_uid, coder (every coder's codings).
    `codes`: columns code_uid, study_id, codebook, code_id, label (every code of the codebooks).
    `coders`: the compared coders; κ uses the first two.
    """
    rows = []
    for (study_id, codebook), book_codes in codes.groupby(["study_id", "codebook"], sort=True):
        mine = codings[(codings["study_id"] == study_id) & (codings["codebook"] == codebook)]
        segments = pd.Index(mine["segment"].unique())
        book_codes = book_codes.sort_values("code_id")
        code_pos = pd.Index(book_codes["code_uid"])
        ratings = np.zeros((len(coders), len(segments), len(code_pos)), dtype=np.int64)
        for k, coder in enumerate(coders):
            part = mine[mine["coder"] == coder]
            ratings[k, segments.get_indexer(part["segment"]), code_pos.get_indexer(part["code_uid"])] = 1
        common = {"study_id": study_id, "codebook": codebook, "coder_a": coders[0], "coder_b": coders[1],
                  "coders": ",".join(coders)}
        rows.append({"level": "codebook", **common, "code_id": "", "label": "",
                     **presence_agreement(ratings.reshape(len(coders), -1))})
        for j, code in enumerate(book_codes.itertuples()):
            rows.append({"level": "code", **common, "code_id": code.code_id, "label": code.label,
                         **presence_agreement(ratings[:, :, j])})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


# ------------------------------------------------------------------------------------- helpers on the store
def _codes(kg, study_id: str) -> pd.DataFrame:
    codes = kg.query("code_index", study_id=study_id)
    if codes.empty and study_id:
        kg.require_study(study_id)
    return codes


def _restrict(codes: pd.DataFrame, codebook: str, group: str) -> pd.DataFrame:
    if codebook:
        known = sorted(codes["codebook"].unique())
        if codebook not in known:
            raise NotFoundError(f"no codebook '{codebook}' (codebooks: {', '.join(known) or 'none'})")
        codes = codes[codes["codebook"] == codebook]
    if group:
        wanted = group.lower()
        in_group = codes.apply(lambda r: wanted in {str(r["group_id"]).lower(), str(r["group_label"]).lower()}
                               or wanted in {str(g).lower() for g in (r["ancestor_groups"] or [])}, axis=1)
        if not in_group.any():
            raise NotFoundError(f"no code group '{group}'" + (f" in codebook '{codebook}'" if codebook else ""))
        codes = codes[in_group]
    return codes


def resolve_codes(codes: pd.DataFrame, text: str, what: str = "code") -> pd.Series:
    """Mask of the codes `text` names: `interview:A.3`, `A.3` (a bare id found in several codebooks means
    the study's first-declared codebook) or a label such as `model stealing` (case-insensitive)."""
    text = text.strip()
    wanted = text.lower()
    key = (codes["codebook"] + ":" + codes["code_id"]).str.lower()
    mask = key == wanted
    if not mask.any():
        mask = codes["code_id"].str.lower() == wanted
        if mask.sum() > 1:
            first = codes[mask].apply(lambda r: _codebook_rank(r), axis=1)
            mask = mask & (codes.apply(lambda r: _codebook_rank(r), axis=1) == first.min())
    if not mask.any():
        mask = (codes["label"].fillna("").str.lower() == wanted) | \
               (codes["preferred_label"].fillna("").str.lower() == wanted)
    if not mask.any():
        from rapidfuzz import process

        names = sorted(set(codes["label"].dropna()) | set(codes["codebook"] + ":" + codes["code_id"]))
        near = [m[0] for m in process.extract(text, names, limit=3)] if names else []
        raise NotFoundError(f"no {what} '{text}'" + (f" (did you mean: {', '.join(near)}?)" if near else ""))
    return mask


def _codebook_rank(row) -> int:
    order = str(row.get("study_codebooks") or "").split(";")
    return order.index(row["codebook"]) if row["codebook"] in order else len(order)


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise QueryError(f"parameter 'unit' must be one of {', '.join(UNITS)}, got '{unit}'")


def _check_nonnegative(options: dict, *names: str) -> None:
    for name in names:
        if options[name] < 0:
            raise QueryError(f"parameter '{name}' must not be negative, got {options[name]}")


def fetch_incidence(kg, cypher: str, params: dict) -> pd.DataFrame:
    """The (unit, code_uid) rows of the co-occurrence statement."""
    _check_unit(params["unit"])
    return kg.cypher(cypher, params)


def _pairs(kg, cypher: str, params: dict, codes: pd.DataFrame, *, focus=None, partner=None,
           min_count=1, fisher_max_count=20, imbalance_ratio=5.0) -> pd.DataFrame:
    rows = fetch_incidence(kg, cypher, params)
    codes = codes.sort_values(["study_id", "codebook", "code_id"]).reset_index(drop=True)
    matrix, _, _ = incidence(rows["unit"], rows["code_uid"], code_order=codes["code_uid"])
    table = cooccurrence_table(matrix, codes["study_id"].to_numpy(), min_count=min_count,
                               focus=None if focus is None else focus.to_numpy(),
                               partner=None if partner is None else partner.to_numpy(),
                               fisher_max_count=fisher_max_count, imbalance_ratio=imbalance_ratio)
    a, b = codes.loc[table["a"]].reset_index(drop=True), codes.loc[table["b"]].reset_index(drop=True)
    out = pd.DataFrame({"study_id": a["study_id"], "unit": params["unit"],
                        "codebook_a": a["codebook"], "code_a": a["code_id"], "label_a": a["label"],
                        "codebook_b": b["codebook"], "code_b": b["code_id"], "label_b": b["label"]})
    for column in PAIR_COLUMNS[8:]:
        out[column] = table[column].to_numpy()
    return out


# ------------------------------------------------------------------------------------------- the steps
def _cooccurrence(kg, named, params: dict, options: dict) -> pd.DataFrame:
    _check_unit(params["unit"])
    _check_nonnegative(options, "min_count", "fisher_max_count", "imbalance_ratio")
    codes = _restrict(_codes(kg, params["study_id"]), options["codebook"], options["group"])
    focus = resolve_codes(codes, options["code_a"], "code_a") if options["code_a"] else None
    partner = resolve_codes(codes, options["code_b"], "code_b") if options["code_b"] else None
    if focus is None and partner is not None:
        focus, partner = partner, None
    out = _pairs(kg, named.cypher, params, codes, focus=focus, partner=partner, min_count=options["min_count"],
                 fisher_max_count=options["fisher_max_count"], imbalance_ratio=options["imbalance_ratio"])
    return out.sort_values(["n_ab", "c_coefficient", "codebook_a", "code_a", "codebook_b", "code_b"],
                           ascending=[False, False, True, True, True, True], ignore_index=True)


def _neighbourhood(kg, named, params: dict, options: dict) -> pd.DataFrame:
    _check_unit(params["unit"])
    _check_nonnegative(options, "min_count", "limit")
    metric = METRIC_ALIASES.get(options["rank_by"], options["rank_by"])
    if metric not in METRICS:
        raise QueryError(f"parameter 'rank_by' must be one of {', '.join(list(METRICS) + list(METRIC_ALIASES))}, "
                         f"got '{options['rank_by']}'")
    codes = _restrict(_codes(kg, params["study_id"]), options["codebook"], "")
    all_codes = _codes(kg, params["study_id"])
    focus_codes = all_codes[resolve_codes(all_codes, options["code"])]
    codes = pd.concat([codes, focus_codes]).drop_duplicates("code_uid")
    focus = codes["code_uid"].isin(focus_codes["code_uid"])
    out = _pairs(kg, named.cypher, params, codes, focus=focus, min_count=max(options["min_count"], 1))
    out = out.sort_values([metric, "n_ab", "codebook_b", "code_b"],
                          ascending=[metric == "fisher_p", False, True, True], ignore_index=True, na_position="last")
    return out.head(options["limit"]) if options["limit"] else out


def _shared_goal_pairs(kg, named, params: dict, options: dict) -> pd.DataFrame:
    units = UNITS if options["unit"] in ("", "all") else (options["unit"],)
    for unit in units:
        _check_unit(unit)
    pairs = kg.cypher(named.cypher, params)
    columns = ["study_id", "goal", "concept_a", "concept_b", "unit", "codebook_a", "code_a", "label_a",
               "codebook_b", "code_b", "label_b", "n_units", "n_a", "n_b", "n_ab", "c_coefficient"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    from mmkg.queries import get_query

    study_of = dict(zip(*_codes(kg, params["study_id"])[["code_uid", "study_id"]].T.to_numpy()))
    incidence_cypher = get_query("cooccurrence").cypher
    frames = []
    for unit in units:
        rows = fetch_incidence(kg, incidence_cypher, {"study_id": params["study_id"], "unit": unit,
                                                      "coder": options["coder"]})
        # N: units of the study carrying any code, as in `cooccurrence` without a restriction
        n_units = rows.assign(study_id=rows["code_uid"].map(study_of)).groupby("study_id")["unit"].nunique()
        sets = rows[rows["code_uid"].isin(set(pairs["code_uid_a"]) | set(pairs["code_uid_b"]))] \
            .groupby("code_uid")["unit"].agg(set)
        units_a = pairs["code_uid_a"].map(lambda c: sets.get(c, set()))
        units_b = pairs["code_uid_b"].map(lambda c: sets.get(c, set()))
        frame = pairs.assign(unit=unit, n_units=pairs["study_id"].map(n_units).fillna(0).astype(int),
                             n_a=units_a.map(len), n_b=units_b.map(len),
                             n_ab=[len(x & y) for x, y in zip(units_a, units_b)])
        union = frame["n_a"] + frame["n_b"] - frame["n_ab"]
        frame["c_coefficient"] = (frame["n_ab"] / union.where(union > 0)).astype(float)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["_unit_order"] = out["unit"].map({u: i for i, u in enumerate(UNITS)})
    out = out.sort_values(["study_id", "concept_a", "concept_b", "codebook_a", "code_a", "codebook_b", "code_b",
                           "_unit_order"], ignore_index=True)
    return out[columns]


def _agreement(kg, named, params: dict, options: dict) -> pd.DataFrame:
    if options["level"] not in ("all", "codebook", "code"):
        raise QueryError(f"parameter 'level' must be all, codebook or code, got '{options['level']}'")
    codings = kg.cypher(named.cypher, params)
    studies = kg.query("studies")
    if params["study_id"]:
        kg.require_study(params["study_id"])
        studies = studies[studies["study_id"] == params["study_id"]]
    codes = _codes(kg, params["study_id"])
    if options["codebook"]:
        codes = _restrict(codes, options["codebook"], "")
    frames = []
    for study in studies.itertuples():
        mine = codings[codings["study_id"] == study.study_id]
        coders = _compared_coders(sorted(mine["coder"].unique()), study.analysis_coder or "", options)
        if coders is None:
            continue
        frames.append(agreement_table(mine, codes[codes["study_id"] == study.study_id], coders))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=AGREEMENT_COLUMNS)
    if options["level"] != "all":
        out = out[out["level"] == options["level"]].reset_index(drop=True)
    return out


def _compared_coders(present: list[str], analysis_coder: str, options: dict) -> list[str] | None:
    chosen = [c.strip() for c in options["coders"].split(",") if c.strip()] if options["coders"] else \
        [c for c in present if c != analysis_coder]
    for name in ("coder_a", "coder_b"):
        if options[name]:
            chosen = [options[name]] + [c for c in chosen if c != options[name]] if name == "coder_a" else \
                chosen[:1] + [options[name]] + [c for c in chosen[1:] if c != options[name]]
    unknown = [c for c in chosen if c not in present]
    if unknown and (options["coders"] or options["coder_a"] or options["coder_b"]):
        raise NotFoundError(f"no coder(s) {', '.join(unknown)} (coders: {', '.join(present) or 'none'})")
    if len(chosen) < 2:
        if options["coders"] or options["coder_a"] or options["coder_b"]:
            raise QueryError(f"agreement needs two coders; got {', '.join(chosen) or 'none'}")
        return None
    return chosen


ANALYSES: dict[str, Callable] = {
    "cooccurrence": _cooccurrence,
    "neighbourhood": _neighbourhood,
    "shared_goal_pairs": _shared_goal_pairs,
    "agreement": _agreement,
}


def run_analysis(kg, named, params: dict, options: dict) -> pd.DataFrame:
    """Run the statement of `named` and its analysis step; returns the result frame."""
    return ANALYSES[named.analysis](kg, named, params, options)
