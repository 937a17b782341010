// name: concept_frequencies
// title: Concept frequencies per study, side by side
// description: One row per (ontology concept, study): how many of the study's codes map to the concept, and the codings, segments and participants those codes carry (analysis codings only: the study's consensus coder when it has one). Codes count when their MAPS_TO match type is one of `matches` (default exact, close, broad: the concept equals or is broader than the code). Pivot on study_id to compare studies; a study whose mapped codes were never applied shows 0. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "*" | only this study (* = every study, the default: these queries compare studies; '' = the only study in the store)
// param: kind STRING = "" | only concepts of this kind (pipeline_element, aml_threat, security_threat, aml_defense, security_defense, perception; '' = all)
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// mode: read
MATCH (k:Code)-[m:MAPS_TO]->(c:Concept)
WHERE ($study_id = '*' OR k.study_id = $study_id) AND ($kind = '' OR c.kind = $kind) AND $matches CONTAINS m.match
OPTIONAL MATCH (p:Participant)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(seg:Segment)-[r:CODED_AS]->(k)
WHERE r.analysis = true
RETURN c.uid AS concept, c.label AS concept_label, c.kind AS kind, k.study_id AS study_id,
       count(DISTINCT k.uid) AS codes, count(r) AS codings, count(DISTINCT seg.uid) AS segments,
       count(DISTINCT p.uid) AS participants
ORDER BY concept, study_id;
