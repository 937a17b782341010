// name: unmapped_codes
// title: Codes of a study with no MAPS_TO
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (k:Code) WHERE k.study_id = $study_id AND NOT EXISTS { MATCH (k)-[:MAPS_TO]->(:Concept) }
RETURN k.codebook AS codebook, k.id AS code_id, k.label AS label, k.codable AS codable
ORDER BY codebook, code_id;
