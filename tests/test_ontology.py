"""Tests of the shipped ontology (ontology/mmkg.ttl), its table view and the founding concept map."""
from __future__ import annotations

import json
import os
from pathlib import Path

import owlrl
import pandas as pd
import pytest
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from mmkg.ontology import (
    COLUMNS,
    CONCEPT_KINDS,
    CONCEPT_SCHEME,
    FIGURE1_COLLECTION,
    MMKG,
    ONTOLOGY_IRI,
    ONTOLOGY_PATH,
    RELATION_PROPERTIES,
    concept_tables,
    load_ontology,
    resolve_concept,
)
from mmkg.tables import MATCH_TYPES

REPO = Path(__file__).resolve().parents[1]
CONCEPT_MAP_PATH = REPO / "studies" / "founding" / "concept_map.csv"
CODES_PATH = REPO / "studies" / "founding" / "codes.csv"
ATLAS_IN_SHARED = Path("external") / "mitre-atlas" / "ATLAS.yaml"

# owlrl writes inconsistencies as `[] a err:ErrorMessage ; err:error "…"` into the closure
OWLRL_ERR = Namespace("http://www.daml.org/2002/03/agents/agent-ont#")


# ------------------------------------------------------------------------------------ helpers

def fresh_graph() -> Graph:
    """A private parse of the TTL (the cached graph must not be modified)."""
    return Graph().parse(ONTOLOGY_PATH, format="turtle")


def owl_rl_problems(graph: Graph) -> list[str]:
    """Expand `graph` with the OWL 2 RL closure and list what makes it inconsistent."""
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(graph)
    problems = [str(graph.value(m, OWLRL_ERR.error)) for m in graph.subjects(RDF.type, OWLRL_ERR.ErrorMessage)]
    problems += [f"{s} is of type owl:Nothing" for s in graph.subjects(RDF.type, OWL.Nothing)]
    return problems


def mmkg_terms(graph: Graph, rdf_type: URIRef) -> list[URIRef]:
    return sorted(s for s in graph.subjects(RDF.type, rdf_type) if str(s).startswith(str(MMKG)))


def concept_iris(graph: Graph) -> list[URIRef]:
    return mmkg_terms(graph, SKOS.Concept)


def english(graph: Graph, subject: URIRef, prop: URIRef) -> list[str]:
    return [str(v) for v in graph.objects(subject, prop)
            if getattr(v, "language", None) in (None, "en") and str(v).strip()]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return fresh_graph()


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return concept_tables()


@pytest.fixture(scope="module")
def concept_map() -> pd.DataFrame:
    return pd.read_csv(CONCEPT_MAP_PATH, dtype=str, keep_default_na=False)


# ------------------------------------------------------------------------------------ the TTL

def test_ttl_parses_and_declares_the_ontology(graph):
    assert (ONTOLOGY_IRI, RDF.type, OWL.Ontology) in graph
    assert str(MMKG) == str(ONTOLOGY_IRI) + "#"
    assert len(concept_iris(graph)) > 0


def test_every_mmkg_predicate_and_type_is_declared(graph):
    declared_properties = set(graph.subjects(RDF.type, OWL.ObjectProperty)) | \
        set(graph.subjects(RDF.type, OWL.DatatypeProperty)) | set(graph.subjects(RDF.type, OWL.AnnotationProperty))
    declared_classes = set(graph.subjects(RDF.type, OWL.Class))
    undeclared = {p for p in graph.predicates() if str(p).startswith(str(MMKG)) and p not in declared_properties}
    undeclared |= {c for c in graph.objects(None, RDF.type)
                   if str(c).startswith(str(MMKG)) and c not in declared_classes}
    assert not undeclared, f"used but not declared: {sorted(undeclared)}"


def test_every_class_and_property_has_label_and_definition(graph):
    missing = []
    for rdf_type in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty):
        for term in mmkg_terms(graph, rdf_type):
            if not english(graph, term, RDFS.label):
                missing.append(f"{term}: rdfs:label")
            if not (english(graph, term, SKOS.definition) or english(graph, term, RDFS.comment)):
                missing.append(f"{term}: definition")
    assert not missing, missing


def test_required_classes_and_properties_exist(graph):
    classes = ["Study", "Participant", "Source", "InterviewSource", "DrawingSource", "OtherSource", "Segment",
               "Coding", "Code", "CodeGroup", "Coder", "Concept", "SharedGoal", *[c.split("#")[1] for c in
               CONCEPT_KINDS.values()]]
    properties = ["hasParticipant", "hasSource", "hasSegment", "codedAs", "codedSegment", "appliesCode",
                  "codedBy", "inGroup", "subGroupOf", "subCodeOf", "mapsToConcept", "controls", "affects",
                  "sharesGoalWith", "goal", "mitigates"]
    assert [c for c in classes if (MMKG[c], RDF.type, OWL.Class) not in graph] == []
    declared = set(graph.subjects(RDF.type, OWL.ObjectProperty)) | set(graph.subjects(RDF.type, OWL.DatatypeProperty))
    assert [p for p in properties if MMKG[p] not in declared] == []
    assert (MMKG.sharesGoalWith, RDF.type, OWL.SymmetricProperty) in graph
    for sub in ("InterviewSource", "DrawingSource", "OtherSource"):
        assert (MMKG[sub], RDFS.subClassOf, MMKG.Source) in graph


@pytest.mark.slow
def test_owl_rl_closure_is_consistent():
    assert owl_rl_problems(fresh_graph()) == []


@pytest.mark.slow
@pytest.mark.parametrize("planted", [
    (MMKG.ModelStealing, RDF.type, MMKG.SecurityThreat),   # AML and non-AML threat are disjoint
    (MMKG.Model, MMKG.controls, MMKG.Training),             # a pipeline element cannot be a threat
    (MMKG.Encryption, MMKG.mitigates, MMKG.Deployment),     # defenses mitigate threats, not pipeline steps
])
def test_consistency_check_detects_planted_contradiction(planted):
    graph = fresh_graph()
    graph.add(planted)
    assert owl_rl_problems(graph), f"planting {planted} should make the ontology inconsistent"


# ------------------------------------------------------------------------------------ concepts

def test_every_concept_has_pref_label_definition_and_scheme(graph):
    problems = []
    for concept in concept_iris(graph):
        if len(english(graph, concept, SKOS.prefLabel)) != 1:
            problems.append(f"{concept}: needs exactly one English skos:prefLabel")
        if not english(graph, concept, SKOS.definition):
            problems.append(f"{concept}: no skos:definition")
        if (concept, SKOS.inScheme, CONCEPT_SCHEME) not in graph:
            problems.append(f"{concept}: not in {CONCEPT_SCHEME}")
    assert not problems, problems


def test_every_concept_has_exactly_one_kind(graph):
    wrong = {c: [k for k, cls in CONCEPT_KINDS.items() if (c, RDF.type, cls) in graph] for c in concept_iris(graph)}
    assert {c: k for c, k in wrong.items() if len(k) != 1} == {}


def test_top_concepts_are_exactly_the_concepts_without_broader(graph):
    roots = {c for c in concept_iris(graph) if graph.value(c, SKOS.broader) is None}
    assert set(graph.objects(CONCEPT_SCHEME, SKOS.hasTopConcept)) == roots


def test_broader_hierarchy_stays_within_kind_and_has_no_cycle(tables):
    kind = tables["concepts"].set_index("uid")["kind"]
    broader = tables["relations"].query("type == 'BROADER'")
    assert (broader["source"].map(kind) == broader["target"].map(kind)).all()
    parent = dict(zip(broader["source"], broader["target"]))
    for start in parent:
        seen, node = {start}, parent[start]
        while node in parent:
            assert node not in seen, f"broader cycle through {node}"
            seen.add(node)
            node = parent[node]


def test_every_figure1_attack_has_controls_and_affects(graph):
    attacks = set(graph.objects(FIGURE1_COLLECTION, SKOS.member))
    assert attacks, "Figure 1 collection is empty"
    # Figure 1 draws every AML attack of Sec. 2.1, and only AML attacks
    assert attacks == set(graph.subjects(RDF.type, MMKG.AMLThreat))
    for attack in attacks:
        for prop in (MMKG.controls, MMKG.affects):
            ends = list(graph.objects(attack, prop))
            assert ends, f"{attack} has no {prop}"
            assert all((e, RDF.type, MMKG.PipelineElement) in graph for e in ends), (attack, prop, ends)


def test_relation_ends_have_the_right_kinds(tables):
    kind = tables["concepts"].set_index("uid")["kind"]
    rel = tables["relations"].assign(source_kind=lambda f: f["source"].map(kind),
                                     target_kind=lambda f: f["target"].map(kind))
    expected = {"CONTROLS": ({"aml_threat", "security_threat"}, {"pipeline_element"}),
                "AFFECTS": ({"aml_threat", "security_threat"}, {"pipeline_element"}),
                "MITIGATES": ({"aml_defense", "security_defense"}, {"aml_threat", "security_threat"}),
                "SHARES_GOAL_WITH": ({"aml_threat"}, {"security_threat"})}
    for rel_type, (sources, targets) in expected.items():
        part = rel[rel["type"] == rel_type]
        assert len(part), f"no {rel_type} relations"
        assert part["source_kind"].isin(sources).all(), part[~part["source_kind"].isin(sources)]
        assert part["target_kind"].isin(targets).all(), part[~part["target_kind"].isin(targets)]


def test_shared_goals_are_reified_and_agree_with_shortcut(graph):
    nodes = list(graph.subjects(RDF.type, MMKG.SharedGoal))
    pairs = set()
    for node in nodes:
        members = list(graph.objects(node, MMKG.sharedBy))
        assert len(members) == 2, node
        assert sorted(any((m, RDF.type, cls) in graph for m in members)
                      for cls in (MMKG.AMLThreat, MMKG.SecurityThreat)) == [True, True], node
        assert str(graph.value(node, MMKG.goal) or "").strip(), f"{node} has no goal"
        assert str(graph.value(node, MMKG.securityObjective)) in {"confidentiality", "integrity", "availability"}
        assert (graph.value(node, MMKG.protectedAsset), RDF.type, MMKG.PipelineElement) in graph
        pairs.add(frozenset(members))
    shortcut = {frozenset((s, o)) for s, o in graph.subject_objects(MMKG.sharesGoalWith)}
    assert shortcut == pairs
    # the three pairs Sec. 4.1.1 of the founding paper discusses
    for a, b in [("ModelStealing", "CodeBreach"), ("MembershipInference", "DataBreach"),
                 ("AvailabilityAttack", "DenialOfService")]:
        assert frozenset((MMKG[a], MMKG[b])) in pairs, (a, b)


@pytest.fixture
def atlas_path(request) -> Path:
    """MMKG_ATLAS_YAML, else ../shared's copy (skips only without ../shared; a missing copy there fails)."""
    if os.environ.get("MMKG_ATLAS_YAML"):
        path = Path(os.environ["MMKG_ATLAS_YAML"])
    else:
        path = request.getfixturevalue("shared_dir") / ATLAS_IN_SHARED
    assert path.is_file(), f"MITRE ATLAS data not found at {path}"
    return path


@pytest.mark.slow
def test_atlas_ids_exist_in_atlas_yaml(graph, atlas_path):
    import yaml

    data = yaml.safe_load(atlas_path.read_text(encoding="utf-8"))
    names = {}
    for matrix in data["matrices"]:
        for section, folder in (("techniques", "techniques"), ("mitigations", "mitigations")):
            for entry in matrix.get(section, []):
                names[entry["id"]] = (entry["name"], folder)
    terms = [t for t in graph.subjects(MMKG.inExternalScheme, MMKG.MitreAtlas)]
    assert terms, "no ATLAS terms in the ontology"
    used = {o for p in (SKOS.exactMatch, SKOS.closeMatch) for o in graph.objects(None, p)}
    assert used <= set(terms), f"matched but not described: {used - set(terms)}"
    for term in terms:
        notation = str(graph.value(term, SKOS.notation))
        assert notation in names, f"{notation} is not in {atlas_path.name}"
        name, folder = names[notation]
        assert str(term) == f"https://atlas.mitre.org/{folder}/{notation}"
        assert str(graph.value(term, RDFS.label)) == name


# ------------------------------------------------------------------------------------ tables

def test_concept_tables_columns_and_keys(tables):
    assert set(tables) == set(COLUMNS)
    for name, frame in tables.items():
        assert list(frame.columns) == COLUMNS[name], name
        assert len(frame), name
    concepts = tables["concepts"]
    assert concepts["uid"].is_unique
    assert (concepts["iri"] == concepts["uid"].map(lambda u: str(MMKG[u]))).all()
    assert concepts["kind"].isin(list(CONCEPT_KINDS)).all()
    assert set(concepts["kind"]) == set(CONCEPT_KINDS), "every kind should have concepts"
    assert (concepts["label"].str.strip() != "").all() and (concepts["definition"].str.strip() != "").all()
    assert concepts["label"].str.casefold().is_unique


def test_relations_resolve_and_are_well_formed(tables):
    uids = set(tables["concepts"]["uid"])
    rel = tables["relations"]
    assert rel["type"].isin(list(RELATION_PROPERTIES)).all()
    assert rel["source"].isin(uids).all() and rel["target"].isin(uids).all()
    assert not rel.duplicated(["source", "target", "type"]).any()
    shares = rel["type"] == "SHARES_GOAL_WITH"
    assert (rel.loc[shares, "goal"].str.strip() != "").all()
    assert (rel.loc[~shares, "goal"] == "").all()
    pairs = rel.loc[shares, ["source", "target"]].apply(frozenset, axis=1)
    assert pairs.is_unique, "a symmetric pair must appear once"


def test_tables_match_the_graph(graph, tables):
    assert len(tables["concepts"]) == len(concept_iris(graph))
    rel = tables["relations"]
    for rel_type, prop in RELATION_PROPERTIES.items():
        if rel_type != "SHARES_GOAL_WITH":
            assert (rel["type"] == rel_type).sum() == len(list(graph.subject_objects(prop))), rel_type
    assert (rel["type"] == "SHARES_GOAL_WITH").sum() == len(list(graph.subjects(RDF.type, MMKG.SharedGoal)))
    alt_counts = tables["concepts"].set_index("iri")["alt_labels"].map(lambda s: len(s.split(";")) if s else 0)
    for iri, count in alt_counts.items():
        assert count == len(list(graph.objects(URIRef(iri), SKOS.altLabel))), iri


def test_external_ids_are_well_formed(tables):
    ext = tables["external_ids"]
    assert ext["concept"].isin(set(tables["concepts"]["uid"])).all()
    assert ext["match"].isin(["exact", "close"]).all()
    assert (ext["scheme"] == "MITRE ATLAS").all()
    assert ext["external_id"].str.fullmatch(r"AML\.(T\d{4}(\.\d{3})?|M\d{4})").all()
    assert (ext["name"].str.strip() != "").all()
    assert (ext["url"] == "https://atlas.mitre.org/" + ext["external_id"].map(
        lambda i: "mitigations/" if i.startswith("AML.M") else "techniques/") + ext["external_id"]).all()
    assert not ext.duplicated(["concept", "external_id"]).any()


def test_concept_tables_returns_copies():
    first = concept_tables()
    first["concepts"].loc[:, "label"] = "changed by the caller"
    assert (concept_tables()["concepts"]["label"] != "changed by the caller").all()
    assert load_ontology() is load_ontology()


def test_ontology_file_ships_inside_the_package():
    import mmkg.ontology as package

    assert ONTOLOGY_PATH.parent == Path(package.__file__).parent
    assert ONTOLOGY_PATH.is_file()


def test_resolve_concept_accepts_uid_iri_curie_and_labels(tables):
    for row in tables["concepts"].itertuples():
        assert resolve_concept(row.uid) == row.uid
        assert resolve_concept(row.iri) == row.uid
        assert resolve_concept(f"mmkg:{row.uid}") == row.uid
        assert resolve_concept(row.label) == row.uid
        assert resolve_concept(f"  {row.label.upper()} ") == row.uid
    for missing in ("", "   ", "no such concept", "https://w3id.org/mmkg/ontology#NoSuchConcept"):
        assert resolve_concept(missing) is None


# ------------------------------------------------------------------------------------ concept map

def founding_code_ids() -> set[tuple[str, str]]:
    """(codebook, code_id) pairs of the founding study's shipped codes.csv."""
    codes = pd.read_csv(CODES_PATH, dtype=str, keep_default_na=False)
    return set(zip(codes["codebook"], codes["code_id"]))


def papers_code_ids(shared_dir: Path) -> set[tuple[str, str]]:
    """(codebook, code_id) pairs of the paper's codebook (../shared/paper/codebook.json)."""
    book = json.loads((shared_dir / "paper" / "codebook.json").read_text(encoding="utf-8"))
    ids = {(name, code["id"]) for name in ("interview", "drawing") for g in book[name] for code in g["codes"]}
    return ids | {("interview", "H"), ("interview", "I")}  # the two codable group headers


def test_concept_map_shape_and_values(concept_map):
    assert list(concept_map.columns) == ["codebook", "code_id", "concept", "match", "note"]
    assert len(concept_map)
    assert concept_map["codebook"].isin(["interview", "drawing"]).all()
    assert concept_map["match"].isin(list(MATCH_TYPES)).all()
    assert not concept_map.duplicated(["codebook", "code_id", "concept"]).any()


def test_every_concept_in_concept_map_resolves(concept_map):
    unresolved = [c for c in concept_map["concept"] if resolve_concept(c) is None]
    assert unresolved == []


def test_concept_map_codes_exist_in_the_codebook(concept_map):
    known = founding_code_ids()
    unknown = [(b, c) for b, c in zip(concept_map["codebook"], concept_map["code_id"]) if (b, c) not in known]
    assert unknown == []


def test_the_shipped_codebook_is_the_papers(shared_dir):
    assert founding_code_ids() == papers_code_ids(shared_dir)


def test_exact_interview_mappings_agree_with_the_code_group(concept_map, tables):
    """An exact match of an interview code must have the kind its code group stands for (Table 2)."""
    group_kind = {"A": "aml_threat", "B": "aml_defense", "C": "security_threat", "D": "security_defense",
                  "E": "pipeline_element", "J": "perception", "K": "perception", "L": "perception"}
    kind = tables["concepts"].set_index("uid")["kind"]
    exact = concept_map[(concept_map["codebook"] == "interview") & (concept_map["match"] == "exact")]
    for row in exact.itertuples():
        group = row.code_id.split(".")[0]
        if group in group_kind:
            assert kind[resolve_concept(row.concept)] == group_kind[group], row


def test_attack_and_pipeline_codes_are_all_mapped(concept_map):
    """Every interview AML-attack, threat, defense and pipeline code (groups A-E) has a concept."""
    known = founding_code_ids()
    wanted = {(b, c) for b, c in known if b == "interview" and c[0] in "ABCDE" and "." in c} - {("interview", "B.8")}
    mapped = set(zip(concept_map["codebook"], concept_map["code_id"]))
    assert sorted(wanted - mapped) == []
