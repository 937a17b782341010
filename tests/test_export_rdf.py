"""RDF export: ontology plus instance data, conforming to the SHACL shapes shipped in ontology/ (pyshacl)."""
from __future__ import annotations

from pathlib import Path

import pyshacl  # in the test extra: a missing pyshacl is a broken install, not a skip
import pytest
from rdflib import Graph, Literal
from rdflib.namespace import DCTERMS, RDF, XSD
from typer.testing import CliRunner

import mmkg
from mmkg.export_rdf import export_graph, shapes_graph
from mmkg.ontology import MMKG

ATLAS = Path(__file__).resolve().parent / "data" / "refi-qda" / \
    "atlasti-8.4-refi-standard-project.qdpx"


def conforms(graph: Graph) -> tuple[bool, str]:
    ok, _, text = pyshacl.validate(graph, shacl_graph=shapes_graph(), inference="none")
    return ok, text


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("rdf") / "store"
    with mmkg.open_store(path) as kg:
        kg.load(ATLAS, study_id="atlas")
    return path


@pytest.mark.slow
def test_founding_export_conforms_and_counts_match(founding_store):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        graph = export_graph(kg, "founding")
        codings = len(kg.export_codings("founding"))
        mappings = int(kg.cypher("MATCH (:Code)-[m:MAPS_TO]->(:Concept) RETURN count(m) AS n")["n"][0])
        concepts = int(kg.cypher("MATCH (c:Concept) RETURN count(c) AS n")["n"][0])
    ok, text = conforms(graph)
    assert ok, text[:2000]
    assert len(set(graph.subjects(RDF.type, MMKG.Coding))) == codings
    assert len(set(graph.subjects(RDF.type, MMKG.ConceptMapping))) == mappings
    assert len(set(graph.subjects(MMKG.appliesCode, None))) == codings
    typed = {s for kind in ("PipelineElement", "AMLThreat", "SecurityThreat", "AMLDefense", "SecurityDefense",
                            "Perception") for s in graph.subjects(RDF.type, MMKG[kind])}
    assert len(typed) == concepts  # the ontology travels with the data
    [study] = graph.subjects(RDF.type, MMKG.Study)
    provenance = str(graph.value(study, DCTERMS.provenance))
    assert "not the authors' data" in provenance


@pytest.mark.slow
def test_cli_writes_turtle_that_conforms(small_store, tmp_path):
    from mmkg.cli.main import app

    output = tmp_path / "atlas.ttl"
    result = CliRunner().invoke(app, ["export", "rdf", "--format", "ttl", "--study", "atlas", "-o", str(output),
                                      "--store", str(small_store)])
    assert result.exit_code == 0, result.output
    graph = Graph().parse(output, format="turtle")
    assert conforms(graph)[0] and len(set(graph.subjects(RDF.type, MMKG.Coding))) == 16


def test_jsonld_export_parses_back_to_the_same_graph(small_store, tmp_path):
    with mmkg.open_store(small_store, read_only=True) as kg:
        from mmkg.export_rdf import export_rdf

        export_rdf(kg, tmp_path / "a.jsonld", "jsonld", "atlas")
        turtle = export_graph(kg, "atlas")
    parsed = Graph().parse(tmp_path / "a.jsonld", format="json-ld")
    assert len(parsed) == len(turtle) and conforms(parsed)[0]


@pytest.mark.slow
@pytest.mark.parametrize("break_it", ["drop appliesCode", "start after end", "unknown match type",
                                      "segment in no source"])
def test_shapes_reject_broken_data(small_store, break_it):
    """The shapes are not vacuous: each planted defect makes the export non-conforming."""
    with mmkg.open_store(small_store, read_only=True) as kg:
        graph = export_graph(kg, "atlas")
    assert conforms(graph)[0]
    coding = next(iter(graph.subjects(RDF.type, MMKG.Coding)))
    segment = next(s for s in graph.subjects(RDF.type, MMKG.Segment) if (s, MMKG.startOffset, None) in graph)
    if break_it == "drop appliesCode":
        graph.remove((coding, MMKG.appliesCode, None))
    elif break_it == "start after end":
        graph.set((segment, MMKG.startOffset, Literal(10 ** 9, datatype=XSD.integer)))
    elif break_it == "unknown match type":
        mapping = MMKG["plantedMapping"]
        graph.add((mapping, RDF.type, MMKG.ConceptMapping))
        graph.add((mapping, MMKG.matchType, Literal("sort of")))
    else:
        graph.remove((None, MMKG.hasSegment, segment))
    ok, text = conforms(graph)
    assert not ok, f"{break_it} was not caught"
