// name: concept_codes
// title: The codes of every study mapped to each concept
// internal: true
// mode: read
MATCH (k:Code)-[m:MAPS_TO]->(c:Concept)
RETURN c.uid AS concept, k.study_id AS study_id, k.codebook AS codebook, k.id AS code_id, k.label AS label,
       m.match AS match
ORDER BY study_id, codebook, code_id;
