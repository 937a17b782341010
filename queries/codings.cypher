// name: codings
// title: Every coding, one row each
// description: One row per code applied to a segment by a coder, with its participant and source. The table behind `mmkg export codings`.
// param: study_id STRING = "" | study whose codings to list ('' = the only study in the store, * = every study)
// order: study_id, participant_id, source_id, segment_id, codebook, code_id
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(seg:Segment)-[c:CODED_AS]->(k:Code)
WHERE $study_id = '*' OR p.study_id = $study_id
RETURN p.study_id AS study_id, p.id AS participant_id, src.id AS source_id, src.kind AS source_kind,
       seg.id AS segment_id, seg.start_pos AS start, seg.end_pos AS `end`, k.id AS code_id,
       k.codebook AS codebook, c.coder AS coder
ORDER BY study_id, participant_id, source_id, segment_id, codebook, code_id, coder;
