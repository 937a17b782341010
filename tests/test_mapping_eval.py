"""Top-1 / top-3 of `mmkg map suggest` against gold mappings (the full table: benchmarks/mapping_eval.py).

- founding: the shipped codes loaded without their concept map, suggested for without --include-mapped;
  gold = the curated exact/close concepts.
- paraphrase: tests/data/paraphrase_study, codes said in other words, written from the paper's codebooks
  before reading the ontology's labels; gold in its gold.csv (an empty concept: no proposal expected).
  The matcher and the vocabulary were developed against it.
- heldout: tests/data/heldout_study, written the same way in other styles and committed before the matcher
  was tuned; its misses were seen later, so it is a development set now.
- heldout2: tests/data/heldout2_study, another team's style (sentences, questions, quotes, jargon, renamed
  groups), committed before the context-aware matcher; blind until the third round (spoken-code words,
  vocabulary 9d) printed its misses, so a development set now too.
- heldout3: tests/data/heldout3_study, written blind (its README.md): neither the ontology's labels nor the
  matcher nor the other sets were seen, and it is measured, never tuned on (its misses are never printed).
All floors are regression guards a little under what was measured, not targets.

The floors are what the string matcher (no extra installed) must keep; the semantic matcher is checked
only where the `mmkg[semantic]` extra is installed.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import mmkg
from mmkg.loader import shipped_study_path
from mmkg.mapping import evaluate_suggestions, gold_from_concept_map, semantic_available, suggest

PARAPHRASE = Path(__file__).parent / "data" / "paraphrase_study"
HELD_OUT = Path(__file__).parent / "data" / "heldout_study"
HELD_OUT2 = Path(__file__).parent / "data" / "heldout2_study"
BLIND = Path(__file__).parent / "data" / "heldout3_study"


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A store with the founding codes (no concept map) and the paraphrase study; their gold tables."""
    tmp = tmp_path_factory.mktemp("mapping-eval")
    shutil.copytree(shipped_study_path(), tmp / "founding", ignore=shutil.ignore_patterns("concept_map.csv"))
    kg = mmkg.open_store(tmp / "store")
    kg.load(tmp / "founding", study_id="founding-unmapped")
    kg.load(PARAPHRASE)
    kg.load(HELD_OUT)
    kg.load(HELD_OUT2)
    kg.load(BLIND)
    shipped = shipped_study_path()
    golds = {"founding-unmapped": gold_from_concept_map(read_csv(shipped / "codes.csv"),
                                                        read_csv(shipped / "concept_map.csv")),
             "paraphrase": read_csv(PARAPHRASE / "gold.csv"),
             "heldout": read_csv(HELD_OUT / "gold.csv"),
             "heldout2": read_csv(HELD_OUT2 / "gold.csv"),
             "heldout3": read_csv(BLIND / "gold.csv")}
    yield kg, golds
    kg.close()


def measure(kg, golds, study_id: str, matcher: str) -> dict:
    result = evaluate_suggestions(suggest(kg, study_id, matcher=matcher), golds[study_id])
    print(f"\n{study_id} ({matcher}): top-1 {result['top1']:.1%} ({result['top1_hits']}/{result['with_concept']}), "
          f"top-3 {result['top3']:.1%}, no proposal where none is due {result['abstain']:.1%} "
          f"({result['abstain_hits']}/{result['without_concept']})")
    return result


@pytest.mark.slow
def test_the_gold_tables_name_known_codes_and_concepts(studies):
    from mmkg.ontology import resolve_concept

    kg, golds = studies
    for study_id, gold in golds.items():
        codes = kg.export_codes(study_id)
        known = set(zip(codes["codebook"], codes["code_id"]))
        assert set(zip(gold["codebook"], gold["code_id"])) <= known, study_id
        named = gold.loc[gold["concept"] != "", "concept"]
        assert all(resolve_concept(c) == c for c in named), study_id
    for folder, study_id in ((PARAPHRASE, "paraphrase"), (HELD_OUT, "heldout"), (HELD_OUT2, "heldout2"),
                             (BLIND, "heldout3")):
        gold = golds[study_id]
        assert len(gold) == len(read_csv(folder / "codes.csv")) and (gold["concept"] == "").sum() >= 10


@pytest.mark.slow
def test_string_matcher_floor_on_the_founding_codes(studies):
    """The issue's bar: top-1 ≥ 90% on the founding codes, suggested for without --include-mapped."""
    kg, golds = studies
    result = measure(kg, golds, "founding-unmapped", "string")
    assert result["top1"] >= 0.90, result["misses"]
    assert result["top3"] >= 0.95
    assert result["abstain"] >= 0.72  # measured 75.0% (24/32)


@pytest.mark.slow
def test_string_matcher_floor_on_paraphrased_codes(studies):
    kg, golds = studies
    result = measure(kg, golds, "paraphrase", "string")
    assert result["top1"] >= 0.94, result["misses"]  # measured 97.0% (96/99)
    assert result["top3"] >= 0.97
    assert result["abstain"] >= 0.85  # measured 87.5% (14/16)


@pytest.mark.slow
def test_string_matcher_on_the_held_out_codes(studies):
    kg, golds = studies
    result = measure(kg, golds, "heldout", "string")
    assert result["top1"] >= 0.91, result["misses"]  # measured 93.8% (105/112)
    assert result["top3"] >= 0.95  # measured 97.3%
    assert result["abstain"] >= 0.90  # measured 100% (15/15)


@pytest.mark.slow
def test_string_matcher_on_the_second_held_out_codes(studies):
    kg, golds = studies
    result = measure(kg, golds, "heldout2", "string")
    assert result["top1"] >= 0.84, result["misses"]  # measured 86.8% (79/91)
    assert result["top3"] >= 0.94  # measured 96.7%
    assert result["abstain"] >= 0.85  # measured 94.7% (18/19)


@pytest.mark.slow
def test_string_matcher_on_the_blind_codes(studies):
    kg, golds = studies
    result = measure(kg, golds, "heldout3", "string")
    # a failure must not print the blind set's misses (they would invite tuning on it)
    top1, top3, abstain = result["top1"], result["top3"], result["abstain"]
    assert top1 >= 0.81, f"top-1 {top1:.1%}"  # measured 83.6% (92/110); 74.5% before the third round
    assert top3 >= 0.89, f"top-3 {top3:.1%}"  # measured 91.8%
    assert abstain >= 0.88, f"abstain {abstain:.1%}"  # measured 100% (17/17)


@pytest.mark.slow
@pytest.mark.skipif(not semantic_available(), reason="needs the mmkg[semantic] extra")
def test_semantic_matcher_on_all_four(studies):
    kg, golds = studies
    founding = measure(kg, golds, "founding-unmapped", "semantic")
    paraphrase = measure(kg, golds, "paraphrase", "semantic")
    heldout = measure(kg, golds, "heldout", "semantic")
    heldout2 = measure(kg, golds, "heldout2", "semantic")
    # measured with the ONNX model of the extra (third round): 98.8/100/81.2, 99.0/100/93.8, 93.8/98.2/100,
    # 91.2/97.8/94.7 (top-1/top-3/abstain %)
    assert founding["top1"] >= 0.90 and founding["abstain"] >= 0.78
    assert paraphrase["top1"] >= 0.95 and paraphrase["top3"] >= 0.97 and paraphrase["abstain"] >= 0.85
    assert heldout["top1"] >= 0.91 and heldout["top3"] >= 0.95 and heldout["abstain"] >= 0.90
    assert heldout2["top1"] >= 0.88 and heldout2["top3"] >= 0.95 and heldout2["abstain"] >= 0.85
