// name: quotes
// title: Published quotes and the codes on them
// description: One row per segment that carries text (for the founding study: the participants' words the paper quotes, with the section in which it quotes them) and per coder who coded it: participant, source, the quote and the codes. `mmkg paper` finds a quote's passage through it. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// order: study_id, participant_id, segment_id
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(k:Code)
WHERE ($study_id = '*' OR g.study_id = $study_id) AND g.text IS NOT NULL AND g.text <> ''
WITH g, p, src, c.coder AS coder, collect(k.codebook + ':' + k.id) AS codes
RETURN g.study_id AS study_id, p.id AS participant_id, src.id AS source_id, g.uid AS segment, g.id AS segment_id,
       g.text AS text, g.text_section AS section, coder, list_sort(codes) AS codes
ORDER BY study_id, participant_id, segment_id, coder;
