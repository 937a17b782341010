"""`mmkg load` of a codings CSV against a bare LadybugDB COPY of the same CSV into the same graph tables.

    python benchmarks/load_bench.py [--sizes 1000000 10000000] [--repeat 3]

Both are whole processes started the same way, alternating, measured in the same run (wall time and peak RSS
from the kernel's accounting of the process, started by a small launcher so that this process's own memory is
not counted in it):

- **mmkg**: `mmkg load CODINGS.csv --store EMPTY` — read, validate, graph rows, the new version, its count checks,
  the publish;
- **bare COPY** (the baseline): a Python process that imports only `ladybug`, creates mmkg's tables
  (`mmkg.schema.ladybug_ddl`, written to a file beforehand) in an empty database file and fills the study's
  participants, sources, segments, codes, coders and the relationships between them with one
  `COPY … FROM (LOAD FROM 'CODINGS.csv' …)` per table: LadybugDB's own CSV reader, no validation, no checks;
  the passages mmkg finds at load and the counts taken from them (`mmkg.schema.PASSAGE_COLUMNS`,
  `PAIR_COLUMNS`: from the positions, not in the CSV) it leaves null, and the code pairs of the passages
  (COOCCURS_WITH) empty; the codes each source carries (`mmkg.schema.CARRIED_COLUMN`) it counts with
  LadybugDB's own grouping in the COPY.

Checks: after both, every one of those tables holds the same rows in the two database files — every property
of every node and relationship but those taken from the passages (the Study node by its keys only: its title
and origin come from the file, not the rows), compared sorted, not counted. The bare COPY is written from the
CSV by LadybugDB's own reader, so equal tables mean mmkg's reading, validation, keys and writing changed
nothing the CSV says.
Peak memory is also given as a multiple of the CSV's size.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mmkg.store.ddl import ladybug_ddl
from mmkg.synthetic import synthetic_codings

TABLES = ["Participant", "Source", "Segment", "Code", "Coder", "HAS_PARTICIPANT", "HAS_SOURCE", "HAS_SEGMENT",
          "CODED_AS", "HAS_CODER", "CARRIES"]

# The rows mmkg writes for a codings CSV (mmkg.graph.study_graph), spelt as LadybugDB COPY subqueries.
BARE_COPY = r'''
import json, sys
import ladybug

ddl, database, csv, study = json.load(open(sys.argv[1]))
db = ladybug.Database(database)
conn = ladybug.Connection(db)
for statement in ddl:
    conn.execute(statement)
S, P = "CAST(NULL AS STRING)", "CAST(NULL AS INT32)"  # P: the passages mmkg derives (not in the CSV)
rows = f"LOAD FROM '{csv}' (header=true) WHERE study_id = '{study}'"
conn.execute(f"CREATE (:Study {{uid: '{study}', id: '{study}', study_id: '{study}'}})")
copies = {
    "Participant": f"{rows} RETURN DISTINCT study_id + '/participant/' + participant_id, study_id, participant_id, "
                   "participant_id, false",
    "Source": f"{rows} RETURN study_id + '/source/' + source_id, study_id, source_id, source_kind, {S}, {P}, "
              f"count(*), {P}",  # analysis_codings: every coding of the file is an analysis coding (one coder)
    "Segment": f"{rows} RETURN DISTINCT study_id + '/segment/' + segment_id, study_id, segment_id, "
               "CAST(start AS INT64), CAST(`end` AS INT64), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), "
               f"CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), false, {S}, {S}, {P}",
    "Code": f"{rows} RETURN DISTINCT study_id + '/code/' + codebook + '/' + code_id, study_id, codebook, code_id, "
            f"code_id, code_id, {S}, true",
    "Coder": f"{rows} RETURN DISTINCT study_id + '/coder/' + coder, study_id, coder",
    "HAS_PARTICIPANT": f"{rows} RETURN DISTINCT study_id, study_id + '/participant/' + participant_id",
    "HAS_SOURCE": f"{rows} RETURN DISTINCT study_id + '/participant/' + participant_id, "
                  "study_id + '/source/' + source_id",
    "HAS_SEGMENT": f"{rows} RETURN DISTINCT study_id + '/source/' + source_id, study_id + '/segment/' + segment_id",
    "CODED_AS": f"{rows} RETURN study_id + '/segment/' + segment_id, "
                f"study_id + '/code/' + codebook + '/' + code_id, coder, true, {P}",
    "HAS_CODER": f"{rows} RETURN DISTINCT study_id, study_id + '/coder/' + coder",
    "CARRIES": f"{rows} RETURN study_id + '/source/' + source_id, study_id + '/code/' + codebook + '/' + code_id, "
               f"count(*), {P}",
}
for table, query in copies.items():
    conn.execute(f"COPY {table} FROM ({query})")
conn.close()
db.close()
'''

MMKG = str(Path(sys.executable).with_name("mmkg"))  # the installed command, as a user runs it


# Linux reports a child's peak RSS as at least its parent's at the time it was started (a forked or vforked child
# carries the parent's high-water mark through exec), and this process holds the synthetic table and both
# stores' rows: measured directly, every child "peaked" at this process's own peak. So each measured command is
# started by a small launcher process, which reports its child's wall time, exit code and peak RSS.
LAUNCHER = r"""
import os, sys, time
started = time.perf_counter()
child = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ,
                        file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
_, status, usage = os.wait4(child, 0)
print(time.perf_counter() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)
"""


def run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one whole process running `command` (stdout discarded)."""
    report = subprocess.run([sys.executable, "-c", LAUNCHER, *command], stdout=subprocess.PIPE, text=True,
                            check=True).stdout.split()
    seconds, code, peak = float(report[0]), int(report[1]), int(report[2])
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}")
    return seconds, peak


def table_rows(database: Path) -> dict:
    """Every row of `TABLES` in a database file, each table an Arrow table sorted on all its columns."""
    import ladybug

    from mmkg.schema import NODE_BY_LABEL, PAIR_COLUMNS, PASSAGE_COLUMNS, REL_BY_TYPE

    # mmkg's, from the positions, which the bare COPY leaves null
    derived = {(table, name) for table, name, _ in PASSAGE_COLUMNS + PAIR_COLUMNS}

    db = ladybug.Database(str(database), read_only=True)
    conn = ladybug.Connection(db)
    rows = {}
    for table in TABLES:
        if table in REL_BY_TYPE:
            rel = REL_BY_TYPE[table]
            columns = ["a.uid AS `from`", "b.uid AS `to`",
                       *(f"n.{p} AS {p}" for p, _ in rel.properties if (table, p) not in derived)]
            pattern = f"(a:{rel.source})-[n:{table}]->(b:{rel.target})"
        else:
            names = ["uid", "id", "study_id"] if table == "Study" else \
                [c for c in NODE_BY_LABEL[table].columns if (table, c) not in derived]
            columns, pattern = [f"n.{c} AS {c}" for c in names], f"(n:{table})"
        found = conn.execute(f"MATCH {pattern} RETURN {', '.join(columns)}").get_as_arrow()
        rows[table] = found.sort_by([(c, "ascending") for c in found.column_names]).combine_chunks()
    conn.close()
    db.close()
    return rows


def differences(ours: dict, theirs: dict) -> list[str]:
    """The tables whose rows differ, with their row counts."""
    return [f"{table} ({ours[table].num_rows:,} rows against {theirs[table].num_rows:,})" for table in TABLES
            if not ours[table].equals(theirs[table])]


def published(store: Path) -> Path:
    return store / (store / "CURRENT").read_text().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'codings':>10} {'CSV MB':>7} {'mmkg s':>7} {'bare s':>7} {'ratio':>6} {'mmkg GB':>8} {'×CSV':>5} "
          f"{'bare GB':>8} {'×CSV':>5} {'load':>5} rows equal  (median of {args.repeat}; peak RSS: the largest)")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            csv = folder / "codings.csv"
            synthetic_codings(size).to_csv(csv, index=False)
            csv_bytes = csv.stat().st_size
            script = folder / "bare_copy.py"
            script.write_text(BARE_COPY)
            mine, bare, mine_rss, bare_rss, loads = [], [], 0, 0, []
            for attempt in range(args.repeat):
                store, database = folder / f"store-{attempt}", folder / f"bare-{attempt}.lbug"
                job = folder / "job.json"
                job.write_text(json.dumps([ladybug_ddl(), str(database), str(csv), "synthetic"]))
                seconds, rss = run([MMKG, "load", str(csv), "--store", str(store)])
                mine.append(seconds)
                mine_rss = max(mine_rss, rss)
                seconds, rss = run([sys.executable, str(script), str(job)])
                bare.append(seconds)
                bare_rss = max(bare_rss, rss)
                loads.append(os.getloadavg()[0])
                differ = differences(table_rows(published(store)), table_rows(database))
                if differ:
                    raise SystemExit(f"{size:,}: mmkg's tables differ from the bare COPY's: {', '.join(differ)}")
                for leftover in (published(store), database):
                    leftover.unlink()
            t_mine, t_bare = statistics.median(mine), statistics.median(bare)
            print(f"{size:>10,} {csv_bytes / 1e6:>7.1f} {t_mine:>7.2f} {t_bare:>7.2f} {t_mine / t_bare:>6.2f} "
                  f"{mine_rss / 1e9:>8.2f} {mine_rss / csv_bytes:>5.1f} {bare_rss / 1e9:>8.2f} "
                  f"{bare_rss / csv_bytes:>5.1f} {statistics.median(loads):>5.1f} True", flush=True)


if __name__ == "__main__":
    main()
