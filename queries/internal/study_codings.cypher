// name: study_codings
// title: A study's codings as the codings table
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (seg:Segment)-[r:CODED_AS]->(k:Code) WHERE seg.study_id = $study_id
RETURN seg.id AS segment_id, k.codebook AS codebook, k.id AS code_id, r.coder AS coder;
