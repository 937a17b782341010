"""Co-occurrence at 10^6 (and 10^7) codings, every unit, against two same-input baselines measured in the same run.

    pip install -e '.[bench]'
    python benchmarks/cooccurrence_bench.py [--sizes 1000000 10000000] [--repeat 3] [--units segment source participant]

The input: a synthetic text study (`overlapping_codings` below: 120 codes with Zipf-like frequencies, 200
participants with one transcript each) whose passages are coded the ways real QDA exports are — one selection
carrying every code (ATLAS.ti), one selection per code over the same range (NVivo), selections per code nested in
or partly overlapping one another, chains of overlaps that are not all pairwise, passages touching the next one
(end == start: no overlap).  Written to one CSV, loaded by `mmkg load` into a temporary embedded store, and read
by DuckDB from the same CSV.  For every size and unit, best of `--repeat`:

- **mmkg**: `kg.query("cooccurrence", study_id="synthetic", unit=UNIT)` in process — the fetches, passages of
  overlapping selections (segment unit), n_a, n_b, n_ab, N per pair, every metric and the code labels;
- **store limit** (baseline a): what the store and scipy cannot go below for the same work — every statement the
  query runs (`mmkg.store.keys.unit_statements`: codings, code keys, segments with their source, sources; at the
  segment unit `passage_statements`, since the default query reads the passages the load stored: codings, code
  keys, sources and the segments of the passages that are not all-overlapping; and the code index) with its
  RETURN replaced by `count(*)`, so the same MATCH work
  (the codings counted with the analysis filter in the store, which the query applies to a returned column; the
  study matched on the segment or on the code, whichever counts faster; each statement its best of `--repeat`),
  plus XᵀX of the units × codes incidence built from integer arrays already in memory — scipy's sparse product
  or numpy's dense one, whichever is faster (dense only below 2^24 cells) — (at the segment
  unit, the passages' incidence: an upper bound of the work, since chains are counted pair by pair);
- **own statements** (baseline a'): the default query no longer reads the codings but what the load stored:
  at the source and participant units the codes each source carries (`carried_statements`) — the same counts
  of the statements it does run, plus XᵀX of the incidence they give (the distinct unit and code pairs); at
  the segment unit the code pairs the passages share and the codes each source's passages carry
  (`carried_statements(pairs=True)`) — the counts of those statements alone (the pairs' counts are read, not
  multiplied). What is left of its time is mmkg's own work on a few thousand rows;
- **DuckDB** (baseline b): DuckDB's query time for the same table from the same CSV (loaded into DuckDB first;
  the load is printed apart): n_ab, n_a, n_b, N and the c-coefficient per pair — at the segment unit with the
  passages found by a window over each source's ranges and pairs of overlapping ranges within a passage.

Checks (the run stops when one fails): DuckDB's n_ab, n_a, n_b and N equal mmkg's for every pair at every unit;
at the source and participant units the store-limit XᵀX equals mmkg's n_ab too; the unit table read from the
passages stored at load equals the one found from the segments' positions (`fetch_unit_table(stored=False)`).
The ratios printed are mmkg ÷ baseline, in wall time (what a user waits) and in the process's CPU time (the
store's threads included; steadier on a shared machine); the load average of the machine is printed with every
row.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from load_bench import run as run_whole  # benchmarks/ is the script's folder, on sys.path

import mmkg
from mmkg.analysis import SEGMENT_UNITS, STORED_UNITS, fetch_unit_table
from mmkg.queries import get_query
from mmkg.store.keys import carried_statements, passage_statements, unit_statements

STUDY = "synthetic"
UNITS = ("segment", "source", "participant")
STYLES = ("one selection", "one per code", "nested or shifted", "chain")

MMKG = str(Path(sys.executable).with_name("mmkg"))  # the installed command, as a user runs it


def overlapping_codings(n_codings: int, *, n_codes: int = 120, n_participants: int = 200, seed: int = 0,
                        study_id: str = STUDY) -> pd.DataFrame:
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


# ------------------------------------------------------------------------------------------ baseline (a)
def count_only(cypher: str) -> str:
    """The statement with its RETURN (and ORDER BY) replaced by `RETURN count(*)`: the same MATCH work."""
    body = re.split(r"\bRETURN\b", cypher.rstrip().rstrip(";"), flags=re.IGNORECASE)[:-1]
    return "RETURN".join(body) + "RETURN count(*) AS n"


# The analysis codings of the study, counted in the store with both filters in the WHERE (the query returns
# `c.analysis` and chooses the rows itself, mmkg.store.keys), the study matched on the segment or on the code:
# the limit takes the faster of the two.
ANALYSIS_CODINGS = ("MATCH (g:Segment)-[c:CODED_AS]->(k:Code) WHERE {node}.study_id = $study_id AND c.analysis "
                    "RETURN count(*) AS n")


def codings_statements(unit: str) -> list[tuple[str, dict]]:
    """The statements that count the unit table from the study's codings (the limit's): at every unit the
    fetches of the codings by their stored passages (`passage_statements`)."""
    return passage_statements(STUDY, regions=unit == "segment") if unit in STORED_UNITS else \
        unit_statements(STUDY, [], positions=unit in SEGMENT_UNITS)


def query_statements(unit: str) -> list[tuple[str, dict]]:
    """The statements the query runs (the "own" baseline's): by source and participant the codes each source
    carries (`carried_statements`, stored at load), by segment also the code pairs the passages share, instead
    of the codings."""
    return carried_statements(STUDY, pairs=unit == "segment") if unit in STORED_UNITS else codings_statements(unit)


def store_patterns(statements: list[tuple[str, dict]]) -> list[list[tuple[str, dict]]]:
    """The code index and `statements` as counts; each entry lists equivalent ways to count the same rows (the
    fastest one counts)."""
    one = {"study_id": STUDY}
    codings = next((statement for statement in statements if "CODED_AS" in statement[0]), None)
    rest = [statement for statement in statements if statement is not codings]
    if codings is not None:
        assert "c.analysis" in codings[0] or "c.passage" in codings[0], \
            "the codings fetch no longer chooses the analysis codings"
    return [[(count_only(get_query("code_index").cypher), one)]] + \
        ([[(ANALYSIS_CODINGS.format(node=node), one) for node in ("g", "k")]] if codings is not None else []) + \
        [[(count_only(cypher), params)] for cypher, params in rest]


def store_limit(kg, statements: list[tuple[str, dict]], repeat: int) -> tuple[float, float]:
    """The store's part of a limit: per statement, the best wall time of its fastest way (and the process
    CPU time of that way), summed."""
    wall = cpu = 0.0
    for ways in store_patterns(statements):
        timings = [best_of(repeat, lambda: kg.cypher(cypher, params))[:2] for cypher, params in ways]
        best_wall, best_cpu = min(timings)
        wall, cpu = wall + best_wall, cpu + best_cpu
    return wall, cpu


def passages_of(frame: pd.DataFrame) -> np.ndarray:
    """Passage of every coding row: within a source, ranges sorted by start; a new passage starts where a range
    starts at or after the furthest end before it (connected components of strict overlap, positive ranges)."""
    order = np.lexsort((frame["end"].to_numpy(), frame["start"].to_numpy(), frame["source_id"].to_numpy()))
    source = frame["source_id"].to_numpy()[order]
    start, end = frame["start"].to_numpy()[order], frame["end"].to_numpy()[order]
    new_source = np.r_[True, source[1:] != source[:-1]]
    passage = np.empty(len(order), dtype=np.int64)
    number, reach = -1, 0
    for i in range(len(order)):  # once per size, outside every timing
        if new_source[i] or start[i] >= reach:
            number += 1
            reach = end[i]
        else:
            reach = max(reach, end[i])
        passage[i] = number
    out = np.empty_like(passage)
    out[order] = passage
    return out


def integer_arrays(frame: pd.DataFrame, unit: str, passage: np.ndarray) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    key = {"source": frame["source_id"], "participant": frame["participant_id"]}.get(unit)
    unit_of_row = passage if key is None else pd.factorize(key)[0]
    code_of_row, codes = pd.factorize(frame["code_id"], sort=True)
    return np.ascontiguousarray(unit_of_row, dtype=np.int64), np.ascontiguousarray(code_of_row, dtype=np.int64), codes


def distinct_pairs(unit_of_row: np.ndarray, code_of_row: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (unit, code) pairs of the rows: what the stored carried codes hold at the source units."""
    pair = np.unique(unit_of_row * n_codes + code_of_row)
    return pair // n_codes, pair % n_codes


def xtx(unit_of_row: np.ndarray, code_of_row: np.ndarray, n_codes: int, dense: bool = False) -> np.ndarray:
    """XᵀX of the 0/1 units × codes incidence of the rows: scipy's sparse product, or (`dense`) numpy's."""
    matrix = sp.csr_matrix((np.ones(len(unit_of_row), dtype=np.int64), (unit_of_row, code_of_row)),
                           shape=(int(unit_of_row.max()) + 1, n_codes))
    matrix.sum_duplicates()
    matrix.data[:] = 1
    if dense:
        full = matrix.toarray().astype(np.float64)
        return np.rint(full.T @ full).astype(np.int64)
    return (matrix.T @ matrix).toarray()


def best_xtx(repeat: int, unit_of_row: np.ndarray, code_of_row: np.ndarray, n_codes: int
             ) -> tuple[float, float, np.ndarray]:
    """The faster of the sparse and (where the dense matrix is small enough) the dense XᵀX: wall, CPU, result."""
    t_sparse, cpu_sparse, joint = best_of(repeat, lambda: xtx(unit_of_row, code_of_row, n_codes))
    if (int(unit_of_row.max()) + 1) * n_codes > 1 << 24:
        return t_sparse, cpu_sparse, joint
    t_dense, cpu_dense, dense = best_of(repeat, lambda: xtx(unit_of_row, code_of_row, n_codes, dense=True))
    assert np.array_equal(dense, joint), "the dense XᵀX differs from the sparse one"
    return min((t_sparse, cpu_sparse), (t_dense, cpu_dense)) + (joint,)


# ------------------------------------------------------------------------------------------ baseline (b)
PAIRS_SQL = """
WITH pairs AS ({pairs}),
     carried AS (SELECT codebook, code_id, count(DISTINCT unit) AS n FROM units GROUP BY ALL),
     total AS (SELECT count(DISTINCT unit) AS n_units FROM units)
SELECT p.codebook_a, p.code_a, p.codebook_b, p.code_b, total.n_units, a.n AS n_a, b.n AS n_b, p.n_ab,
       p.n_ab / (a.n + b.n - p.n_ab) AS c_coefficient
FROM pairs p JOIN carried a ON a.codebook = p.codebook_a AND a.code_id = p.code_a
             JOIN carried b ON b.codebook = p.codebook_b AND b.code_id = p.code_b, total
"""
UNIT_PAIRS = """SELECT a.codebook AS codebook_a, a.code_id AS code_a, b.codebook AS codebook_b, b.code_id AS code_b,
       count(*) AS n_ab
FROM units a JOIN units b ON a.unit = b.unit AND (a.codebook, a.code_id) < (b.codebook, b.code_id) GROUP BY ALL"""
SEGMENT_PAIRS = """SELECT a.codebook AS codebook_a, a.code_id AS code_a, b.codebook AS codebook_b, b.code_id AS code_b,
       count(DISTINCT a.unit) AS n_ab
FROM units a JOIN units b ON a.unit = b.unit AND (a.codebook, a.code_id) < (b.codebook, b.code_id)
     AND a.start < b."end" AND b.start < a."end" GROUP BY ALL"""


def duckdb_units(unit: str) -> str:
    if unit == "segment":
        return """CREATE OR REPLACE TEMP TABLE units AS
WITH ranges AS (SELECT DISTINCT source_id, start, "end" FROM codings),
     reach AS (SELECT *, max("end") OVER (PARTITION BY source_id ORDER BY start, "end"
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM ranges),
     numbered AS (SELECT source_id, start, "end",
                         sum(CASE WHEN before IS NULL OR start >= before THEN 1 ELSE 0 END)
                           OVER (PARTITION BY source_id ORDER BY start, "end" ROWS UNBOUNDED PRECEDING) AS passage
                  FROM reach)
SELECT c.codebook, c.code_id, c.start, c."end", n.source_id || '/' || n.passage AS unit
FROM codings c JOIN numbered n USING (source_id, start, "end")"""
    column = {"source": "source_id", "participant": "participant_id"}[unit]
    return f"CREATE OR REPLACE TEMP TABLE units AS SELECT DISTINCT {column} AS unit, codebook, code_id FROM codings"


def duckdb_cooccurrence(con, unit: str) -> pd.DataFrame:
    con.execute(duckdb_units(unit))
    pairs = SEGMENT_PAIRS if unit == "segment" else UNIT_PAIRS
    return con.execute(PAIRS_SQL.format(pairs=pairs)).df()


# ------------------------------------------------------------------------------------------ the run
def load(csv: Path, store: Path) -> None:
    """`mmkg load` of the CSV into a new store, as a user runs it (printed, not in the ratios; started by
    load_bench's launcher, so the peak RSS is the load's own, not this process's, which holds the codings)."""
    seconds, peak = run_whole([MMKG, "load", str(csv), "--store", str(store)])
    print(f"{'':>10} mmkg load of the {csv.stat().st_size / 1e6:.0f} MB CSV: {seconds:.1f} s, "
          f"peak RSS {peak / 1e9:.2f} GB (not in the ratios)", flush=True)


def best_of(repeat: int, fn) -> tuple[float, float, object]:
    """(best wall time, best CPU time of the process — the store's threads included, result) of `repeat` calls."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


KEY = ["codebook_a", "code_a", "codebook_b", "code_b"]
COUNTS = ["n_units", "n_a", "n_b", "n_ab"]


def check_equal(mine: pd.DataFrame, theirs: pd.DataFrame, what: str) -> None:
    left = mine[KEY + COUNTS].sort_values(KEY, ignore_index=True)
    right = theirs[KEY + COUNTS].astype({c: np.int64 for c in COUNTS}).sort_values(KEY, ignore_index=True)
    if len(left) != len(right) or not (left.to_numpy() == right.to_numpy()).all():
        merged = left.merge(right, on=KEY, how="outer", suffixes=("_mmkg", "_other"), indicator=True)
        bad = merged[(merged["_merge"] != "both") | (merged["n_ab_mmkg"] != merged["n_ab_other"])]
        raise SystemExit(f"{what}: results differ from mmkg's ({len(left)} vs {len(right)} pairs):\n{bad.head(10)}")


def check_matrix(mine: pd.DataFrame, joint: np.ndarray, codes: pd.Index, what: str) -> None:
    ia, ib = codes.get_indexer(mine["code_a"]), codes.get_indexer(mine["code_b"])
    got = np.zeros_like(joint)
    got[ia, ib] = mine["n_ab"].to_numpy()
    upper = np.triu_indices(len(codes), k=1)
    if not (got[upper] == joint[upper]).all():
        raise SystemExit(f"{what}: XᵀX differs from mmkg's n_ab")


def check_positions(kg, unit: str, what: str) -> None:
    """The unit table from the passages stored at load equals the one found from the positions (the path of
    every other coder and proximity choice, and of studies loaded before passages were stored)."""
    stored = fetch_unit_table(kg, STUDY, unit)
    found = fetch_unit_table(kg, STUDY, unit, stored=False)
    if not stored.codes.equals(found.codes) or any(
            not np.array_equal(getattr(stored, name), getattr(found, name))
            for name in ("joint", "carried", "universe", "book")):
        raise SystemExit(f"{what}: the stored passages' unit table differs from the positions'")


def main() -> None:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--units", nargs="+", default=list(UNITS), choices=UNITS)
    parser.add_argument("--workdir", type=Path, help="keep each size's CSV and store in WORKDIR/SIZE and reuse them "
                        "when present (then the load is not re-run; at 10^7 it takes minutes)")
    args = parser.parse_args()
    print(f"{'codings':>10} {'unit':>11} {'pairs':>6} {'mmkg s':>8} {'limit s':>8} {'(count':>7} {'XᵀX)':>6} "
          f"{'×limit':>7} {'CPU s':>7} {'limit':>7} {'×':>7} {'own s':>7} {'×own':>6} {'CPU×':>6} "
          f"{'duckdb s':>9} {'×duckdb':>8} {'load':>5}  checks  "
          f"(best of {args.repeat}; wall, then CPU time of the process)")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = args.workdir / str(size) if args.workdir else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            csv = folder / "codings.csv"
            frame = overlapping_codings(size)
            if not csv.exists():
                frame.to_csv(csv, index=False)
            store = folder / "store"
            if store.exists():
                print(f"{'':>10} reusing the store {store} (loaded from {csv} by an earlier run)", flush=True)
            else:
                load(csv, store)
            con = duckdb.connect()
            t_duck_load, _, _ = best_of(1, lambda: con.execute(
                f"CREATE TABLE codings AS SELECT * FROM read_csv('{csv}', header=true)"))
            print(f"{'':>10} DuckDB read of the CSV into a table: {t_duck_load:.2f} s (not in the ratios)", flush=True)
            passage = passages_of(frame)
            with mmkg.open_store(store, read_only=True) as kg:
                for unit in args.units:
                    t_mmkg, cpu_mmkg, mine = best_of(args.repeat,
                                                     lambda: kg.query("cooccurrence", study_id=STUDY, unit=unit))
                    t_count, cpu_count = store_limit(kg, codings_statements(unit), args.repeat)
                    unit_of_row, code_of_row, codes = integer_arrays(frame, unit, passage)
                    t_xtx, cpu_xtx, joint = best_xtx(args.repeat, unit_of_row, code_of_row, len(codes))
                    if query_statements(unit) == codings_statements(unit):
                        t_own, cpu_own = t_count + t_xtx, cpu_count + cpu_xtx
                    else:  # the counts of the statements it runs, by source and participant plus XᵀX of what they
                        # give (the segment unit's pairs are read, not multiplied)
                        t_own, cpu_own = store_limit(kg, query_statements(unit), args.repeat)
                    if unit in ("source", "participant"):
                        carried_unit, carried_code = distinct_pairs(unit_of_row, code_of_row, len(codes))
                        t_small, cpu_small, _ = best_xtx(args.repeat, carried_unit, carried_code, len(codes))
                        t_own, cpu_own = t_own + t_small, cpu_own + cpu_small
                    t_duck, _, theirs = best_of(args.repeat, lambda: duckdb_cooccurrence(con, unit))
                    check_equal(mine, theirs, f"{size:,} {unit}: DuckDB")
                    checks = "duckdb="
                    if unit in STORED_UNITS:
                        check_positions(kg, unit, f"{size:,} {unit}")
                        checks += " positions="
                    if unit != "segment":
                        check_matrix(mine, joint, codes, f"{size:,} {unit}: store limit")
                        checks += " XᵀX="
                    limit, cpu_limit = t_count + t_xtx, cpu_count + cpu_xtx
                    print(f"{size:>10,} {unit:>11} {len(mine):>6} {t_mmkg:>8.3f} {limit:>8.3f} {t_count:>7.3f} "
                          f"{t_xtx:>6.3f} {t_mmkg / limit:>7.2f} {cpu_mmkg:>7.3f} {cpu_limit:>7.3f} "
                          f"{cpu_mmkg / cpu_limit:>7.2f} {t_own:>7.3f} {t_mmkg / t_own:>6.2f} "
                          f"{cpu_mmkg / cpu_own:>6.2f} "
                          f"{t_duck:>9.3f} {t_mmkg / t_duck:>8.3f} "
                          f"{load_average():>5}  {checks}", flush=True)
            con.close()


if __name__ == "__main__":
    main()
