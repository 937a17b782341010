// name: ontology_concepts
// title: Every concept of the ontology
// internal: true
// mode: read
MATCH (c:Concept)
RETURN c.uid AS concept, c.iri AS iri, c.label AS label, c.kind AS kind, c.definition AS definition,
       c.alt_labels AS alt_labels
ORDER BY concept;
