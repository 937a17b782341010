// name: segments
// title: The coded segments behind a code or a pair of codes (the views' drill-down)
// description: One row per segment and coder: the segments carrying code_a, or — with code_b — the segments of either code where the two co-occur in `unit`, with participant, source, position (start and end offsets of a text or media range, or the x, y, width and height of a picture region; all empty for a coding of a whole source), coder, which of the codes the coder applied there, and the segment's text where the study has it; `passage` names the passage of overlapping selections a row belongs to among the rows returned (QDA tools that write one selection per code, such as NVivo, give several rows per passage: for two codes the passages are the co-occurrences). Units as in `cooccurrence`: segment — a segment of one code is listed when a segment of the other code in the same source is the same, has the same position, or overlaps it (ranges share a part: touching ranges do not; regions intersect); exact — the same segment or the same position; source — both codes in the same source; participant — both in the same participant's material. Codes are named as A.3, interview:A.3 (a bare id found in several codebooks means the study's first-declared codebook) or a label such as model stealing; a name that matches no code gives no rows. Analysis codings by default (the study's consensus coder), or the named coder(s). The founding study's codings are a reconstruction matching the paper's figures, not the authors' data, and its segments carry only the words the paper publishes.
// param: study_id STRING = "" | study of the codes ('' = the only study in the store)
// param: code_a STRING = "" | the code: A.3, interview:A.3 or a label such as model stealing ('' = the study's most frequent code)
// param: code_b STRING = "" | a second code (same forms): only segments where the two co-occur ('' = every segment of code_a)
// param: unit STRING = "segment" | where the two codes must co-occur: segment, exact, source or participant
// param: coder STRING = "" | only these coders' codings, comma-separated ('' = the analysis codings)
// param: participant STRING = "" | only this participant's segments, by id ('' = every participant)
// order: participant_id, source_id
// mode: read
// analysis: segments
MATCH (s:Study) WHERE s.id = $study_id
MATCH (k:Code) WHERE k.study_id = $study_id
// rank of each code as a reading of the name: codebook:id, id in the first-declared codebook, id elsewhere, label
WITH k,
     CASE WHEN toLower(k.codebook + ':' + k.id) = toLower($code_a) THEN 1
          WHEN toLower(k.id) = toLower($code_a) AND (s.codebooks + ';') STARTS WITH (k.codebook + ';') THEN 2
          WHEN toLower(k.id) = toLower($code_a) THEN 3
          WHEN toLower(k.label) = toLower($code_a) OR toLower(k.preferred_label) = toLower($code_a) THEN 4 END AS rank_a,
     CASE WHEN $code_b = '' THEN NULL
          WHEN toLower(k.codebook + ':' + k.id) = toLower($code_b) THEN 1
          WHEN toLower(k.id) = toLower($code_b) AND (s.codebooks + ';') STARTS WITH (k.codebook + ';') THEN 2
          WHEN toLower(k.id) = toLower($code_b) THEN 3
          WHEN toLower(k.label) = toLower($code_b) OR toLower(k.preferred_label) = toLower($code_b) THEN 4 END AS rank_b
WITH min(rank_a) AS best_a, min(rank_b) AS best_b, collect({uid: k.uid, a: rank_a, b: rank_b}) AS ranked
UNWIND ranked AS r
WITH collect(CASE WHEN r.a = best_a THEN r.uid END) AS codes_a, collect(CASE WHEN r.b = best_b THEN r.uid END) AS codes_b
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(code:Code)
WITH codes_a, codes_b, p, src, g, code, c.coder AS coder, c.analysis AS analysis
WHERE p.study_id = $study_id AND ($participant = '' OR p.id = $participant)
  AND (code.uid IN codes_a OR ($code_b <> '' AND code.uid IN codes_b))
  AND (($coder = '' AND analysis) OR (',' + $coder + ',') CONTAINS (',' + coder + ','))
// the other code's codings in the participant's material, projected before they are tested (LadybugDB 0.22
// miscounts a relationship property tested beside an OR)
OPTIONAL MATCH (p)-[:HAS_SOURCE]->(other_src:Source)-[:HAS_SEGMENT]->(h:Segment)-[d:CODED_AS]->(partner:Code)
WHERE $code_b <> '' AND partner.uid IN (CASE WHEN code.uid IN codes_a THEN codes_b ELSE codes_a END)
WITH p, src, g, code, coder, other_src, h, d.coder AS partner_coder, d.analysis AS partner_analysis
WITH p, src, g, code, coder,
     sum(CASE WHEN h IS NULL THEN 0
              WHEN NOT (($coder = '' AND partner_analysis) OR (',' + $coder + ',') CONTAINS (',' + partner_coder + ','))
                THEN 0
              WHEN $unit = 'participant' THEN 1
              WHEN other_src.uid <> src.uid THEN 0
              WHEN $unit = 'source' OR h.uid = g.uid THEN 1
              WHEN NOT $unit IN ['segment', 'exact'] THEN 0
              WHEN g.start_pos IS NOT NULL AND g.end_pos IS NOT NULL AND h.start_pos IS NOT NULL
                   AND h.end_pos IS NOT NULL
                THEN CASE WHEN (g.start_pos = h.start_pos AND g.end_pos = h.end_pos)
                               OR ($unit = 'segment' AND g.start_pos < h.end_pos AND h.start_pos < g.end_pos)
                          THEN 1 ELSE 0 END
              WHEN g.start_pos IS NULL AND h.start_pos IS NULL AND g.x IS NOT NULL AND h.x IS NOT NULL
                   AND g.y IS NOT NULL AND h.y IS NOT NULL AND g.width IS NOT NULL AND h.width IS NOT NULL
                   AND g.height IS NOT NULL AND h.height IS NOT NULL
                THEN CASE WHEN (g.x = h.x AND g.y = h.y AND g.width = h.width AND g.height = h.height)
                               OR ($unit = 'segment' AND g.x < h.x + h.width AND h.x < g.x + g.width
                                   AND g.y < h.y + h.height AND h.y < g.y + g.height)
                          THEN 1 ELSE 0 END
              ELSE 0 END) AS partners
WHERE $code_b = '' OR partners > 0
WITH p, src, g, coder, collect(DISTINCT code.codebook + ':' + code.id) AS codes
RETURN p.study_id AS study_id, p.id AS participant_id, src.id AS source_id, src.kind AS source_kind,
       g.id AS segment_id, g.start_pos AS start, g.end_pos AS `end`, g.x AS x, g.y AS y, g.width AS width,
       g.height AS height, coder,
       // the codes (of the two asked for) the coder applied here, in a stable order
       list_sort(codes) AS codes, g.text AS text, g.text_section AS text_section
ORDER BY participant_id, source_id, start, y, x, segment_id, coder;
