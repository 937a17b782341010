// name: studies
// title: Studies in the graph
// description: One row per study with its provenance and how many participants, sources, codes and codings it holds.
// mode: read
MATCH (s:Study)
OPTIONAL MATCH (s)-[:HAS_PARTICIPANT]->(p:Participant)
WITH s, count(p) AS participants
OPTIONAL MATCH (s)-[:HAS_PARTICIPANT]->(:Participant)-[:HAS_SOURCE]->(src:Source)
WITH s, participants, count(src) AS sources
OPTIONAL MATCH (k:Code) WHERE k.study_id = s.id
WITH s, participants, sources, count(k) AS codes
OPTIONAL MATCH (:Participant {study_id: s.id})-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(:Code)
RETURN s.id AS study_id, s.title AS title, participants, sources, codes, count(c) AS codings,
       s.codebooks AS codebooks, s.analysis_coder AS analysis_coder, s.provenance AS provenance
ORDER BY study_id;
