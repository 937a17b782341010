"""How well `mmkg map suggest` finds the right concept: top-1 and top-3 against gold mappings.

    python benchmarks/mapping_eval.py [--matcher string semantic] [--min-score N] [--misses]

The studies are loaded into a temporary embedded store and suggested for as a new user would (no
`--include-mapped`):

- founding: the shipped study's codes without their concept map (study id `founding-unmapped`); gold =
  the curated exact/close concept of each code (studies/founding/concept_map.csv), no concept for the
  codes the curated map leaves unmapped.  The ontology's labels were written with these codes in mind.
- paraphrase: tests/data/paraphrase_study, 115 codes said in other words (written from the paper's
  codebooks before reading the ontology's labels); gold in its gold.csv.
- heldout: tests/data/heldout_study, 127 codes in yet other words and styles (typos, acronyms, British and
  American spelling, camel/snake case, long phrases), written the same way and committed before the
  matcher was tuned; its misses were seen while tuning later, so it is a development set now.
- heldout2: tests/data/heldout2_study, 110 codes named as another team would (sentences, questions,
  in-vivo quotes, jargon, renamed groups, header codes as parents), committed before the context-aware
  matcher was written; it was blind until the third round (spoken-code words, vocabulary section 9d, the
  plain cut), which printed its misses and tuned on them: a development set now, like heldout.
- heldout3: tests/data/heldout3_study, 127 codes (110 with gold) written by an engineer who saw neither
  the ontology's labels nor the matcher, its misses or the other sets (its README.md gives the rules),
  committed before the third round was measured on it. It was the blind set until the fourth round, which
  measured it once before reading its misses (the figure in docs/linking-studies.md) and then printed and
  tuned on them: a development set now, like the others.
- heldout4: tests/data/heldout4_study, 143 codes (122 with gold) written by another engineer while the fourth
  round was being tuned, under the same blind rules (its README.md), and never seen by whoever tuned:
  **the blind set**, measured once the round was merged. Measure it; never tune on it.
The first five are development sets. A blind set is named in `BLIND_SETS`: it is measured, and `--misses`
refuses to list its misses (leave it out with `--studies` to list the others').

top-1 = the proposal (which must reach --min-score) is the gold concept; top-3 = the gold concept is among
the three best-ranked candidates; abstain = codes without a gold concept that got no proposal.  The
semantic matcher runs only where the `mmkg[semantic]` extra is installed.  Timings include loading the
model once.  Results also go to benchmarks/results/mapping_eval.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

import mmkg
from mmkg.loader import shipped_study_path
from mmkg.mapping import (
    MIN_SCORES,
    _concepts,
    evaluate_suggestions,
    gold_from_concept_map,
    semantic_available,
    suggest,
    words,
)

ROOT = Path(__file__).resolve().parents[1]
PARAPHRASE = ROOT / "tests" / "data" / "paraphrase_study"
HELD_OUT = ROOT / "tests" / "data" / "heldout_study"
HELD_OUT2 = ROOT / "tests" / "data" / "heldout2_study"
HELD_OUT3 = ROOT / "tests" / "data" / "heldout3_study"  # blind until the fourth round, a development set since
HELD_OUT4 = ROOT / "tests" / "data" / "heldout4_study"  # written blind during the fourth round: the blind set
# Study ids of blind sets: measured, never tuned on, so `--misses` refuses to list their misses.
BLIND_SETS: frozenset[str] = frozenset({"heldout4"})


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_studies(kg, tmp: Path) -> dict[str, pd.DataFrame]:
    """Load the studies; return their gold tables."""
    founding = tmp / "founding-unmapped"
    shutil.copytree(shipped_study_path(), founding, ignore=shutil.ignore_patterns("concept_map.csv"))
    kg.load(founding, study_id="founding-unmapped")
    kg.load(PARAPHRASE)
    kg.load(HELD_OUT)
    kg.load(HELD_OUT2)
    kg.load(HELD_OUT3)
    kg.load(HELD_OUT4)
    shipped = shipped_study_path()
    return {"founding-unmapped": gold_from_concept_map(read_csv(shipped / "codes.csv"),
                                                       read_csv(shipped / "concept_map.csv")),
            "paraphrase": read_csv(PARAPHRASE / "gold.csv"),
            "heldout": read_csv(HELD_OUT / "gold.csv"),
            "heldout2": read_csv(HELD_OUT2 / "gold.csv"),
            "heldout3": read_csv(HELD_OUT3 / "gold.csv"),
            "heldout4": read_csv(HELD_OUT4 / "gold.csv")}


def literal_names(gold: pd.DataFrame) -> int:
    """Codes whose label, as words, is one of the ontology's names for its gold concept (found by any matcher)."""
    names = {c.uid: set(c.names) for c in _concepts()[0]}
    return sum(tuple(words(label)) in names.get(concept, set())
               for label, concept in zip(gold["label"], gold["concept"]) if concept)


def evaluate(kg, study_id: str, gold: pd.DataFrame, matcher: str, min_score: float | None) -> dict:
    started = time.perf_counter()
    suggestions = suggest(kg, study_id, min_score=min_score, matcher=matcher)
    result = evaluate_suggestions(suggestions, gold)
    result.update(study=study_id, matcher=matcher, min_score=MIN_SCORES[matcher] if min_score is None else min_score,
                  seconds=time.perf_counter() - started,
                  literal_names=literal_names(gold))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--matcher", nargs="+", default=["string", "semantic"], choices=["string", "semantic"])
    parser.add_argument("--min-score", type=float, default=None, help="default: the matcher's own")
    parser.add_argument("--studies", nargs="+", default=None,
                        help="evaluate only these (founding-unmapped, paraphrase, heldout, heldout2, heldout3, "
                             "heldout4)")
    parser.add_argument("--misses", action="store_true",
                        help="list the codes whose proposal is not the gold (refused for a blind set)")
    args = parser.parse_args()
    studies = set(args.studies or [])
    blind = sorted(BLIND_SETS & studies if args.studies else BLIND_SETS)
    if args.misses and blind:
        parser.error(f"--misses lists no misses of a blind set ({', '.join(blind)}): measure it, never tune on it; "
                     "leave it out with --studies")
    matchers = [m for m in args.matcher if m == "string" or semantic_available()]
    if "semantic" in args.matcher and "semantic" not in matchers:
        print("semantic matcher skipped: the mmkg[semantic] extra is not installed")
    results = []
    with tempfile.TemporaryDirectory() as tmp, mmkg.open_store(Path(tmp) / "store") as kg:
        golds = load_studies(kg, Path(tmp))
        for matcher in matchers:
            for study_id, gold in golds.items():
                if args.studies and study_id not in args.studies:
                    continue
                result = evaluate(kg, study_id, gold, matcher, args.min_score)
                if study_id in BLIND_SETS:
                    result["misses"] = []  # a blind set's misses are not shown anywhere
                results.append(result)
    print(f"{'study':<18} {'matcher':<9} {'codes':>5} {'gold':>5} {'top-1':>13} {'top-3':>13} "
          f"{'abstain':>11} {'literal':>7} {'s':>6}")
    for r in results:
        print(f"{r['study']:<18} {r['matcher']:<9} {r['codes']:>5} {r['with_concept']:>5} "
              f"{r['top1']:>6.1%} ({r['top1_hits']:>3}) {r['top3']:>6.1%} ({r['top3_hits']:>3}) "
              f"{r['abstain']:>6.1%} ({r['abstain_hits']:>2}) {r['literal_names']:>7} {r['seconds']:>6.1f}")
        if args.misses:
            for (codebook, code_id), concept, got in r["misses"]:
                print(f"    miss {codebook}:{code_id}: gold {concept}, proposed {got or '-'}")
    print("gold = codes with a gold concept; literal = of those, codes whose label is already one of the "
          "ontology's names for the gold concept")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "mapping_eval.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
