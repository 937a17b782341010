// name: code_neighbourhood
// title: What co-occurs with one code
// description: The codes that co-occur with one code (e.g. what co-occurs with model stealing), ranked by a chosen metric: count (n_ab), c_coefficient (Jaccard), p_b_given_a, p_a_given_b, lift or fisher_p (ascending). Same units, rule and metrics as `cooccurrence` (segment = passages of overlapping selections, the default; exact; source; participant), with the chosen code always as a; a pair's metrics do not depend on the codebook filter. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: neighbourhood
// param: study_id STRING = "founding" | study to analyse ('' = every study)
// param: coder STRING = "" | only these coders' codings, comma-separated ('' = the analysis codings)
// option: unit STRING = "segment" | unit: segment (overlapping selections), exact (same selection), source or participant
// option: proximity INTEGER = 0 | segment unit: ranges closer than this many characters also co-occur (0 = overlap only)
// option: code STRING = "model stealing" | the code: A.3, interview:A.3 or a label
// option: rank_by STRING = "count" | count, c_coefficient (jaccard), p_b_given_a, p_a_given_b, lift or fisher_p
// option: codebook STRING = "" | only neighbours from this codebook ('' = all)
// option: min_count INTEGER = 1 | smallest n_ab listed
// option: limit INTEGER = 20 | at most this many neighbours (0 = all)
// mode: read
MATCH (g:Segment)-[c:CODED_AS]->(k:Code)
// projected first: faster, and LadybugDB 0.22 miscounts a relationship property filtered beside an OR
WITH g, k, c.analysis AS analysis, c.coder AS coder
WHERE ($study_id = '' OR g.study_id = $study_id)
  AND (($coder = '' AND analysis) OR (',' + $coder + ',') CONTAINS (',' + coder + ','))
RETURN g.uid AS segment, k.uid AS code_uid;
