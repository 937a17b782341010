"""`mmkg map suggest` on a researcher's own codes: no proposal for categories, absences and id labels (with
the reason), and reloading a study keeps the mapping applied to it."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

import mmkg
from mmkg.mapping import apply_mapping, label_is_id, show_mapping, suggest, uncodable_reason

MINI = "tests/data/mini_study"


def write_study(folder, study_id: str, codes: list[tuple]) -> None:
    """A one-segment study folder whose codes are (code_id, label, codable[, definition]) in codebook `cb`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.json").write_text(json.dumps({"id": study_id, "title": study_id, "codebooks": ["cb"],
                                                   "provenance": "test fixture"}), encoding="utf-8")
    (folder / "groups.csv").write_text("codebook,group_id,label,parent_group_id\ncb,G,all codes,\n", encoding="utf-8")
    rows = [{"codebook": "cb", "code_id": c[0], "label": c[1], "group_id": "G", "parent_code_id": "",
             "codable": c[2], "preferred_label": "", "definition": c[3] if len(c) > 3 else ""} for c in codes]
    pd.DataFrame(rows).to_csv(folder / "codes.csv", index=False)
    (folder / "participants.csv").write_text("participant_id,label\nP1,P1\n", encoding="utf-8")
    (folder / "sources.csv").write_text("source_id,participant_id,kind,title\nS,P1,interview,S\n", encoding="utf-8")
    (folder / "segments.csv").write_text("segment_id,source_id,start,end,x,y,width,height,synthetic,text,"
                                         "text_section\nG1,S,0,5,,,,,true,,\n", encoding="utf-8")
    first = next(c[0] for c in codes if c[2] == "true")
    (folder / "codings.csv").write_text(f"segment_id,codebook,code_id,coder\nG1,cb,{first},me\n", encoding="utf-8")


@pytest.fixture
def store(tmp_path):
    with mmkg.open_store(tmp_path / "store") as kg:
        yield kg


@pytest.mark.parametrize("label, codable, why", [
    ("attacks", "true", "names a category"), ("AML defences", "true", "names a category"),
    ("security threats", "true", "names a category"), ("organization", "true", "names a category"),
    ("Pipeline elements", "true", "names a category"), ("no attacks", "true", "absence"),
    ("no attack drawn", "true", "absence"), ("none", "true", "absence"),
    ("model stealing", "false", "codable = false"),
])
def test_categories_and_absences_get_no_proposal(label, codable, why):
    assert why in uncodable_reason(label, codable)


@pytest.mark.parametrize("label", ["model stealing", "security and AML", "cloud", "no attacks observed so far",
                                   "availability", "relevance"])
def test_concept_labels_are_not_taken_for_categories(label):
    assert uncodable_reason(label, "true") is None


@pytest.mark.parametrize("label, is_id", [("C.4", True), ("A1", True), ("code_17", True), ("17", True),
                                          ("3f2b8c1e-9d4a-4e5b-8c7d-1a2b3c4d5e6f", True), ("C4", True),
                                          ("SDK", False), ("API", False), ("model stealing", False),
                                          ("DDoS", False), ("MLaaS", False), ("2FA", False), ("PII", False)])
def test_labels_that_are_ids(label, is_id):
    assert label_is_id(label, "x") is is_id


@pytest.mark.slow
def test_uncodable_and_category_codes_are_listed_with_reasons(store, tmp_path):
    write_study(tmp_path / "own", "own", [
        ("1", "attacks", "false"), ("2", "model extraction", "true"), ("3", "organization", "true"),
        ("4", "no attacks", "true"), ("5", "leaked source code", "true"), ("6", "DDoS", "true"),
        ("7", "adversarial examples", "true"), ("8", "favourite colour of the interviewer", "true"),
    ])
    store.load(tmp_path / "own")
    suggestions = suggest(store, "own", matcher="string")
    proposed = dict(zip(suggestions.proposals["code_id"], suggestions.proposals["concept"]))
    assert proposed == {"2": "ModelStealing", "5": "CodeBreach", "6": "DenialOfService", "7": "Evasion"}
    reasons = dict(zip(suggestions.skipped["code_id"], suggestions.skipped["reason"]))
    assert "codable = false" in reasons["1"] and "names a category" in reasons["3"]
    assert "absence" in reasons["4"] and "--min-score 52" in reasons["8"]
    assert pd.isna(suggestions.skipped.set_index("code_id").loc["1", "alternative_1"])  # categories: no candidates
    summary = suggestions.summary()
    assert "proposed a concept for 4 of 8 code(s)" in summary
    assert "1 (uncodable categories)" in summary and "1 (absences)" in summary


@pytest.mark.slow
def test_labels_that_are_ids_say_why_nothing_was_proposed(store, tmp_path):
    write_study(tmp_path / "ids", "ids", [("C.1", "C.1", "true"), ("C.2", "C.2", "true"),
                                          ("C.3", "C.3", "true", "Model extraction: copying a model by querying it"),
                                          ("C.4", "???", "true")])
    store.load(tmp_path / "ids")
    suggestions = suggest(store, "ids", matcher="string")
    assert suggestions.proposals[["code_id", "concept"]].values.tolist() == [["C.3", "ModelStealing"]]
    reasons = dict(zip(suggestions.skipped["code_id"], suggestions.skipped["reason"]))
    assert "is an id, not words" in reasons["C.1"] and "is an id, not words" in reasons["C.2"]
    assert reasons["C.4"] == "label '???' has no words to match"
    assert "2 (labels that are ids)" in suggestions.summary() and "1 (labels without words)" in suggestions.summary()


@pytest.mark.slow
def test_cli_suggest_explains_an_empty_result(tmp_path):
    from mmkg.cli.main import app

    folder = tmp_path / "ids"
    write_study(folder, "ids", [("C.1", "C.1", "true"), ("C.2", "C.2", "true")])
    runner = CliRunner()
    assert runner.invoke(app, ["load", str(folder), "--store", str(tmp_path / "store")]).exit_code == 0
    out = tmp_path / "suggested.csv"
    result = runner.invoke(app, ["map", "suggest", "ids", "--matcher", "string", "-o", str(out),
                                 "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert "proposed a concept for 0 of 2 code(s)" in result.output
    assert "labels that are ids" in result.output
    table = pd.read_csv(out)
    assert table["concept"].isna().all() and table["reason"].str.contains("is an id").all()


@pytest.mark.slow
def test_reloading_a_study_keeps_its_applied_mapping(store, tmp_path):
    folder = tmp_path / "mini"
    shutil.copytree(MINI, folder)
    store.load(folder)
    apply_mapping(store, "mini", pd.DataFrame([
        {"codebook": "interview", "code_id": "A.3", "concept": "ModelStealing", "match": "exact", "note": "mine"},
        {"codebook": "interview", "code_id": "C.4.1", "concept": "CodeBreach", "match": "narrow", "note": None},
    ]))
    before = show_mapping(store, "mini")
    report = store.load(folder)
    assert show_mapping(store, "mini").equals(before)
    assert report.warnings == [] or not any("mapping" in w for w in report.warnings)

    # a new version without code C.4.1: its link is dropped with a warning that says how to map it again
    codes = pd.read_csv(folder / "codes.csv", dtype=str, keep_default_na=False)
    codes[codes["code_id"] != "C.4.1"].to_csv(folder / "codes.csv", index=False)
    codings = pd.read_csv(folder / "codings.csv", dtype=str, keep_default_na=False)
    codings[codings["code_id"] != "C.4.1"].to_csv(folder / "codings.csv", index=False)
    report = store.load(folder)
    assert show_mapping(store, "mini")[["code_id", "concept", "note"]].values.tolist() == [
        ["A.3", "ModelStealing", "mine"]]
    warning = next(w for w in report.warnings if "mapping" in w)
    assert "dropped 1" in warning and "interview:C.4.1 → CodeBreach" in warning and "mmkg map apply" in warning


@pytest.mark.slow
def test_a_concept_map_in_the_file_replaces_the_applied_one_with_a_warning(store, tmp_path):
    folder = tmp_path / "mini"
    shutil.copytree(MINI, folder)
    store.load(folder)
    apply_mapping(store, "mini", pd.DataFrame([{"codebook": "interview", "code_id": "A.3",
                                                "concept": "ModelStealing", "match": "exact", "note": None}]))
    (folder / "concept_map.csv").write_text("codebook,code_id,concept,match,note\n"
                                            "interview,A.1,Poisoning,exact,\n", encoding="utf-8")
    report = store.load(folder)
    assert show_mapping(store, "mini")[["code_id", "concept"]].values.tolist() == [["A.1", "Poisoning"]]
    warning = next(w for w in report.warnings if "mapping" in w)
    assert "replaces the 1 mapping link(s)" in warning and "mmkg map show mini -o mapping.csv" in warning
    # the same map again: nothing to warn about
    assert not any("mapping" in w for w in store.load(folder).warnings)


@pytest.mark.slow
def test_semantic_matcher_without_the_extra_says_how_to_install_it(store, tmp_path):
    from mmkg.errors import MmkgError
    from mmkg.mapping import semantic_available

    if semantic_available():
        pytest.skip("the mmkg[semantic] extra is installed here")
    write_study(tmp_path / "own", "own", [("1", "model extraction", "true")])
    store.load(tmp_path / "own")
    with pytest.raises(MmkgError, match=r"pip install 'mmkg\[semantic\]'"):
        suggest(store, "own", matcher="semantic")
    assert suggest(store, "own").matcher == "string"  # auto falls back to words


@pytest.mark.slow
def test_cli_suggest_when_every_code_is_mapped(founding_store):
    from mmkg.cli.main import app

    with mmkg.open_store(founding_store) as kg:
        codes = kg.export_codes("founding")
        apply_mapping(kg, "founding", pd.DataFrame({"codebook": codes["codebook"], "code_id": codes["code_id"],
                                                    "concept": "Model", "match": "related", "note": None}))
    result = CliRunner().invoke(app, ["map", "suggest", "founding", "--matcher", "string",
                                      "--store", str(founding_store)])
    assert result.exit_code == 0, result.output
    assert "every code of the study already has a mapping" in result.output and "--include-mapped" in result.output
