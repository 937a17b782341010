// name: participants
// title: Participants with their attributes and how much material they have
// description: One row per participant: id, label, whether it is synthetic, its attributes as name=value, and the number of sources, coded segments, analysis codings and distinct codes. The founding study's participants are the paper's Table 1; its codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// order: study_id, participant_id
// mode: read
MATCH (p:Participant)
WHERE $study_id = '*' OR p.study_id = $study_id
OPTIONAL MATCH (p)-[:HAS_ATTRIBUTE]->(a:Attribute)
WITH p, collect(CASE WHEN a IS NULL THEN NULL ELSE a.name + '=' + a.value END) AS attributes
WITH p, list_sort(attributes) AS attributes
OPTIONAL MATCH (p)-[:HAS_SOURCE]->(src:Source)
WITH p, attributes, count(src) AS sources
OPTIONAL MATCH (p)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(k:Code)
WITH p, attributes, sources, CASE WHEN c.analysis THEN g.uid END AS segment, CASE WHEN c.analysis THEN k.uid END AS code
RETURN p.study_id AS study_id, p.id AS participant_id, p.label AS label, p.synthetic AS synthetic, attributes,
       sources, count(DISTINCT segment) AS coded_segments, count(code) AS codings, count(DISTINCT code) AS codes
ORDER BY study_id, participant_id;
