"""Re-loading and deleting a small study beside a large one, against the same into a store without the large one.

    python benchmarks/reload_bench.py [--large 1000000] [--small 10000] [--repeat 3]

Goal (issue 18): re-loading or deleting a study costs in proportion to that study, not to the store.  Whole
processes, measured in the same run, median of `--repeat` (wall time, peak RSS):

- **beside the large study**: a store holding a synthetic study of LARGE codings (`large`) and one of SMALL codings
  (`small`); `mmkg load small.csv --replace` (a re-load), then a process running `kg.delete_study("small")`;
- **alone** (the baseline): the same re-load and delete in a store holding only `small`.

Ratio = beside ÷ alone: 1 would mean the large study costs the small one nothing.  Checks: after every step both
studies' counts (`mmkg studies`' participants, sources, codes, codings) are what was loaded.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

# each process through load_bench's launcher: a child's own peak RSS, not this process's high-water mark
from load_bench import run  # benchmarks/ is the script's folder, on sys.path

import mmkg
from mmkg.synthetic import synthetic_codings

MMKG = str(Path(sys.executable).with_name("mmkg"))  # the installed command, as a user runs it
DELETE = "import sys, mmkg\nwith mmkg.open_store(sys.argv[1]) as kg:\n    kg.delete_study(sys.argv[2])\n"


def counts(store: Path) -> dict[str, tuple]:
    with mmkg.open_store(store, read_only=True) as kg:
        frame = kg.studies()
    return {row.study_id: (row.participants, row.sources, row.codes, row.codings) for row in frame.itertuples()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        large, small = folder / "large.csv", folder / "small.csv"
        synthetic_codings(args.large, study_id="large").to_csv(large, index=False)
        synthetic_codings(args.small, study_id="small", seed=1).to_csv(small, index=False)
        beside, alone = folder / "beside", folder / "alone"
        run([MMKG, "load", str(large), "--store", str(beside)])
        for store in (beside, alone):
            run([MMKG, "load", str(small), "--store", str(store)])
        expected = counts(beside)
        script = folder / "delete.py"
        script.write_text(DELETE)
        results: dict[tuple[str, str], list[tuple[float, int]]] = {}
        loads = []
        for _ in range(args.repeat):
            for name, store in (("beside", beside), ("alone", alone)):
                results.setdefault(("reload", name), []).append(run([MMKG, "load", str(small), "--store", str(store),
                                                                   "--replace"]))
                if counts(store) != {k: v for k, v in expected.items() if name == "beside" or k == "small"}:
                    raise SystemExit(f"after the re-load {name}: {counts(store)} where {expected} was loaded")
                results.setdefault(("delete", name), []).append(run([sys.executable, str(script), str(store), "small"]))
                if "small" in counts(store) or (name == "beside" and counts(store)["large"] != expected["large"]):
                    raise SystemExit(f"after the delete {name}: {counts(store)}")
                run([MMKG, "load", str(small), "--store", str(store)])  # back for the next round
            loads.append(os.getloadavg()[0])
        print(f"large study {args.large:,} codings, small study {args.small:,} codings; load average "
              f"{statistics.median(loads):.1f}; median of {args.repeat}")
        print(f"{'step':>8} {'beside s':>9} {'alone s':>8} {'ratio':>6} {'beside GB':>10} {'alone GB':>9}"
              "  counts checked")
        for step in ("reload", "delete"):
            mine, base = results[(step, "beside")], results[(step, "alone")]
            t_mine, t_base = statistics.median(s for s, _ in mine), statistics.median(s for s, _ in base)
            peak_mine, peak_base = max(r for _, r in mine) / 1e9, max(r for _, r in base) / 1e9
            print(f"{step:>8} {t_mine:>9.2f} {t_base:>8.2f} {t_mine / t_base:>6.2f} {peak_mine:>10.2f} "
                  f"{peak_base:>9.2f}  True", flush=True)


if __name__ == "__main__":
    main()
