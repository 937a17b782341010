"""The words the mapping matcher reads: the ontology's labels (section 9 of ontology/mmkg.ttl) and `words`."""
from __future__ import annotations

from collections import defaultdict

import pytest
from rdflib.namespace import SKOS

from mmkg.mapping import string_scores, words
from mmkg.ontology import MMKG, concept_tables, load_ontology, resolve_concept


def concept_labels():
    graph = load_ontology()
    uids = set(concept_tables()["concepts"]["uid"])
    for prop in (SKOS.prefLabel, SKOS.altLabel, SKOS.hiddenLabel):
        for concept, label in graph.subject_objects(prop):
            uid = str(concept)[len(str(MMKG)):]
            if str(concept).startswith(str(MMKG)) and uid in uids:
                yield uid, prop, str(label)


def test_every_label_belongs_to_one_concept():
    owners = defaultdict(set)
    for uid, _, label in concept_labels():
        owners[label.casefold()].add(uid)
    assert {label: uids for label, uids in owners.items() if len(uids) > 1} == {}


def test_every_label_is_english_and_not_blank():
    graph = load_ontology()
    for prop in (SKOS.altLabel, SKOS.hiddenLabel):
        for concept, label in graph.subject_objects(prop):
            assert label.language == "en" and str(label).strip() == str(label) and str(label), (concept, label)


def test_alternative_labels_resolve_to_their_concept():
    for uid, prop, label in concept_labels():
        if prop == SKOS.altLabel:
            assert resolve_concept(label) == uid, label


@pytest.mark.slow
def test_each_label_scores_its_own_concept_first():
    """A code labelled with any name of a concept gets that concept (or an equal score) as best match."""
    wrong = []
    for uid, _, label in concept_labels():
        scores = string_scores(label)
        if scores[uid] < max(scores.values()):
            wrong.append((label, uid, max(scores, key=scores.get)))
    assert wrong == []


@pytest.mark.parametrize("a, b", [("ModelStealing", "model stealing"), ("defences", "defense"),
                                  ("anonymisation", "anonymization"), ("labelling", "labeling"),
                                  ("re-training", "retraining"), ("adversarial machine learning", "AML"),
                                  ("AI model", "ML model"), ("not a priority", "low priority"),
                                  ("datasets", "data set")])
def test_words_unify_spellings_and_abbreviations(a, b):
    assert words(a) == words(b)


@pytest.mark.parametrize("a, b", [("DDoS", "distributed denial of service"), ("DoS", "denial of service"),
                                  ("PII leak", "personal data leak"), ("XAI", "explainable AI"),
                                  ("2FA", "two-factor authentication"), ("neural net", "neural network"),
                                  ("MITM", "man in the middle"), ("adv. examples", "adversarial examples")])
def test_words_spell_out_acronyms(a, b):
    assert words(a) == words(b)


@pytest.mark.parametrize("a, b", [("model theft", "stealing the model"), ("stolen data", "data theft"),
                                  ("gathering data", "data collection"), ("annotation", "labelling"),
                                  ("pseudonymisation", "anonymization"), ("interpretable", "explainable")])
def test_words_fold_synonyms(a, b):
    assert set(words(a)) == set(words(b))


def test_acronyms_inside_words_are_left_alone():
    assert words("dose") == ["dose"] and words("Windows") == ["window"]
    assert words("DoS and DDoS") == ["denial", "servic", "distribut", "denial", "servic"]


def test_a_slip_in_a_long_word_still_finds_the_concept():
    for typo, concept in (("poisining attack", "Poisoning"), ("membrship inference", "MembershipInference"),
                          ("adverserial examples", "Evasion")):
        scores = string_scores(typo)
        assert max(scores, key=scores.get) == concept, typo


def test_words_drop_stop_words_and_keep_meaningful_ones():
    assert words("The stealing of the model") == ["steal", "model"]
    assert "not" in words("not used because of security") and "no" in words("no attacks")


def test_the_ontology_still_loads_as_the_store_reads_it():
    concepts = concept_tables()["concepts"]
    assert len(concepts) == 76 and concepts["alt_labels"].str.len().gt(0).sum() >= 60
    assert resolve_concept("RAG poisoning") == "Poisoning"  # section 9c, [ATLAS] AML.T0070


@pytest.mark.parametrize("label, read", [
    ("MI attack", "membership inference attack"),  # two letters: the next word completes a name
    ("MI", "MI"), ("ID theft", "ID theft"),  # two letters alone are often something else
    ("MRE", "model reverse engineering"),  # three letters of one concept's preferred label
    ("explainabilty", "explainability"), ("membrship inference", "membership inference"),  # slips
    ("classification", "classification"), ("neutral", "neutral"),  # words, not slips of the ontology's words
])
def test_read_label_spells_out_acronyms_of_concept_labels_and_corrects_slips(label, read):
    from mmkg.mapping import read_label

    assert read_label(label) == read


def test_a_sentence_names_no_category_of_codes():
    from mmkg.mapping import uncodable_reason

    assert uncodable_reason("thinks in terms of code", "true") is None
    assert uncodable_reason("he talks about attacks", "true") is None
    assert "category" in uncodable_reason("all attacks", "true")
    assert "category" in uncodable_reason("other threats", "true")
