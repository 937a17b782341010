"""The context rules of `mmkg map suggest`: group and parent labels, group votes, and the margin cut."""
from __future__ import annotations

import pandas as pd

from mmkg.mapping import KIND_PENALTY, clears_cut, code_contexts, context_kinds, kind_adjusted


def test_group_words_name_the_kind_and_side():
    assert context_kinds("AML attacks") == {"aml_threat": 1.0, "security_threat": 0.5}
    assert context_kinds("IT security defences") == {"security_defense": 1.0, "aml_defense": 0.5}
    assert context_kinds("pipeline steps") == {"pipeline_element": 1.0}
    assert context_kinds("Attitudes") == {"perception": 1.0}
    assert context_kinds("organisation") == {}
    assert context_kinds("") == {}


def test_context_is_the_group_chain_and_the_parent_code():
    groups = pd.DataFrame({"codebook": ["b", "b"], "group_id": ["G", "S"], "label": ["ML defences", "tuning"],
                           "parent_group_id": ["", "G"]})
    codes = pd.DataFrame({"codebook": ["b", "b"], "code_id": ["p", "c"], "label": ["hardening", "weight decay"],
                          "group_id": ["G", "S"], "parent_code_id": ["", "p"]})
    contexts = code_contexts(codes, groups)
    assert contexts[("b", "c")] == "tuning ML defences hardening"
    assert contexts[("b", "p")] == "ML defences"


def test_candidates_of_the_wrong_kind_lose_points_only_where_the_context_speaks():
    kinds = {"Poisoning": "aml_threat", "Data": "pipeline_element"}
    scores = [{"Poisoning": 60.0, "Data": 62.0}, {"Poisoning": 60.0, "Data": 62.0}]
    adjusted = kind_adjusted(scores, ["attack types", "organisation"], [("b", "A"), ("b", "O")], kinds)
    assert adjusted[0] == {"Poisoning": 60.0, "Data": 62.0 - KIND_PENALTY}
    assert adjusted[1] == scores[1]  # a group without cue words and without a majority keeps its scores


def test_a_group_without_cue_words_takes_the_kind_most_of_its_codes_agree_on():
    kinds = {"Training": "pipeline_element", "Testing": "pipeline_element", "Evasion": "aml_threat"}
    confident = [{"Training": 90.0, "Evasion": 10.0}, {"Testing": 85.0, "Evasion": 5.0},
                 {"Training": 70.0, "Evasion": 20.0}]
    unsure = {"Training": 40.0, "Evasion": 42.0}
    adjusted = kind_adjusted(confident + [unsure], [""] * 4, [("b", "X")] * 4, kinds)
    assert adjusted[3]["Evasion"] == 42.0 - KIND_PENALTY and adjusted[3]["Training"] == 40.0
    too_few = kind_adjusted(confident[:2] + [unsure], [""] * 3, [("b", "X")] * 3, kinds)
    assert too_few[2] == unsure


def test_the_margin_cut_lets_a_clear_winner_under_the_cut_through():
    assert clears_cut(60.0, 59.0, 60.0, "semantic")
    assert clears_cut(55.0, 45.0, 60.0, "semantic")  # 5 under the cut, 10 ahead
    assert not clears_cut(55.0, 46.0, 60.0, "semantic")  # too close to the second
    assert not clears_cut(54.0, 0.0, 60.0, "semantic")  # too far under the cut


def test_the_string_matcher_has_a_plain_cut():
    """Measured on the development codebooks: a margin under the string cut only cost abstentions."""
    assert clears_cut(52.0, 51.9, 52.0) and not clears_cut(51.9, 0.0, 52.0)


def test_a_header_code_prefers_the_broader_concept_of_its_candidates():
    from mmkg.mapping import header_adjusted

    parents = {("b", "c1"): ("b", "h"), ("b", "c2"): ("b", "h"), ("b", "c3"): ("b", "one")}
    scores = [{"ConfusionAcrossMLAttacks": 47.4, "Confusion": 0.0, "Poisoning": 20.0},  # header h
              {"ConfusionAcrossMLAttacks": 47.4, "Confusion": 0.0},  # one child only: not a header
              {"Cloud": 100.0, "DeploymentEnvironment": 40.0}]  # a header that names the narrower concept
    keys = [("b", "h"), ("b", "one"), ("b", "cloud")]
    parents.update({("b", "x"): ("b", "cloud"), ("b", "y"): ("b", "cloud")})
    header, single, exact = header_adjusted(scores, keys, parents)
    assert header["Confusion"] == 47.5 and header["Poisoning"] == 20.0
    assert single == scores[1]
    assert exact["Cloud"] == 100.0 and exact["DeploymentEnvironment"] == 40.0
