// name: study_meta
// title: A study's own properties (read back into a study.json)
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (s:Study) WHERE s.id = $study_id
RETURN s.title AS title, s.description AS description, s.citation AS citation, s.provenance AS provenance,
       s.codebooks AS codebooks, s.analysis_coder AS analysis_coder, s.origin AS origin;
