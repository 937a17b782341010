// name: code_frequencies
// title: Code frequencies by codings and by participants
// description: One row per applied code: how many codings (segments carrying it) and how many participants. Filters: study, codebook, code group (id or label) and a participant attribute (name and value, e.g. works_in_security = true). Analysis codings by default (the study's consensus coder), or one coder's. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study to count ('' = the only study in the store, * = every study)
// param: codebook STRING = "" | only this codebook, e.g. interview ('' = all)
// param: code_group STRING = "" | only codes of this group, by id or label (e.g. A or AML attacks; '' = all)
// param: attribute STRING = "" | only participants with this attribute … ('' = every participant)
// param: attribute_value STRING = "" | … equal to this value (case-insensitive), e.g. true
// param: coder STRING = "" | only this coder's codings ('' = the analysis codings)
// mode: read
MATCH (p:Participant)
WHERE $study_id = '*' OR p.study_id = $study_id
OPTIONAL MATCH (p)-[:HAS_ATTRIBUTE]->(a:Attribute)
WHERE a.name = $attribute AND toLower(a.value) = toLower($attribute_value)
WITH p, count(a) AS matching
WHERE $attribute = '' OR matching > 0
MATCH (p)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code)-[:IN_GROUP]->(g:CodeGroup)
WITH p, c, k, g
WHERE ($coder = '' AND c.analysis) OR c.coder = $coder
WITH p, c, k, g
WHERE ($codebook = '' OR k.codebook = $codebook)
  AND ($code_group = '' OR g.id = $code_group OR toLower(g.label) = toLower($code_group))
RETURN k.study_id AS study_id, k.codebook AS codebook, k.id AS code_id, k.label AS label, g.id AS group_id,
       g.label AS group_label, count(c) AS codings, count(DISTINCT p.uid) AS participants
ORDER BY codings DESC, participants DESC, study_id, codebook, code_id;
