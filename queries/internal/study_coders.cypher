// name: study_coders
// title: The coders of a study
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (s:Study)-[:HAS_CODER]->(c:Coder) WHERE s.id = $study_id RETURN c.id AS coder ORDER BY coder;
