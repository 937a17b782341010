// name: cooccurrence
// title: Code co-occurrence with counts and coefficients
// description: Pairs of codes that occur in the same unit — segment (one coded segment), source (one interview or drawing) or participant (anywhere in one participant's material) — with n_a, n_b, n_ab (the count), the c-coefficient (= Jaccard), P(b|a), P(a|b), lift, Fisher's exact p for small counts (n_ab <= fisher_max_count, else empty) and a flag when one code is >= imbalance_ratio times more frequent than the other. N (n_units) counts the study's units carrying any selected code. The statement fetches the (unit, code) incidence table; the metrics are computed from its sparse product XᵀX (mmkg.analysis). Analysis codings by default (the study's consensus coder), or one coder's. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: cooccurrence
// param: study_id STRING = "founding" | study to analyse ('' = every study; pairs never cross studies)
// param: unit STRING = "segment" | unit of co-occurrence: segment, source or participant
// param: coder STRING = "" | only this coder's codings ('' = the analysis codings)
// option: codebook STRING = "" | only codes of this codebook, e.g. interview ('' = all)
// option: group STRING = "" | only codes of this code group (id or label, e.g. C or security threats; '' = all)
// option: code_a STRING = "" | only pairs with this code as a: A.3, interview:A.3 or a label such as model stealing
// option: code_b STRING = "" | only pairs with this code as b (same forms as code_a)
// option: min_count INTEGER = 1 | smallest n_ab listed (0 lists pairs that never co-occur too)
// option: fisher_max_count INTEGER = 20 | compute Fisher's exact p when n_ab is at most this
// option: imbalance_ratio FLOAT = 5.0 | flag pairs where one code is this many times more frequent
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(k:Code)
WHERE ($study_id = '' OR g.study_id = $study_id) AND (($coder = '' AND c.analysis) OR c.coder = $coder)
RETURN CASE $unit WHEN 'segment' THEN g.uid WHEN 'source' THEN src.uid ELSE p.uid END AS unit,
       k.uid AS code_uid;
