// name: concept_external_ids
// title: The external identifiers (e.g. MITRE ATLAS) each concept matches
// internal: true
// mode: read
MATCH (c:Concept)-[m:EXTERNAL_MATCH]->(x:ExternalId)
RETURN c.uid AS concept, x.scheme AS scheme, x.external_id AS external_id, x.name AS name, x.url AS url,
       m.match AS match
ORDER BY concept, external_id;
