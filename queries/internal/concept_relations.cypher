// name: concept_relations
// title: The relations between ontology concepts (controls, affects, mitigates, broader)
// internal: true
// mode: read
MATCH (a:Concept)-[:CONTROLS]->(b:Concept) RETURN a.uid AS source, b.uid AS target, 'CONTROLS' AS type
UNION ALL
MATCH (a:Concept)-[:AFFECTS]->(b:Concept) RETURN a.uid AS source, b.uid AS target, 'AFFECTS' AS type
UNION ALL
MATCH (a:Concept)-[:MITIGATES]->(b:Concept) RETURN a.uid AS source, b.uid AS target, 'MITIGATES' AS type
UNION ALL
MATCH (a:Concept)-[:BROADER]->(b:Concept) RETURN a.uid AS source, b.uid AS target, 'BROADER' AS type;
