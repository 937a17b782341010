"""The mmkg ontology: namespace constants, the shipped Turtle file and its concepts as tables.

    from mmkg.ontology import MMKG, load_ontology, concept_tables, resolve_concept
    tables = concept_tables()          # {"concepts", "relations", "external_ids"} -> DataFrame
    resolve_concept("model extraction")  # -> "ModelStealing"

Everything is read from `mmkg.ttl` next to this file; nothing is downloaded and no file
outside the package is read.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS, XSD

MMKG = Namespace("https://w3id.org/mmkg/ontology#")
ONTOLOGY_IRI = URIRef("https://w3id.org/mmkg/ontology")
ONTOLOGY_PATH = Path(__file__).with_name("mmkg.ttl")
CONCEPT_SCHEME = MMKG.MentalModelScheme
FIGURE1_COLLECTION = MMKG.Figure1Attacks

# concept kind (the `kind` column) -> the OWL class that marks it in the TTL
CONCEPT_KINDS: dict[str, URIRef] = {
    "pipeline_element": MMKG.PipelineElement,
    "aml_threat": MMKG.AMLThreat,
    "security_threat": MMKG.SecurityThreat,
    "aml_defense": MMKG.AMLDefense,
    "security_defense": MMKG.SecurityDefense,
    "perception": MMKG.Perception,
}
# relation type (the `type` column) -> the RDF property it is read from
RELATION_PROPERTIES: dict[str, URIRef] = {
    "BROADER": SKOS.broader,
    "CONTROLS": MMKG.controls,
    "AFFECTS": MMKG.affects,
    "SHARES_GOAL_WITH": MMKG.sharesGoalWith,
    "MITIGATES": MMKG.mitigates,
}
# external match type (the `match` column) -> SKOS mapping property
EXTERNAL_MATCH_PROPERTIES: dict[str, URIRef] = {"exact": SKOS.exactMatch, "close": SKOS.closeMatch}

COLUMNS: dict[str, list[str]] = {
    "concepts": ["uid", "iri", "label", "kind", "definition", "alt_labels"],
    "relations": ["source", "target", "type", "goal"],
    "external_ids": ["concept", "scheme", "external_id", "name", "url", "match"],
}

__all__ = [
    "MMKG", "SKOS", "OWL", "RDF", "RDFS", "XSD", "DCTERMS", "ONTOLOGY_IRI", "ONTOLOGY_PATH",
    "CONCEPT_SCHEME", "FIGURE1_COLLECTION", "CONCEPT_KINDS", "RELATION_PROPERTIES",
    "EXTERNAL_MATCH_PROPERTIES", "COLUMNS", "load_ontology", "concept_tables", "concept_iri",
    "resolve_concept",
]


@lru_cache(maxsize=1)
def load_ontology() -> Graph:
    """The parsed ontology graph (cached and shared: do not modify it; copy it first)."""
    graph = Graph()
    graph.parse(ONTOLOGY_PATH, format="turtle")
    graph.bind("mmkg", MMKG)
    graph.bind("skos", SKOS)
    return graph


def concept_iri(uid: str) -> URIRef:
    """The IRI of the concept with local name `uid`."""
    return MMKG[uid]


def _local_name(iri: URIRef) -> str:
    return str(iri)[len(str(MMKG)):]


def _concept_iris(graph: Graph) -> list[URIRef]:
    return sorted(s for s in graph.subjects(RDF.type, SKOS.Concept)
                  if isinstance(s, URIRef) and str(s).startswith(str(MMKG)))


def _text(graph: Graph, subject: URIRef, prop: URIRef) -> str:
    """One literal value, preferring English or untagged; '' when absent."""
    values = [v for v in graph.objects(subject, prop) if getattr(v, "language", None) in (None, "en")]
    return str(sorted(values)[0]) if values else ""


def _kind(graph: Graph, concept: URIRef) -> str:
    kinds = [k for k, cls in CONCEPT_KINDS.items() if (concept, RDF.type, cls) in graph]
    if len(kinds) != 1:
        raise ValueError(f"concept {concept} must have exactly one kind class, has {kinds or 'none'}")
    return kinds[0]


def _concepts_frame(graph: Graph) -> pd.DataFrame:
    rows = []
    for iri in _concept_iris(graph):
        alt = sorted(str(v) for v in graph.objects(iri, SKOS.altLabel))
        rows.append({"uid": _local_name(iri), "iri": str(iri), "label": _text(graph, iri, SKOS.prefLabel),
                     "kind": _kind(graph, iri), "definition": _text(graph, iri, SKOS.definition),
                     "alt_labels": ";".join(alt)})
    return pd.DataFrame(rows, columns=COLUMNS["concepts"])


def _shared_goal_pair(graph: Graph, members: list[URIRef]) -> tuple[URIRef, URIRef]:
    """Order a pair as (AML threat, other); otherwise by IRI, so each pair has one direction."""
    a, b = sorted(members)
    if (b, RDF.type, MMKG.AMLThreat) in graph and (a, RDF.type, MMKG.AMLThreat) not in graph:
        a, b = b, a
    return a, b


def _relations_frame(graph: Graph, concepts: set[URIRef]) -> pd.DataFrame:
    rows = []
    for rel_type, prop in RELATION_PROPERTIES.items():
        if rel_type == "SHARES_GOAL_WITH":
            continue
        for s, o in graph.subject_objects(prop):
            if s in concepts and o in concepts:
                rows.append({"source": _local_name(s), "target": _local_name(o), "type": rel_type, "goal": ""})
    # shared goals: one row per pair, goal from the reified SharedGoal node
    seen: set[frozenset] = set()
    for node in sorted(graph.subjects(RDF.type, MMKG.SharedGoal)):
        members = sorted(m for m in graph.objects(node, MMKG.sharedBy) if m in concepts)
        if len(members) != 2:
            raise ValueError(f"shared goal {node} must name exactly two concepts, names {len(members)}")
        source, target = _shared_goal_pair(graph, members)
        seen.add(frozenset(members))
        rows.append({"source": _local_name(source), "target": _local_name(target), "type": "SHARES_GOAL_WITH",
                     "goal": _text(graph, node, MMKG.goal)})
    for s, o in sorted(graph.subject_objects(MMKG.sharesGoalWith)):
        if s in concepts and o in concepts and frozenset((s, o)) not in seen:
            seen.add(frozenset((s, o)))
            source, target = _shared_goal_pair(graph, [s, o])
            rows.append({"source": _local_name(source), "target": _local_name(target),
                         "type": "SHARES_GOAL_WITH", "goal": ""})
    frame = pd.DataFrame(rows, columns=COLUMNS["relations"])
    return frame.sort_values(["type", "source", "target"], ignore_index=True)


def _external_ids_frame(graph: Graph, concepts: set[URIRef]) -> pd.DataFrame:
    rows = []
    for match, prop in EXTERNAL_MATCH_PROPERTIES.items():
        for concept, term in graph.subject_objects(prop):
            if concept not in concepts or (term, RDF.type, MMKG.ExternalTerm) not in graph:
                continue
            scheme = graph.value(term, MMKG.inExternalScheme)
            rows.append({"concept": _local_name(concept),
                         "scheme": _text(graph, scheme, RDFS.label) if scheme is not None else "",
                         "external_id": _text(graph, term, SKOS.notation),
                         "name": _text(graph, term, RDFS.label), "url": str(term), "match": match})
    frame = pd.DataFrame(rows, columns=COLUMNS["external_ids"])
    return frame.sort_values(["concept", "external_id"], ignore_index=True)


@lru_cache(maxsize=1)
def _tables() -> dict[str, pd.DataFrame]:
    graph = load_ontology()
    concepts = set(_concept_iris(graph))
    return {"concepts": _concepts_frame(graph), "relations": _relations_frame(graph, concepts),
            "external_ids": _external_ids_frame(graph, concepts)}


def concept_tables() -> dict[str, pd.DataFrame]:
    """The ontology as the graph store loads it: `concepts`, `relations`, `external_ids` (fresh copies).

    relations.type is one of BROADER (narrower -> broader), CONTROLS, AFFECTS (attack -> pipeline
    step), SHARES_GOAL_WITH (AML threat -> non-AML threat, with `goal`), MITIGATES (defense -> threat).
    """
    return {name: frame.copy() for name, frame in _tables().items()}


@lru_cache(maxsize=1)
def _name_index() -> tuple[dict[str, str], dict[str, set[str]]]:
    """(uid/IRI/CURIE -> uid, lower-cased label -> uids)."""
    exact: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    concepts = _tables()["concepts"]
    for row in concepts.itertuples():
        for key in (row.uid, row.iri, f"mmkg:{row.uid}"):
            exact[key] = row.uid
        names = [row.label] + [a for a in row.alt_labels.split(";") if a]
        for name in names:
            labels.setdefault(name.strip().casefold(), set()).add(row.uid)
    return exact, labels


def resolve_concept(name_or_iri: str) -> str | None:
    """The uid of a concept given its uid, IRI, `mmkg:` CURIE, preferred or alternative label.

    Labels match case-insensitively; a label shared by several concepts resolves to None.
    """
    if not isinstance(name_or_iri, str) or not name_or_iri.strip():
        return None
    key = name_or_iri.strip()
    exact, labels = _name_index()
    if key in exact:
        return exact[key]
    uids = labels.get(key.casefold(), set())
    if len(uids) == 1:
        return next(iter(uids))
    # a preferred label wins over alternative labels of other concepts
    preferred = [u for u in uids if _tables()["concepts"].set_index("uid").at[u, "label"].casefold() == key.casefold()]
    return preferred[0] if len(preferred) == 1 else None
