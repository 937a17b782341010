// name: code_concepts
// title: A study's code → concept mapping, one row per MAPS_TO
// description: Code and concept with their labels, the concept's kind, the match type and the reviewer's note.
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (k:Code)-[m:MAPS_TO]->(c:Concept) WHERE k.study_id = $study_id
RETURN k.codebook AS codebook, k.id AS code_id, k.label AS label, c.uid AS concept, c.label AS concept_label,
       c.kind AS kind, m.match AS match, m.note AS note
ORDER BY codebook, code_id, concept;
