// name: shared_goal_pairs
// title: AML threats and security threats with a shared goal, counted together
// description: For each pair of ontology threats that share a goal (model stealing ~ code breach, membership inference ~ data breach, availability ~ denial of service, …; SHARES_GOAL_WITH), every pair of codes mapped to them: units carrying each code (n_a, n_b) and both (n_ab), with the c-coefficient, per unit — segment (passages of overlapping selections: codes co-occur when their selections are the same or overlap), exact (one selection), source and participant. The table behind the paper's Section 4.1.1. N (n_units) counts the units that can carry both codes (sources of a kind on which both codebooks are applied), as in `cooccurrence`. Analysis codings by default. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: shared_goal_pairs
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// param: matches STRING = "exact,close" | comma-separated SKOS match types whose mappings count
// option: unit STRING = "all" | {units} or all
// option: coder STRING = "" | only this coder's codings ('' = the analysis codings)
// mode: read
MATCH (ca:Concept)-[r:SHARES_GOAL_WITH]->(cb:Concept)
MATCH (ka:Code)-[ma:MAPS_TO]->(ca)
MATCH (kb:Code)-[mb:MAPS_TO]->(cb)
WHERE ka.study_id = kb.study_id AND ($study_id = '*' OR ka.study_id = $study_id)
  AND $matches CONTAINS ma.match AND $matches CONTAINS mb.match
RETURN ka.study_id AS study_id, r.goal AS goal, ca.label AS concept_a, cb.label AS concept_b,
       ka.uid AS code_uid_a, ka.codebook AS codebook_a, ka.id AS code_a, ka.label AS label_a,
       kb.uid AS code_uid_b, kb.codebook AS codebook_b, kb.id AS code_b, kb.label AS label_b;
