// name: participant_attributes
// title: A study's participants, one row per attribute (one row without attribute for a participant with none)
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (s:Study)-[:HAS_PARTICIPANT]->(p:Participant) WHERE s.id = $study_id
OPTIONAL MATCH (p)-[:HAS_ATTRIBUTE]->(a:Attribute)
RETURN p.id AS participant_id, p.label AS label, a.name AS name, a.value AS value, a.value_num AS value_num,
       a.type AS type
ORDER BY participant_id, name;
