// name: study_codes
// title: A study's codes as the codes table
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (k:Code)-[:IN_GROUP]->(g:CodeGroup) WHERE k.study_id = $study_id
OPTIONAL MATCH (k)-[:SUBCODE_OF]->(parent:Code)
RETURN k.codebook AS codebook, k.id AS code_id, k.label AS label, g.id AS group_id, parent.id AS parent_code_id,
       k.codable AS codable, k.preferred_label AS preferred_label, k.definition AS definition;
