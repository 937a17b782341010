"""Mapping a study's codes onto the ontology: suggestions (never applied), validated atomic apply, show."""
from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import mmkg
from mmkg.errors import ValidationError
from mmkg.loader import shipped_study_path
from mmkg.mapping import (
    apply_mapping,
    evaluate_suggestions,
    gold_from_concept_map,
    show_mapping,
    suggest,
    unmapped_codes,
)


@pytest.fixture
def kg(founding_store):
    graph = mmkg.open_store(founding_store)
    yield graph
    graph.close()


def maps_to(kg) -> pd.DataFrame:
    return kg.cypher("MATCH (k:Code)-[m:MAPS_TO]->(c:Concept) RETURN k.uid AS code, c.uid AS concept, "
                     "m.match AS match ORDER BY code, concept")


@pytest.mark.slow
def test_suggestions_recover_the_founding_mapping_and_write_nothing(kg):
    before = maps_to(kg)
    suggestions = suggest(kg, "founding", top=3, include_mapped=True, matcher="string")
    assert maps_to(kg).equals(before)
    proposals = suggestions.proposals
    assert list(proposals.columns[:8]) == ["codebook", "code_id", "label", "concept", "concept_label", "score",
                                           "match", "reason"]
    assert list(proposals.columns[8:]) == ["alternative_1", "alternative_1_label", "alternative_1_score",
                                           "alternative_2", "alternative_2_label", "alternative_2_score"]
    assert not proposals.duplicated(["codebook", "code_id"]).any(), "one proposal per code"
    truth = pd.read_csv(shipped_study_path() / "concept_map.csv")
    codes = pd.read_csv(shipped_study_path() / "codes.csv")
    result = evaluate_suggestions(suggestions, gold_from_concept_map(codes, truth))
    assert result["top1"] >= 0.9, f"top-1 agrees with the curated map for {result['top1_hits']} of " \
                                  f"{result['with_concept']}: {result['misses']}"
    # the proposal outranks its alternatives, and exact proposals have high scores
    assert (proposals["score"] >= proposals["alternative_1_score"]).all()
    assert (proposals["alternative_1_score"] >= proposals["alternative_2_score"]).all()
    assert (proposals.loc[proposals["match"] == "exact", "score"] >= 95).all()
    assert set(proposals["match"]) <= {"exact", "close"}


@pytest.mark.slow
def test_suggest_skips_mapped_codes_by_default(kg):
    suggestions = suggest(kg, "founding", min_score=0, matcher="string")
    shown = show_mapping(kg, "founding")
    mapped = set(zip(shown["codebook"], shown["code_id"]))
    table = suggestions.review_table()
    assert len(table) and not set(zip(table["codebook"], table["code_id"])) & mapped
    assert suggestions.already_mapped == len(mapped)
    assert f"{len(mapped)} code(s) already mapped were left out" in suggestions.summary()


@pytest.mark.slow
def test_applying_the_suggestions_as_they_are_maps_each_code_once(kg):
    """The review table goes to `apply` unchanged: each code gets its one proposal, alternatives are ignored."""
    suggestions = suggest(kg, "founding", include_mapped=True, matcher="string")
    table = suggestions.review_table()
    assert table["alternative_1"].notna().sum() > len(suggestions.proposals) // 2  # there are alternatives
    report = apply_mapping(kg, "founding", table)
    shown = show_mapping(kg, "founding")
    assert report.mappings == len(suggestions.proposals) == len(shown)
    assert not shown.duplicated(["codebook", "code_id"]).any()
    stealing = shown[(shown["codebook"] == "interview") & (shown["code_id"] == "A.3")]
    assert stealing["concept"].tolist() == ["ModelStealing"]
    unproposed = set(zip(suggestions.skipped["codebook"], suggestions.skipped["code_id"]))
    assert unproposed == set(zip(report.unmapped["codebook"], report.unmapped["code_id"]))


@pytest.mark.slow
def test_apply_replaces_the_mapping_atomically_and_reports_unmapped(kg):
    codings_before = len(kg.export_codings("founding"))
    table = pd.DataFrame([
        {"codebook": "interview", "code_id": "A.3", "concept": "model stealing", "match": "exact", "note": "label"},
        {"codebook": "interview", "code_id": "C.4", "concept": "CodeBreach", "match": "close", "note": None},
        {"codebook": "interview", "code_id": "C.3", "concept": "", "match": "", "note": "deliberately unmapped"},
    ])
    report = apply_mapping(kg, "founding", table)
    shown = show_mapping(kg, "founding")
    assert shown[["code_id", "concept", "match"]].values.tolist() == [["A.3", "ModelStealing", "exact"],
                                                                     ["C.4", "CodeBreach", "close"]]
    codes = len(kg.export_codes("founding"))
    assert report.mappings == 2 and len(report.unmapped) == codes - 2
    assert len(kg.export_codings("founding")) == codings_before  # only the mapping changed


@pytest.mark.slow
def test_apply_with_merge_keeps_other_mappings(kg):
    before = len(show_mapping(kg, "founding"))
    apply_mapping(kg, "founding", pd.DataFrame([{"codebook": "interview", "code_id": "G.1", "concept": "Model",
                                                 "match": "related", "note": None}]), merge=True)
    shown = show_mapping(kg, "founding")
    assert len(shown) == before + 1 and "G.1" not in set(unmapped_codes(kg, "founding")["code_id"])


def test_bad_rows_are_named_and_nothing_changes(kg, tmp_path):
    before = maps_to(kg)
    path = tmp_path / "reviewed.csv"
    path.write_text("codebook,code_id,concept,match,note\n"
                    "interview,A.3,ModelStealing,exact,\n"
                    "interview,Z.9,ModelStealing,exact,\n"
                    "interview,A.1,NoSuchConcept,exact,\n"
                    "interview,A.2,Evasion,sameish,\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        apply_mapping(kg, "founding", path)
    details = "\n".join(caught.value.details)
    assert f"{path}, row 3, column code_id: the study has no code 'Z.9'" in details
    assert f"{path}, row 4, column concept: 'NoSuchConcept' is not a concept" in details
    assert f"{path}, row 5, column match: 'sameish' is not a SKOS match type" in details
    assert len(caught.value.details) == 3
    assert maps_to(kg).equals(before)


@pytest.mark.slow
def test_cli_suggest_apply_show(founding_store, tmp_path):
    from mmkg.cli.main import app

    runner = CliRunner()
    suggestions = tmp_path / "suggested.csv"
    result = runner.invoke(app, ["map", "suggest", "founding", "--include-mapped", "--matcher", "string",
                                 "-o", str(suggestions), "--store", str(founding_store)])
    assert result.exit_code == 0, result.output
    assert "proposed a concept for" in result.output and "string matcher" in result.output
    table = pd.read_csv(suggestions)
    assert {"alternative_1", "alternative_2", "reason"} <= set(table.columns)
    reviewed = table.query("score >= 95")
    reviewed.to_csv(tmp_path / "reviewed.csv", index=False)
    result = runner.invoke(app, ["map", "apply", "founding", str(tmp_path / "reviewed.csv"),
                                 "--store", str(founding_store)])
    assert result.exit_code == 0, result.output
    assert f"Applied {len(reviewed)} mapping(s)" in result.output
    with mmkg.open_store(founding_store, read_only=True) as kg:
        assert len(show_mapping(kg, "founding")) == len(reviewed)


def test_cli_suggest_rejects_an_unknown_matcher(founding_store):
    from mmkg.cli.main import app

    result = CliRunner().invoke(app, ["map", "suggest", "founding", "--matcher", "magic",
                                      "--store", str(founding_store)])
    # `mmkg.cli.main.main` turns the error into a message and an exit code; the runner shows the error itself
    assert isinstance(result.exception, ValidationError) and "unknown matcher 'magic'" in result.exception.message
