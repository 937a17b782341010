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
  matcher nor the other sets were seen. Blind until the fourth round, which measured it once before reading
  its misses and then tuned on them: a development set now too.
- heldout4: tests/data/heldout4_study, written blind by another engineer while the fourth round was tuned
  (its README.md), never seen by whoever tuned: the blind set. Its tests show figures only, never misses.
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
HELD_OUT3 = Path(__file__).parent / "data" / "heldout3_study"
HELD_OUT4 = Path(__file__).parent / "data" / "heldout4_study"


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
    kg.load(HELD_OUT3)
    kg.load(HELD_OUT4)
    shipped = shipped_study_path()
    golds = {"founding-unmapped": gold_from_concept_map(read_csv(shipped / "codes.csv"),
                                                        read_csv(shipped / "concept_map.csv")),
             "paraphrase": read_csv(PARAPHRASE / "gold.csv"),
             "heldout": read_csv(HELD_OUT / "gold.csv"),
             "heldout2": read_csv(HELD_OUT2 / "gold.csv"),
             "heldout3": read_csv(HELD_OUT3 / "gold.csv"),
             "heldout4": read_csv(HELD_OUT4 / "gold.csv")}
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
                             (HELD_OUT3, "heldout3"), (HELD_OUT4, "heldout4")):
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
    assert result["top1"] >= 0.95, result["misses"]  # measured 97.3% (109/112), 93.8% before the fourth round
    assert result["top3"] >= 0.98  # measured 100%
    assert result["abstain"] >= 0.90  # measured 100% (15/15)


@pytest.mark.slow
def test_string_matcher_on_the_second_held_out_codes(studies):
    kg, golds = studies
    result = measure(kg, golds, "heldout2", "string")
    assert result["top1"] >= 0.86, result["misses"]  # measured 87.9% (80/91)
    assert result["top3"] >= 0.94  # measured 96.7%
    assert result["abstain"] >= 0.85  # measured 94.7% (18/19)


@pytest.mark.slow
def test_string_matcher_on_the_third_held_out_codes(studies):
    kg, golds = studies
    result = measure(kg, golds, "heldout3", "string")
    # measured 86.4% (95/110); 83.6% on the blind set before the fourth round read its misses
    assert result["top1"] >= 0.84, result["misses"]
    assert result["top3"] >= 0.90  # measured 92.7%
    assert result["abstain"] >= 0.88  # measured 100% (17/17)


@pytest.mark.slow
def test_string_matcher_on_the_blind_codes(studies):
    """The blind set: figures only in the failure message, never its misses."""
    kg, golds = studies
    result = measure(kg, golds, "heldout4", "string")
    figures = {k: result[k] for k in ("top1", "top3", "abstain")}
    # measured once, after the fourth round was merged: 91.8% (112/122), 99.2%, 81.0% (17/21)
    assert result["top1"] >= 0.89 and result["top3"] >= 0.97 and result["abstain"] >= 0.76, figures


@pytest.mark.slow
@pytest.mark.skipif(not semantic_available(), reason="needs the mmkg[semantic] extra")
def test_semantic_matcher_on_every_set(studies):
    kg, golds = studies
    founding = measure(kg, golds, "founding-unmapped", "semantic")
    paraphrase = measure(kg, golds, "paraphrase", "semantic")
    heldout = measure(kg, golds, "heldout", "semantic")
    heldout2 = measure(kg, golds, "heldout2", "semantic")
    heldout3 = measure(kg, golds, "heldout3", "semantic")
    # measured with the ONNX model of the extra (fourth round): 100/100/81.2, 99.0/100/93.8, 98.2/100/100,
    # 91.2/97.8/94.7, 86.4/95.5/100 (top-1/top-3/abstain %)
    assert founding["top1"] >= 0.97 and founding["abstain"] >= 0.78
    assert paraphrase["top1"] >= 0.97 and paraphrase["top3"] >= 0.98 and paraphrase["abstain"] >= 0.85
    assert heldout["top1"] >= 0.96 and heldout["top3"] >= 0.98 and heldout["abstain"] >= 0.90
    assert heldout2["top1"] >= 0.89 and heldout2["top3"] >= 0.95 and heldout2["abstain"] >= 0.85
    assert heldout3["top1"] >= 0.84 and heldout3["top3"] >= 0.93 and heldout3["abstain"] >= 0.88
    blind = measure(kg, golds, "heldout4", "semantic")
    # the blind set, measured once after the fourth round was merged: 91.8/100/90.5; figures only
    assert blind["top1"] >= 0.89 and blind["top3"] >= 0.98 and blind["abstain"] >= 0.85, \
        {k: blind[k] for k in ("top1", "top3", "abstain")}


def test_the_benchmark_refuses_to_list_a_blind_sets_misses(monkeypatch, capsys):
    """A study named blind in benchmarks/mapping_eval.py is measured only: `--misses` is an error before anything
    is loaded, naming the set."""
    import importlib.util
    import sys

    path = Path(__file__).parents[1] / "benchmarks" / "mapping_eval.py"
    spec = importlib.util.spec_from_file_location("mapping_eval_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.BLIND_SETS) == {"heldout4"}
    monkeypatch.setattr(sys, "argv", ["mapping_eval.py", "--misses"])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    assert exit_info.value.code == 2 and "blind set (heldout4)" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["mapping_eval.py", "--misses", "--studies", "heldout", "heldout4"])
    with pytest.raises(SystemExit):
        module.main()
