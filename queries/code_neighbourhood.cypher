// name: code_neighbourhood
// title: What co-occurs with one code
// description: The codes that co-occur with one code (e.g. what co-occurs with model stealing), ranked by a chosen metric: count (n_ab), c_coefficient (Jaccard), p_b_given_a, p_a_given_b, lift or fisher_p (ascending). Same unit choice and metrics as `cooccurrence`, with the chosen code always as a. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: neighbourhood
// param: study_id STRING = "founding" | study to analyse ('' = every study)
// param: unit STRING = "segment" | unit of co-occurrence: segment, source or participant
// param: coder STRING = "" | only this coder's codings ('' = the analysis codings)
// option: code STRING = "model stealing" | the code: A.3, interview:A.3 or a label
// option: rank_by STRING = "count" | count, c_coefficient (jaccard), p_b_given_a, p_a_given_b, lift or fisher_p
// option: codebook STRING = "" | only neighbours from this codebook ('' = all)
// option: min_count INTEGER = 1 | smallest n_ab listed
// option: limit INTEGER = 20 | at most this many neighbours (0 = all)
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(k:Code)
WHERE ($study_id = '' OR g.study_id = $study_id) AND (($coder = '' AND c.analysis) OR c.coder = $coder)
RETURN CASE $unit WHEN 'segment' THEN g.uid WHEN 'source' THEN src.uid ELSE p.uid END AS unit,
       k.uid AS code_uid;
