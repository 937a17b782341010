// name: code_index
// title: Codes with their uid, group path and mapped concepts
// description: One row per code of the selected studies: its store uid, study, codebook, id, label, group (and the group's ancestors), and the ontology concepts it maps to. The analysis steps resolve code names (`A.3`, `interview:A.3`, `model stealing`) and codebook or group restrictions against this table. The study's codebooks are listed in declaration order.
// param: study_id STRING = "" | study whose codes to list ('' = the only study in the store, * = every study)
// order: study_id, codebook, code_id
// mode: read
MATCH (s:Study)
WHERE $study_id = '*' OR s.id = $study_id
MATCH (k:Code)-[:IN_GROUP]->(g:CodeGroup)
WHERE k.study_id = s.id
OPTIONAL MATCH (g)-[:SUBGROUP_OF*1..10]->(up:CodeGroup)
WITH s, k, g, collect(DISTINCT up.id) AS ancestor_groups
WITH s, k, g, list_sort(ancestor_groups) AS ancestor_groups
OPTIONAL MATCH (k)-[:MAPS_TO]->(x:Concept)
WITH s, k, g, ancestor_groups, collect(DISTINCT x.uid) AS concepts
RETURN k.uid AS code_uid, k.study_id AS study_id, s.codebooks AS study_codebooks, k.codebook AS codebook,
       k.id AS code_id, k.label AS label, k.preferred_label AS preferred_label, g.id AS group_id,
       g.label AS group_label, ancestor_groups, list_sort(concepts) AS concepts
ORDER BY study_id, codebook, code_id;
