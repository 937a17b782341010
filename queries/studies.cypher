// name: studies
// title: Studies in the graph
// description: One row per study with its provenance and how many participants, sources, codes and codings it holds (counted when the study was loaded).
// mode: read
MATCH (s:Study)
RETURN s.id AS study_id, s.title AS title, s.participants AS participants, s.sources AS sources, s.codes AS codes,
       s.codings AS codings, s.codebooks AS codebooks, s.analysis_coder AS analysis_coder, s.provenance AS provenance
ORDER BY study_id;
