"""Co-occurrence at 10^4, 10^5, 10^6 codings: mmkg's `cooccurrence` query against bare scipy XᵀX baselines.

    python benchmarks/cooccurrence_bench.py [--sizes 10000 100000 1000000] [--repeat 3]

A synthetic text study (`overlapping_codings` below: 120 codes with Zipf-like frequencies, 200 participants
with one transcript each) whose passages are coded the ways real QDA exports are: one selection carrying
every code (ATLAS.ti), one selection per code over the same range (NVivo), selections per code nested in or
partly overlapping one another, chains of overlaps that are not all pairwise, and passages that touch the
next one (end == start, not overlapping).  Loaded into a temporary embedded store; measured in the same run,
best of `--repeat`:

- *segment baseline* (what the issue asks to compare with): one bare Cypher fetch of (segment uid, code uid),
  `pd.factorize`, a scipy CSR matrix and XᵀX — co-occurrence when two codes sit on the *same segment*, the
  exact-segment count mmkg used before overlap (it finds nothing where NVivo put each code on its own
  selection);
- *mmkg segment*: `kg.query("cooccurrence", unit="segment")` — the fetches of codings, selections and sources,
  passages of overlapping selections by a sort/sweep per source, n_ab of codes whose selections are the same
  or overlap, N per pair, every metric (c-coefficient, P(b|a), P(a|b), lift, Fisher's p for small counts,
  imbalance flag) and code labels;
- *participant baseline* / *mmkg participant*: the same at the participant unit (n_ab checked equal).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import mmkg

BASELINE = {
    "segment": "MATCH (g:Segment)-[c:CODED_AS]->(k:Code) RETURN g.uid AS unit, k.uid AS code",
    "participant": "MATCH (p:Participant)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code) "
                   "RETURN p.uid AS unit, k.uid AS code",
}
STYLES = ("one selection", "one per code", "nested or shifted", "chain")


def overlapping_codings(n_codings: int, *, n_codes: int = 120, n_participants: int = 200, seed: int = 0,
                        study_id: str = "synthetic") -> pd.DataFrame:
    """A codings table of about `n_codings` rows whose selections overlap as in real exports (docstring)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_codes + 1) ** 1.1
    weights /= weights.sum()
    n_passages = max(1, n_codings // 2)
    per_passage = rng.integers(1, 5, size=n_passages)
    style = rng.choice(len(STYLES), size=n_passages, p=[0.4, 0.3, 0.2, 0.1])
    rows = np.repeat(np.arange(n_passages), per_passage)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(per_passage) - per_passage, per_passage)
    codes = rng.choice(n_codes, size=len(rows), p=weights)
    length = rng.integers(40, 400, size=n_passages)
    gap = np.where(rng.random(n_passages) < 0.2, 0, rng.integers(1, 300, size=n_passages))  # 0: touching
    participant = (np.arange(n_passages) * n_participants) // n_passages
    first_of_source = np.r_[True, participant[1:] != participant[:-1]]
    span = length + gap
    offset = np.cumsum(span) - span
    origin = np.maximum.accumulate(np.where(first_of_source, offset, 0))
    start = offset - origin
    s, ln, st = start[rows], length[rows], style[rows]
    shift = (ln * rank) // 8
    sel_start = np.select([st == 1, st == 2, st == 3], [s, s + shift // 2, s + rank * ln // 2], s)
    sel_end = np.select([st == 1, st == 2, st == 3], [s + ln, s + ln - shift // 3, s + rank * ln // 2 + ln // 2 + 1],
                        s + ln)
    one = (st == 0)
    segment = np.where(one, rows * 4, rows * 4 + rank)  # one selection: a segment per passage
    frame = pd.DataFrame({"segment": segment, "code": codes, "start": sel_start, "end": sel_end,
                          "participant": participant[rows]}).drop_duplicates(["segment", "code"])
    frame = frame.iloc[:n_codings]
    return pd.DataFrame({
        "study_id": study_id,
        "participant_id": frame["participant"].map("P{:04d}".format).to_numpy(),
        "source_id": frame["participant"].map("P{:04d}-interview".format).to_numpy(),
        "source_kind": "interview",
        "segment_id": frame["segment"].map("g{:08d}".format).to_numpy(),
        "start": frame["start"].to_numpy(),
        "end": frame["end"].to_numpy(),
        "code_id": frame["code"].map("C{:03d}".format).to_numpy(),
        "codebook": "interview",
        "coder": "coder1",
    })


def baseline(kg, unit: str) -> tuple[np.ndarray, pd.Index]:
    rows = kg.cypher(BASELINE[unit])
    u, _ = pd.factorize(rows["unit"])
    k, codes = pd.factorize(rows["code"])
    x = sp.csr_matrix((np.ones(len(u), dtype=np.int64), (u, k)), shape=(u.max() + 1, len(codes)))
    x.data[:] = 1  # a unit carries a code or not
    return (x.T @ x).toarray(), codes


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'codings':>10} {'unit':>12} {'pairs':>6} {'baseline pairs':>14} {'baseline s':>11} {'mmkg s':>8} "
          f"{'ratio':>6} n_ab equal")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "codings.csv"
            overlapping_codings(size).to_csv(csv, index=False)
            with mmkg.open_store(Path(tmp) / "store") as kg:
                kg.load(csv)
                for unit in ("segment", "participant"):
                    t_base, (joint, codes) = best_of(args.repeat, lambda: baseline(kg, unit))
                    t_mmkg, pairs = best_of(args.repeat, lambda: kg.query("cooccurrence", study_id="synthetic",
                                                                          unit=unit))
                    base_pairs = int((np.triu(joint, k=1) > 0).sum())
                    equal = "-"
                    if unit == "participant":  # same units: the counts must agree
                        position = {c.rsplit("/", 1)[-1]: i for i, c in enumerate(codes)}
                        got = np.zeros_like(joint)
                        ia, ib = pairs["code_a"].map(position).to_numpy(), pairs["code_b"].map(position).to_numpy()
                        got[ia, ib] = got[ib, ia] = pairs["n_ab"].to_numpy()
                        upper = np.triu_indices(len(codes), k=1)
                        equal = str(bool((got[upper] == joint[upper]).all()))
                    print(f"{size:>10,} {unit:>12} {len(pairs):>6} {base_pairs:>14} {t_base:>11.3f} {t_mmkg:>8.3f} "
                          f"{t_mmkg / t_base:>6.2f} {equal}", flush=True)


if __name__ == "__main__":
    main()
