"""Co-occurrence at 10^4, 10^5, 10^6 codings: mmkg's `cooccurrence` query against a bare scipy XᵀX baseline.

    python benchmarks/cooccurrence_bench.py [--sizes 10000 100000 1000000] [--repeat 3]

Synthetic studies (`mmkg.synthetic.synthetic_codings`: 120 codes with Zipf-like frequencies, 1–4 codes per
segment) are loaded into a temporary embedded store.  Measured in the same run, best of `--repeat`:

- baseline: one bare Cypher fetch of (unit uid, code uid) pairs, `pd.factorize`, a scipy CSR matrix, XᵀX;
- mmkg: `kg.query("cooccurrence", unit=…)` — the named query's fetch plus every metric (n_a, n_b, n_ab,
  c-coefficient, P(b|a), P(a|b), lift, Fisher's p for small counts, the imbalance flag) and code labels.

Both give n_ab for every pair; the script checks they are equal.
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
from mmkg.synthetic import synthetic_codings

BASELINE = {
    "segment": "MATCH (g:Segment)-[c:CODED_AS]->(k:Code) RETURN g.uid AS unit, k.uid AS code",
    "participant": "MATCH (p:Participant)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code) "
                   "RETURN p.uid AS unit, k.uid AS code",
}


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
    print(f"{'codings':>10} {'unit':>12} {'pairs':>6} {'baseline s':>11} {'mmkg s':>8} {'ratio':>6} equal")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "codings.csv"
            synthetic_codings(size).to_csv(csv, index=False)
            with mmkg.open_store(Path(tmp) / "store") as kg:
                kg.load(csv)
                for unit in ("segment", "participant"):
                    t_base, (joint, codes) = best_of(args.repeat, lambda: baseline(kg, unit))
                    t_mmkg, pairs = best_of(args.repeat, lambda: kg.query("cooccurrence", study_id="synthetic",
                                                                          unit=unit))
                    position = {c.rsplit("/", 1)[-1]: i for i, c in enumerate(codes)}
                    expected = joint[np.triu_indices(len(codes), k=1)]
                    got = joint.copy() * 0
                    ia, ib = pairs["code_a"].map(position).to_numpy(), pairs["code_b"].map(position).to_numpy()
                    got[ia, ib] = got[ib, ia] = pairs["n_ab"].to_numpy()
                    equal = bool((got[np.triu_indices(len(codes), k=1)] == expected).all())
                    print(f"{size:>10,} {unit:>12} {len(pairs):>6} {t_base:>11.3f} {t_mmkg:>8.3f} "
                          f"{t_mmkg / t_base:>6.2f} {equal}", flush=True)


if __name__ == "__main__":
    main()
