"""Exporting the graph as RDF (Turtle or JSON-LD): the ontology plus instance data in its vocabulary.

Instance IRIs live under `https://w3id.org/mmkg/data/<study>/<kind>/<id>` (ids percent-encoded).
Every study-scoped resource carries `mmkg:inStudy` and `mmkg:identifier`; a coding (one code applied
to one segment by one coder) is a `mmkg:Coding` resource; a code→concept mapping is a
`mmkg:ConceptMapping` with `mmkg:matchType` (and `mmkg:mapsToConcept` as a direct shortcut).  The
output conforms to the SHACL shapes in `ontology/shapes.ttl` (`SHAPES_PATH`).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS, XSD

from mmkg.errors import MmkgError
from mmkg.ontology import MMKG, ONTOLOGY_PATH, concept_iri, load_ontology

DATA = Namespace("https://w3id.org/mmkg/data/")
SHAPES_PATH = ONTOLOGY_PATH.with_name("shapes.ttl")
FORMATS = {"ttl": "turtle", "turtle": "turtle", "jsonld": "json-ld", "json-ld": "json-ld"}
SOURCE_CLASSES = {"interview": MMKG.InterviewSource, "drawing": MMKG.DrawingSource, "other": MMKG.OtherSource}


def instance_iri(study_id: str, kind: str, *parts: str) -> URIRef:
    return DATA[quote(study_id, safe="") + "/" + kind + "/" + "/".join(quote(str(p), safe="") for p in parts)]


def study_rdf(kg, study_id: str, graph: Graph) -> None:
    """Add one study's instance data to `graph`."""
    from mmkg.graph_tables import read_study_tables

    t = read_study_tables(kg, study_id)
    s = study_id
    study = DATA[quote(s, safe="")]
    add = graph.add
    add((study, RDF.type, MMKG.Study))
    add((study, MMKG.identifier, Literal(s)))
    for prop, value in ((DCTERMS.title, t.meta.title), (DCTERMS.description, t.meta.description),
                        (DCTERMS.bibliographicCitation, t.meta.citation), (DCTERMS.provenance, t.meta.provenance)):
        if value:
            add((study, prop, Literal(value)))

    def resource(node: URIRef, cls: URIRef, identifier: str, label: str | None = None) -> URIRef:
        add((node, RDF.type, cls))
        add((node, MMKG.inStudy, study))
        add((node, MMKG.identifier, Literal(identifier)))
        if label:
            add((node, RDFS.label, Literal(label)))
        return node

    for row in t.groups.itertuples():
        group = resource(instance_iri(s, "group", row.codebook, row.group_id), MMKG.CodeGroup, row.group_id, row.label)
        add((group, MMKG.codebook, Literal(row.codebook)))
        if row.parent_group_id:
            add((group, MMKG.subGroupOf, instance_iri(s, "group", row.codebook, row.parent_group_id)))
    for row in t.codes.itertuples():
        code = resource(instance_iri(s, "code", row.codebook, row.code_id), MMKG.Code, row.code_id, row.label)
        add((code, MMKG.codebook, Literal(row.codebook)))
        add((code, MMKG.inGroup, instance_iri(s, "group", row.codebook, row.group_id)))
        if row.parent_code_id:
            add((code, MMKG.subCodeOf, instance_iri(s, "code", row.codebook, row.parent_code_id)))
        if row.definition:
            add((code, SKOS.definition, Literal(row.definition)))
    for row in t.participants.itertuples():
        resource(instance_iri(s, "participant", row.participant_id), MMKG.Participant, row.participant_id, row.label)
        add((study, MMKG.hasParticipant, instance_iri(s, "participant", row.participant_id)))
    for row in t.sources.itertuples():
        source = resource(instance_iri(s, "source", row.source_id), SOURCE_CLASSES[row.kind], row.source_id, row.title)
        add((instance_iri(s, "participant", row.participant_id), MMKG.hasSource, source))
    for row in t.segments.itertuples():
        segment = resource(instance_iri(s, "segment", row.segment_id), MMKG.Segment, row.segment_id)
        add((instance_iri(s, "source", row.source_id), MMKG.hasSegment, segment))
        if row.start is not None:
            add((segment, MMKG.startOffset, Literal(int(row.start), datatype=XSD.integer)))
        if row.end is not None:
            add((segment, MMKG.endOffset, Literal(int(row.end), datatype=XSD.integer)))
        if row.text:
            add((segment, MMKG.segmentText, Literal(row.text)))
    for coder in sorted(set(t.codings["coder"])):
        resource(instance_iri(s, "coder", coder), MMKG.Coder, coder, coder)
    for row in t.codings.itertuples():
        coding = instance_iri(s, "coding", row.segment_id, row.codebook, row.code_id, row.coder)
        resource(coding, MMKG.Coding, f"{row.segment_id}|{row.codebook}|{row.code_id}|{row.coder}")
        segment = instance_iri(s, "segment", row.segment_id)
        add((segment, MMKG.hasCoding, coding))
        add((coding, MMKG.codedSegment, segment))
        add((coding, MMKG.appliesCode, instance_iri(s, "code", row.codebook, row.code_id)))
        add((coding, MMKG.codedBy, instance_iri(s, "coder", row.coder)))
    for row in t.concept_map.itertuples():
        code = instance_iri(s, "code", row.codebook, row.code_id)
        mapping = instance_iri(s, "mapping", row.codebook, row.code_id, row.concept)
        resource(mapping, MMKG.ConceptMapping, f"{row.codebook}|{row.code_id}|{row.concept}")
        add((mapping, MMKG.mappedCode, code))
        add((mapping, MMKG.mappedConcept, concept_iri(row.concept)))
        add((mapping, MMKG.matchType, Literal(row.match)))
        if row.note:
            add((mapping, RDFS.comment, Literal(row.note)))
        add((code, MMKG.mapsToConcept, concept_iri(row.concept)))


def export_graph(kg, study_id: str = "*", *, with_ontology: bool = True) -> Graph:
    """An rdflib graph of the ontology (unless `with_ontology` is false) and one study's data or ('*', the
    default) every study's; '' = the only study's (none in an empty store)."""
    if study_id == "*" or (not study_id and not kg.study_ids()):
        study_ids = kg.study_ids()
    else:
        study_ids = [kg.resolve_study(study_id)]
        kg.require_study(study_ids[0])
    graph = Graph()
    if with_ontology:
        for triple in load_ontology():
            graph.add(triple)
    for prefix, namespace in (("mmkg", MMKG), ("data", DATA), ("skos", SKOS), ("dcterms", DCTERMS)):
        graph.bind(prefix, namespace)
    for sid in study_ids:
        study_rdf(kg, sid, graph)
    return graph


def export_rdf(kg, output: Path | str | None, fmt: str = "ttl", study_id: str = "*") -> str | None:
    """Serialise to `output` (or return the text when None) in Turtle (`ttl`) or JSON-LD (`jsonld`)."""
    if fmt not in FORMATS:
        raise MmkgError(f"unknown RDF format '{fmt}' (use ttl or jsonld)")
    text = export_graph(kg, study_id).serialize(format=FORMATS[fmt])
    if output is None:
        return text
    Path(output).write_text(text, encoding="utf-8")
    return None


def shapes_graph() -> Graph:
    """The SHACL shapes the export conforms to."""
    return Graph().parse(SHAPES_PATH, format="turtle")


__all__ = ["export_graph", "export_rdf", "shapes_graph", "instance_iri", "DATA", "SHAPES_PATH"]
