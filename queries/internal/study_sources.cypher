// name: study_sources
// title: A study's sources as the sources table
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source) WHERE src.study_id = $study_id
RETURN src.id AS source_id, p.id AS participant_id, src.kind AS kind, src.title AS title;
